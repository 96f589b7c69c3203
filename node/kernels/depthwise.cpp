#include "kernels/depthwise.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

constexpr int64_t kW = simd::kWidth;
using simd::copy_floats;

// One channel from its phase planes: y[oy][x] = act(sum_t weight[t] * plane[tap_off[t] + oy * row_step
// + x] + bias + res), R output rows at a time for R independent chains of FMAs (a last short group
// repeats its last row, not stored). TAPS > 0 fixes the tap count at compile time so the weight
// vectors stay in registers; TAPS == 0 handles any kernel size.
template <int TAPS, int R>
void channel_kernel(const float* plane, const int64_t* tap_off, int taps, int64_t row_step, const float* weight,
                    float bias, const float* res, float* y, int64_t oh, int64_t ow, const Activation& act) {
  using namespace simd;
  const int T = TAPS > 0 ? TAPS : taps;
  Vec wv[TAPS > 0 ? TAPS : 1];
  if (TAPS > 0)
    for (int t = 0; t < T; ++t) wv[t] = set1(weight[t]);
  const Vec bv = set1(bias), lo = set1(act.min), hi = set1(act.max), alpha = set1(act.alpha);
  for (int64_t oy0 = 0; oy0 < oh; oy0 += R) {
    const int rows = static_cast<int>(std::min<int64_t>(R, oh - oy0));
    const float* row[R];
    for (int r = 0; r < R; ++r) row[r] = plane + std::min<int64_t>(oy0 + r, oh - 1) * row_step;
    for (int64_t x = 0; x < ow; x += kW) {
      Vec a[R];
      for (int r = 0; r < R; ++r) a[r] = bv;
#pragma GCC unroll 25
      for (int t = 0; t < T; ++t) {
        const Vec wt = TAPS > 0 ? wv[t] : set1(weight[t]);
        for (int r = 0; r < R; ++r) a[r] = fma(wt, loadu(row[r] + tap_off[t] + x), a[r]);
      }
      const int n = static_cast<int>(std::min(kW, ow - x));
      for (int r = 0; r < rows; ++r) {
        const int64_t at = (oy0 + r) * ow + x;
        if (res) a[r] = add(a[r], loadu_n(res + at, n));
        storeu_n(y + at, activate(act.kind, a[r], lo, hi, alpha), n);
      }
    }
  }
  if (act.kind == ActKind::Sigmoid)
    for (int64_t oy = 0; oy < oh; ++oy) finish_row(y + oy * ow, ow, 0.f, nullptr, act);
}

// One channel at a column stride of 1, read in place: every tap of an output vector is one masked
// load from the input plane, the mask zeroing the columns outside the image, so the plane is never
// copied. masks[c * kw + kx]: output vector c, tap column kx.
struct RowsPlane {
  const float* x;  // the input plane, h x w
  int64_t h, w, oh, ow;
  const simd::LaneMask* masks;
  const bool* full;  // full[c * kw + kx]: masks[c * kw + kx] has every lane
};

// Output rows oy0 .. oy0 + R - 1, each as R independent chains of FMAs. EDGE: some taps may fall on
// rows outside the image (skipped). K > 0 fixes a K x K kernel at compile time.
template <int K, int R, bool EDGE>
inline void row_block(const ConvParams& p, const RowsPlane& pl, const simd::Vec* wv, const float* weight, simd::Vec bv,
                      int64_t oy0, const float* res, float* y, const Activation& act) {
  using namespace simd;
  const int64_t kh = K > 0 ? K : p.kh, kw = K > 0 ? K : p.kw, w = pl.w, ow = pl.ow;
  const int64_t sh = p.stride_h, dh = p.dil_h, dw = p.dil_w, iy0 = oy0 * sh - p.pad_t;
  const Vec lo = set1(act.min), hi = set1(act.max), alpha = set1(act.alpha);
  for (int64_t x0 = 0, c = 0; x0 < ow; x0 += kW, ++c) {
    const LaneMask* m = pl.masks + c * kw;
    const float* base = pl.x + iy0 * w + x0 - p.pad_l;
    Vec a[R];
    for (int r = 0; r < R; ++r) a[r] = bv;
#pragma GCC unroll 5
    for (int64_t ky = 0; ky < kh; ++ky) {
      if (EDGE && (iy0 + ky * dh < 0 || iy0 + ky * dh >= pl.h)) continue;
#pragma GCC unroll 5
      for (int64_t kx = 0; kx < kw; ++kx) {
        const Vec wt = K > 0 ? wv[ky * kw + kx] : set1(weight[ky * kw + kx]);
        const float* src = base + ky * dh * w + kx * dw;
        for (int r = 0; r < R; ++r) a[r] = fma(wt, loadu_masked(src + r * sh * w, m[kx]), a[r]);
      }
    }
    const int n = static_cast<int>(std::min(kW, ow - x0));
    for (int r = 0; r < R; ++r) {
      const int64_t at = (oy0 + r) * ow + x0;
      if (res) a[r] = add(a[r], loadu_n(res + at, n));
      storeu_n(y + at, activate(act.kind, a[r], lo, hi, alpha), n);
    }
  }
}

#if defined(__aarch64__)
// a + v * weight[t], t known at compile time once the tap loops are unrolled: weights four to a
// register, multiplied in by lane (fmla by element), so a 5x5 kernel's taps take 7 registers.
inline simd::Vec fma_tap(const simd::Vec* wq, int t, simd::Vec v, simd::Vec a) {
  switch (t % 4) {
    case 0: return vfmaq_laneq_f32(a, v, wq[t / 4], 0);
    case 1: return vfmaq_laneq_f32(a, v, wq[t / 4], 1);
    case 2: return vfmaq_laneq_f32(a, v, wq[t / 4], 2);
    default: return vfmaq_laneq_f32(a, v, wq[t / 4], 3);
  }
}
#endif

// The taps of row_block_dense for one output vector. FULL: every lane of every tap column is in the
// image, so the loads need no mask (all but the first and last vectors of a row; a masked load
// costs more than a plain one everywhere but AVX-512, and on NEON it is lane by lane).
template <int K, int R, bool FULL>
inline void dense_taps(const float* base, int64_t w, const simd::LaneMask* m, const simd::Vec* wv, const simd::Vec* wq,
                       simd::Vec* a) {
  using namespace simd;
  if (FULL && K == 3) DNN_MCA_BEGIN("depthwise3x3");
  if (FULL && K == 5) DNN_MCA_BEGIN("depthwise5x5");
  const float* row = base;  // stepped row by row: one address register, taps at fixed offsets
#pragma GCC unroll 8
  for (int i = 0; i < R + K - 1; ++i, row += w) {
#pragma GCC unroll 5
    for (int kx = 0; kx < K; ++kx) {
      const Vec v = FULL ? loadu(row + kx) : loadu_masked(row + kx, m[kx]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        if (i - r >= 0 && i - r < K) {
#if defined(__aarch64__)
          a[r] = fma_tap(wq, (i - r) * K + kx, v, a[r]);
#else
          a[r] = fma(wv[(i - r) * K + kx], v, a[r]);
#endif
        }
    }
  }
  if (FULL && K == 3) DNN_MCA_END("depthwise3x3");
  if (FULL && K == 5) DNN_MCA_END("depthwise5x5");
}

// row_block for stride 1 and dilation 1: the R + K - 1 input rows under R output rows are each
// loaded once per tap column and feed every output row they reach (half the loads), at addresses
// a fixed distance from R + K - 1 row pointers.
template <int K, int R>
inline void row_block_dense(const ConvParams& p, const RowsPlane& pl, const simd::Vec* wv, const float* weight,
                            simd::Vec bv, int64_t oy0, const float* res, float* y, const Activation& act) {
  using namespace simd;
  const int64_t w = pl.w, ow = pl.ow;
  const Vec lo = set1(act.min), hi = set1(act.max), alpha = set1(act.alpha);
  Vec wq[(K * K + 3) / 4];  // the weights four to a vector, for fma_tap
#if defined(__aarch64__)
  for (int j = 0; j < (K * K + 3) / 4; ++j) wq[j] = loadu_n(weight + 4 * j, std::min(4, K * K - 4 * j));
#endif
  for (int64_t x0 = 0, c = 0; x0 < ow; x0 += kW, ++c) {
    const LaneMask* m = pl.masks + c * K;
    const float* base = pl.x + (oy0 - p.pad_t) * w + x0 - p.pad_l;
    Vec a[R];
    for (int r = 0; r < R; ++r) a[r] = bv;
    bool full = true;
    for (int kx = 0; kx < K; ++kx) full = full && pl.full[c * K + kx];
    if (full) dense_taps<K, R, true>(base, w, m, wv, wq, a);
    else dense_taps<K, R, false>(base, w, m, wv, wq, a);
    const int n = static_cast<int>(std::min(kW, ow - x0));
    for (int r = 0; r < R; ++r) {
      const int64_t at = (oy0 + r) * ow + x0;
      if (res) a[r] = add(a[r], loadu_n(res + at, n));
      storeu_n(y + at, activate(act.kind, a[r], lo, hi, alpha), n);
    }
  }
}

template <int K>
void channel_rows(const ConvParams& p, const RowsPlane& pl, const float* weight, float bias, const float* res, float* y,
                  const Activation& act) {
  using namespace simd;
  constexpr int R = 4;
  Vec wv[K > 0 ? K * K : 1];
  if (K > 0)
    for (int t = 0; t < K * K; ++t) wv[t] = set1(weight[t]);
  const Vec bv = set1(bias);
  // Rows [inner0, inner1) have every tap inside the image; the rest go one by one, checked.
  const int64_t reach = (p.kh - 1) * p.dil_h, sh = p.stride_h;
  const int64_t inner0 = std::min(pl.oh, (p.pad_t + sh - 1) / sh);
  const int64_t inner1 = std::clamp<int64_t>(pl.h - reach + p.pad_t > 0 ? (pl.h - 1 - reach + p.pad_t) / sh + 1 : 0,
                                             inner0, pl.oh);
  int64_t oy = 0;
  for (; oy < inner0; ++oy) row_block<K, 1, true>(p, pl, wv, weight, bv, oy, res, y, act);
  if (K > 0 && sh == 1 && p.dil_h == 1 && p.dil_w == 1)
    for (; oy + R <= inner1; oy += R) row_block_dense<K, R>(p, pl, wv, weight, bv, oy, res, y, act);
  for (; oy + R <= inner1; oy += R) row_block<K, R, false>(p, pl, wv, weight, bv, oy, res, y, act);
  for (; oy < inner1; ++oy) row_block<K, 1, false>(p, pl, wv, weight, bv, oy, res, y, act);
  for (; oy < pl.oh; ++oy) row_block<K, 1, true>(p, pl, wv, weight, bv, oy, res, y, act);
  if (act.kind == ActKind::Sigmoid)
    for (oy = 0; oy < pl.oh; ++oy) finish_row(y + oy * pl.ow, pl.ow, 0.f, nullptr, act);
}

// Output rows at most this wide go channels-in-lanes (with 16-lane vectors, one filter per input
// channel, whole groups of 16 channels): a 7-pixel row would fill 7 of 16 lanes, and the per-plane
// copies cost more than the arithmetic of a 7x7 plane. (kernels_bench, ms: 960 ch @7 0.072 ->
// 0.045, 576 ch /2 @14 0.111 -> 0.045. Wider rows stay on the planes: 384 ch @14 gained 10 % alone
// but lost 30 % inside MobileNetV2, 192 ch @28 lost 40 %.)
constexpr int64_t kLanesMaxWidth = 8;


// Every output pixel's sum of taps, channels in lanes: sums[pixel] = bias + sum_t wt[t] * block[tap].
// TAPS > 0 fixes the tap count at compile time, so the weight vectors stay in registers.
template <int TAPS>
void lanes_taps(const ConvParams& p, const float* block, int64_t pw, const float* wt, const int64_t* tap_off,
                int64_t taps, simd::Vec bias, int64_t oh, int64_t ow, float* sums) {
  using namespace simd;
  const int64_t T = TAPS > 0 ? TAPS : taps;
  Vec wv[TAPS > 0 ? TAPS : 1];
  if (TAPS > 0)
    for (int64_t t = 0; t < T; ++t) wv[t] = load(wt + t * kW);
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox) {
      const float* src = block + (oy * p.stride_h * pw + ox * p.stride_w) * kW;
      Vec sum = bias;
#pragma GCC unroll 9
      for (int64_t t = 0; t < T; ++t) sum = fma(TAPS > 0 ? wv[t] : load(wt + t * kW), loadu(src + tap_off[t]), sum);
      storeu(sums + (oy * ow + ox) * kW, sum);
    }
}

// Channels in lanes, kW channels at a time: their planes are transposed into a zero-padded,
// pixel-major block (one vector per pixel), every output pixel sums its taps as whole vectors, and
// the sums are transposed back into the channel planes for the epilogue.
// With `blocked`, the input is already channels in lanes ([image][channel / kW][pixel][kW]): its
// rows are copied into the block as they are.
void depthwise_lanes(const ConvParams& p, const float* weight, const float* bias, const Activation& act,
                     const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
                     ThreadPool& pool, int64_t out_stride, bool blocked) {
  using namespace simd;
  const int64_t C = p.in_ch, oh = p.out_h(h), ow = p.out_w(w), groups = C / kW;
  const int64_t ph = h + p.pad_t + p.pad_b, pw = w + p.pad_l + p.pad_r, taps = p.kh * p.kw;
  std::vector<int64_t> tap_off(taps);  // where tap t of an output pixel is, from its window's corner
  for (int64_t ky = 0, t = 0; ky < p.kh; ++ky)
    for (int64_t kx = 0; kx < p.kw; ++kx, ++t) tap_off[t] = (ky * p.dil_h * pw + kx * p.dil_w) * kW;
  pool.parallel_for(batch * groups, [&](int64_t u0, int64_t u1) {
    float* block = thread_scratch(1, ph * pw * kW);  // [padded y][padded x][channel]
    float* sums = thread_scratch(2, (oh * ow + taps) * kW);  // [pixel][channel], then the weights
    float* wt = sums + oh * ow * kW;                         // [tap][channel]
    std::fill(block, block + ph * pw * kW, 0.f);  // the padding border stays zero for every group
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t img = u / groups, c0 = u % groups * kW;
      const float* x = in + (img * C + c0) * h * w;
      for (int64_t t = 0; t < taps; ++t)
        for (int l = 0; l < kW; ++l) wt[t * kW + l] = weight[(c0 + l) * taps + t];
      Vec v[kW];
      if (blocked)
        for (int64_t iy = 0; iy < h; ++iy)
          copy_floats(x + iy * w * kW, block + ((iy + p.pad_t) * pw + p.pad_l) * kW, w * kW);
      // Else the planes kW pixels at a time (across row ends: fewer transposes than row by row).
      for (int64_t p0 = 0, iy = 0, ix = 0; !blocked && p0 < h * w; p0 += kW) {
        const int n = static_cast<int>(std::min<int64_t>(kW, h * w - p0));
        for (int l = 0; l < kW; ++l) v[l] = loadu_n(x + l * h * w + p0, n);
        transpose(v);
        for (int j = 0; j < n; ++j) {
          storeu(block + ((iy + p.pad_t) * pw + p.pad_l + ix) * kW, v[j]);
          if (++ix == w) ix = 0, ++iy;
        }
      }
      const Vec bv = loadu(bias + c0);
      if (taps == 9) lanes_taps<9>(p, block, pw, wt, tap_off.data(), taps, bv, oh, ow, sums);
      else lanes_taps<0>(p, block, pw, wt, tap_off.data(), taps, bv, oh, ow, sums);
      const Vec lo = set1(act.min), hi = set1(act.max), alpha = set1(act.alpha);
      for (int64_t p0 = 0; p0 < oh * ow; p0 += kW) {
        const int n = static_cast<int>(std::min<int64_t>(kW, oh * ow - p0));
        for (int j = 0; j < kW; ++j) v[j] = j < n ? loadu(sums + (p0 + j) * kW) : zero();
        transpose(v);
        for (int l = 0; l < kW; ++l) {
          const int64_t at = (img * C + c0 + l) * out_stride + p0;
          Vec a = v[l];
          if (residual) a = add(a, loadu_n(residual + at, n));
          storeu_n(out + at, activate(act.kind, a, lo, hi, alpha), n);
        }
      }
    }
  });
}

}  // namespace

bool depthwise_takes_blocked(const ConvParams& p, int64_t w, const Activation& act) {
  return kW == 16 && p.out_ch == p.in_ch && p.in_ch % kW == 0 && p.out_w(w) <= kLanesMaxWidth &&
         act.kind != ActKind::Sigmoid;
}

void depthwise_conv(const ConvParams& p, const float* weight, const float* bias, const Activation& act,
                    const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
                    ThreadPool& pool, int64_t out_stride, bool blocked_input) {
  const int64_t C = p.in_ch, mult = p.out_ch / p.in_ch, oh = p.out_h(h), ow = p.out_w(w), s = p.stride_w;
  if (out_stride == 0) out_stride = oh * ow;
  if (blocked_input || depthwise_takes_blocked(p, w, act)) {
    depthwise_lanes(p, weight, bias, act, in, batch, h, w, residual, out, pool, out_stride, blocked_input);
    return;
  }
  const int taps = static_cast<int>(p.kh * p.kw);
  if (s == 1) {
    // Which lanes of output vector c tap column kx may load: those whose column is in the image.
    const int64_t vecs = (ow + kW - 1) / kW;
    std::vector<simd::LaneMask> masks(vecs * p.kw);
    std::unique_ptr<bool[]> full(new bool[vecs * p.kw]);
    for (int64_t c = 0; c < vecs; ++c)
      for (int64_t kx = 0; kx < p.kw; ++kx) {
        const int64_t col = c * kW + kx * p.dil_w - p.pad_l;  // the column lane 0 reads
        const int64_t lo = std::clamp<int64_t>(-col, 0, kW);
        const int64_t hi = std::clamp<int64_t>(std::min(w - col, ow - c * kW), lo, kW);
        masks[c * p.kw + kx] = simd::lane_range(static_cast<int>(lo), static_cast<int>(hi));
        full[c * p.kw + kx] = lo == 0 && hi == kW;
      }
    pool.parallel_for(batch * C, [&](int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u)  // u: image * C + input channel
        for (int64_t o = u * mult; o < (u + 1) * mult; ++o) {
          const int64_t c = o % p.out_ch;
          const RowsPlane plane{in + u * h * w, h, w, oh, ow, masks.data(), full.get()};
          const float* res = residual ? residual + o * out_stride : nullptr;
          float* y = out + o * out_stride;
          const float* wt = weight + c * taps;
          if (p.kh == 3 && p.kw == 3) channel_rows<3>(p, plane, wt, bias[c], res, y, act);
          else if (p.kh == 5 && p.kw == 5) channel_rows<5>(p, plane, wt, bias[c], res, y, act);
          else channel_rows<0>(p, plane, wt, bias[c], res, y, act);
        }
    });
    return;
  }
  // Other strides: each plane split into zero-padded column phases (conv2d.h), so that tap t of
  // output row oy is a contiguous run at tap_off[t] + oy * step.
  const ColumnPhases phases(p, h, w);
  std::vector<int64_t> tap_off(taps);
  for (int64_t ky = 0, t = 0; ky < p.kh; ++ky)
    for (int64_t kx = 0; kx < p.kw; ++kx, ++t) tap_off[t] = phases.tap(p, 0, ky, kx);
  const int64_t step = p.stride_h * phases.qw;
  pool.parallel_for(batch * C, [&](int64_t b, int64_t e) {
    // Output vectors may read past a row's data, into its slack, and past the last row (lanes that
    // are not stored): zeroed once, so they hold no NaNs or denormals.
    float* pl = thread_scratch(1, phases.floats() + kW);
    std::fill(pl, pl + phases.floats() + kW, 0.f);
    for (int64_t u = b; u < e; ++u) {  // u: image * C + input channel
      phases.split(in + u * h * w, pl);
      // The plane feeds output channels u * mult ... (u + 1) * mult - 1 (of image u / C).
      for (int64_t o = u * mult; o < (u + 1) * mult; ++o) {
        const int64_t c = o % p.out_ch;
        const float* res = residual ? residual + o * out_stride : nullptr;
        float* y = out + o * out_stride;
        const float* wt = weight + c * taps;
        if (taps == 9) channel_kernel<9, 4>(pl, tap_off.data(), taps, step, wt, bias[c], res, y, oh, ow, act);
        else if (taps == 25) channel_kernel<25, 4>(pl, tap_off.data(), taps, step, wt, bias[c], res, y, oh, ow, act);
        else channel_kernel<0, 2>(pl, tap_off.data(), taps, step, wt, bias[c], res, y, oh, ow, act);
      }
    }
  });
}

}  // namespace kernels
}  // namespace dnn
