// GCC 12 reports the _mm512_undefined_ps() inside AVX-512 intrinsics as maybe-uninitialized once
// they are inlined here (GCC bug 105593, fixed in GCC 13). Set before any include, so that it
// covers the intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/channel_lane_conv.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

using simd::Vec;
constexpr int kW = simd::kWidth;
constexpr int kVecs = kNR / kW;  // vectors per strip of channels
// Pixel rows per tile: kVecs accumulators each, plus the strip's vectors, within the register file.
#if defined(__AVX512F__)
constexpr int kMinRows = 6, kMaxRows = 14;
#else
constexpr int kMaxRows = kW < 6 ? kW : 6, kMinRows = kMaxRows / 2;
#endif
static_assert(kMaxRows <= kW, "a tile's pixels must fit the lanes of one vector once transposed");

// The tile height that pads the image least (the tallest of equals: fewer, longer B loads).
int tile_rows(int64_t pixels) {
  int best = kMaxRows;
  for (int r = kMaxRows; r >= kMinRows; --r)
    if ((pixels + r - 1) / r * r < (pixels + best - 1) / best * best) best = r;
  return best;
}

struct TileOutput {
  float* out;             // the strip's first channel at the tile's first pixel (NCHW, or blocked)
  bool blocked;           // channels in lanes: vector j of pixel r at out + (j * plane + r) * kW
  const float* residual;  // likewise, or null
  const float* bias;      // the strip's first channel
  int64_t plane;          // pixels per channel plane
  int channels, pixels;   // valid channels of the strip, valid pixels of the tile
  ActKind kind;
  Vec lo, hi, alpha;
};

// Rows [0, R) x kNR channels += A (kc x R) * b (kc x kNR). With SW = 0, A is a packed panel
// (k-major); otherwise A is read from the input itself: a(k, r) = a[offsets[k] + r * SW]. The
// sums start from zero or from `partial`; they go back to `partial`, or with `out` transposed to
// NCHW through the epilogue. Meanwhile up to kc cache lines from `next` are fetched into L2: the
// weights the next block will read, which inside a model come cold from L3 or memory.
template <int R, int SW>
void tile_product(int64_t kc, const float* a, const int32_t* offsets, const float* b, float* partial, bool first,
                  const TileOutput* out, const float* next, int64_t next_lines) {
  using namespace simd;
  Vec acc[R][kVecs];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) acc[r][j] = first ? zero() : load(partial + r * kNR + j * kW);
  constexpr int step = SW ? SW : 1;
  for (int64_t k = 0; k < kc; ++k, b += kNR) {
    if (k < next_lines) __builtin_prefetch(next + k * 16, 0, 2);
    const float* x = SW ? a + offsets[k] : a + k * R;
    Vec bv[kVecs];
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) bv[j] = load(b + j * kW);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Vec av = set1(x[r * step]);
#pragma GCC unroll 4
      for (int j = 0; j < kVecs; ++j) acc[r][j] = fma(av, bv[j], acc[r][j]);
    }
  }
  if (!out) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int j = 0; j < kVecs; ++j) storeu(partial + r * kNR + j * kW, acc[r][j]);
    return;
  }
  const TileOutput& o = *out;
  if (o.blocked) {
    for (int j = 0; j < kVecs && j * kW < o.channels; ++j) {
      const Vec bias = loadu(o.bias + j * kW);
      for (int r = 0; r < R && r < o.pixels; ++r)
        storeu(o.out + (j * o.plane + r) * kW, activate(o.kind, add(acc[r][j], bias), o.lo, o.hi, o.alpha));
    }
    return;
  }
  for (int j = 0; j < kVecs && j * kW < o.channels; ++j) {
    Vec rows[kW];  // rows[l]: channel j * kW + l over the tile's pixels
    for (int r = 0; r < kW; ++r) rows[r] = r < R ? acc[r][j] : zero();
    transpose(rows);
    for (int l = 0; l < kW && j * kW + l < o.channels; ++l) {
      const int64_t c = j * kW + l;
      Vec v = add(rows[l], set1(o.bias[c]));
      if (o.residual) v = add(v, loadu_n(o.residual + c * o.plane, o.pixels));
      storeu_n(o.out + c * o.plane, activate(o.kind, v, o.lo, o.hi, o.alpha), o.pixels);
    }
  }
}

using TileFn = void (*)(int64_t, const float*, const int32_t*, const float*, float*, bool, const TileOutput*,
                        const float*, int64_t);

template <int SW>
TileFn tile_fn(int rows) {
  static const TileFn table[] = {
      nullptr,               tile_product<1, SW>,  tile_product<2, SW>,  tile_product<3, SW>,  tile_product<4, SW>,
      tile_product<5, SW>,   tile_product<6, SW>,  tile_product<7, SW>,  tile_product<8, SW>,  tile_product<9, SW>,
      tile_product<10, SW>,  tile_product<11, SW>, tile_product<12, SW>, tile_product<13, SW>, tile_product<14, SW>};
  return table[rows];
}

// Input strides that direct tiles support (compile-time, so the R broadcasts use fixed offsets).
bool direct_stride(int64_t s) { return s == 1 || s == 2 || s == 4; }

TileFn tile_fn(int rows, int64_t stride) {  // stride 0: packed panels
  switch (stride) {
    case 1: return tile_fn<1>(rows);
    case 2: return tile_fn<2>(rows);
    case 4: return tile_fn<4>(rows);
    default: return tile_fn<0>(rows);
  }
}

}  // namespace

bool ChannelLaneConv::pays(const ConvParams& p, int64_t pixels, const Activation& act) {
  if (kW != 16 || p.groups != 1 || act.kind == ActKind::Sigmoid || pixels <= 0) return false;
  // Direct tiles read the input in place; the GEMM gathers im2col strips. That pays for a kernel
  // of 5x5 or more (ResNet's 7x7 stem, AlexNet's 11x11 and 5x5), whose strips come in short runs,
  // and for a strided window, whose strips the GEMM copies from column phases wherever they cross
  // a row end. Measured (kernels_bench --cold 1, ms): AlexNet conv2 5x5 3.54 -> 2.87, conv1 1.76 ->
  // 1.10, ResNet18 conv1 2.14 -> 1.85; in the model (bench --profile, min of 4 alternating runs):
  // ResNet18 layer2.0 3x3/2 1.19 -> 0.92, MobileNetV2's 3x3/2 stem no worse. Not for 3x3 stride-1
  // kernels: VGG16's conv4 no better or worse.
  const int64_t taps = p.kh * p.kw;
  if ((taps >= 25 || (taps > 1 && p.stride_w > 1)) && direct_stride(p.stride_w)) return true;
  auto used = [](int64_t n, int64_t step) { return double(n) / double((n + step - 1) / step * step); };
  const double gemm = used(pixels, kNR), lanes = used(p.out_ch, kNR) * used(pixels, tile_rows(pixels));
  return lanes > 1.04 * gemm;
}

ChannelLaneConv::ChannelLaneConv(const PackedA& weight)
    : M_(weight.rows()), K_(weight.depth()), weight_(alloc_floats((M_ + kNR - 1) / kNR * kNR * K_)) {
  float* d = weight_.get();
  for (int64_t m0 = 0; m0 < M_; m0 += kNR)
    for (int64_t k = 0; k < K_; ++k, d += kNR)
      for (int64_t j = 0; j < kNR; ++j) d[j] = m0 + j < M_ ? weight.at(m0 + j, k) : 0.f;
}

struct ChannelLaneConv::Plan {
  int64_t h = 0, w = 0, pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  int R = 0;
  int64_t tiles = 0;
  bool pointwise = false, direct = false;
  bool padded = false;   // direct tiles read a zero-padded copy of the input
  int64_t H = 0, W = 0;  // the image direct tiles read: the input, or its padded copy
  int64_t sw = 1;        // their stride along a row
  std::vector<int32_t> offset;     // tap k of a direct tile's pixel r is at its base + offset[k] + r * stride
  std::vector<int64_t> base;       // per tile: input offset of a direct tile, or -1
  std::vector<int64_t> panel;      // per tile: packed panel of an other tile, or -1
  int64_t panels = 0;
};

std::shared_ptr<const ChannelLaneConv::Plan> ChannelLaneConv::plan(const ConvParams& p, int64_t h, int64_t w) const {
  {
    std::lock_guard<std::mutex> lock(plan_mu_);
    if (plan_ && plan_->h == h && plan_->w == w && plan_->pad_t == p.pad_t && plan_->pad_l == p.pad_l &&
        plan_->pad_b == p.pad_b && plan_->pad_r == p.pad_r)
      return plan_;
  }
  auto plan = std::make_shared<Plan>();
  Plan& q = *plan;
  q.h = h, q.w = w, q.pad_t = p.pad_t, q.pad_l = p.pad_l, q.pad_b = p.pad_b, q.pad_r = p.pad_r;
  const int64_t N = p.out_h(h) * p.out_w(w);
  q.R = tile_rows(N);
  q.tiles = (N + q.R - 1) / q.R;
  q.pointwise = p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 && p.pad_l == 0 &&
                p.pad_b == 0 && p.pad_r == 0;
  // Direct tiles read their pixels in place, from the input or, with padding, from a padded copy
  // of it: a whole tile on one output row. Tap k = (channel, ky, kx) of pixel r is at the tile's
  // base + offset[k] + r * sw. (A pointwise convolution is one long row.) The other tiles (across a
  // row end, or short) are packed: im2col^T, all K rows of R pixels per tile, zero past the image.
  const bool pads = !q.pointwise && (p.pad_t || p.pad_l || p.pad_b || p.pad_r);
  q.H = q.pointwise ? 1 : h + p.pad_t + p.pad_b;
  q.W = q.pointwise ? N : w + p.pad_l + p.pad_r;
  const int64_t OW = q.pointwise ? N : p.out_w(w);
  q.sw = q.pointwise ? 1 : p.stride_w;
  q.direct = direct_stride(q.sw) && p.in_ch * q.H * q.W < INT32_MAX;
  q.offset.resize(q.direct ? K_ : 0);
  for (int64_t k = 0; k < static_cast<int64_t>(q.offset.size()); ++k) {
    const int64_t c = k / (p.kh * p.kw), ky = k / p.kw % p.kh, kx = k % p.kw;
    q.offset[k] = static_cast<int32_t>(c * q.H * q.W + ky * p.dil_h * q.W + kx * p.dil_w);
  }
  q.base.assign(q.tiles, -1);
  q.panel.assign(q.tiles, -1);
  for (int64_t t = 0; t < q.tiles; ++t) {
    const int64_t p0 = t * q.R, oy = p0 / OW, ox0 = p0 % OW;
    if (q.direct && p0 + q.R <= N && ox0 + q.R <= OW) {
      q.base[t] = oy * p.stride_h * q.W + ox0 * q.sw;
      q.padded = pads;  // a padded copy only if some tile reads it
    } else {
      q.panel[t] = q.panels++;
    }
  }
  std::lock_guard<std::mutex> lock(plan_mu_);
  plan_ = plan;
  return plan;
}

void ChannelLaneConv::forward(const ConvParams& p, const float* in, int64_t batch, int64_t h, int64_t w,
                              const float* bias, const float* residual, const Activation& act, float* out,
                              ThreadPool& pool, bool blocked) const {
  const std::shared_ptr<const Plan> plan_ref = plan(p, h, w);
  const Plan& q = *plan_ref;
  const int64_t N = p.out_h(h) * p.out_w(w), strips = (M_ + kNR - 1) / kNR;
  const int R = q.R;
  const int64_t tiles = q.tiles, panels = q.panels, H = q.H, W = q.W, sw = q.sw;
  const bool pointwise = q.pointwise, padded = q.padded, direct = q.direct;
  const std::vector<int64_t>& base = q.base;
  const std::vector<int64_t>& panel = q.panel;
  // Units: a strip of channels times a run of tiles; runs split only to feed every thread. Runs
  // are the outer index, so a thread's units cover a part of the image (and read that part of
  // the input) in every strip, not the whole image in some strips: on 2 threads MobileNetV2's
  // 14x14 projections ran no faster than on 1 the other way.
  const int64_t want = pool.size() > 1 ? 4 * pool.size() : 1;
  const int64_t runs = std::min(tiles, std::max<int64_t>(1, (want + strips - 1) / strips));
  const int64_t run_len = (tiles + runs - 1) / runs;
  // Depth of a block of K: the strip's weights for it (block_k x kNR floats) and the input rows its
  // tiles read should share L1. A pointwise tile reads a cache line per input channel, so a K that
  // takes several blocks goes in blocks of half the depth (kernels_bench --cold 1, ms: 960 -> 320
  // @7 0.245 -> 0.225, 320 -> 1280 @7 0.323 -> 0.292, 960 -> 160 @7 0.130 -> 0.120; 14x14 shapes
  // unchanged; a K of 160 cut in two, and 3x3 or larger kernels, measured no better or worse).
  const int64_t block_k = pointwise && K_ > kKC ? kKC / 2 : kKC;
  Tensor padded_input = Tensor::uninitialized({padded ? p.in_ch * H * W : 1});
  const TileFn direct_tile = tile_fn(R, direct ? sw : 0), packed_tile = tile_fn(R, 0);
  Tensor a_buffer = Tensor::uninitialized({std::max<int64_t>(1, panels * K_ * R)});
  float* a = a_buffer.f32();
  const float* weight_end = weight_.get() + strips * kNR * K_;
  for (int64_t img = 0; img < batch; ++img) {
    const float* x = in + img * p.in_ch * h * w;
    const float* xd = x;  // what direct tiles read
    if (padded) {
      float* xp = padded_input.f32();
      pool.parallel_for(p.in_ch, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          float* d = xp + c * H * W;
          simd::zero_floats(d, p.pad_t * W);
          for (int64_t y = 0; y < h; ++y) {
            float* row = d + (p.pad_t + y) * W;
            simd::zero_floats(row, p.pad_l);
            std::memcpy(row + p.pad_l, x + (c * h + y) * w, w * sizeof(float));
            simd::zero_floats(row + p.pad_l + w, p.pad_r);
          }
          simd::zero_floats(d + (p.pad_t + h) * W, p.pad_b * W);
        }
      });
      xd = xp;
    }
    const MatrixPacker matrix(x, N);
    const Im2colPacker im2col(x, h, w, p);
    const BPacker& packer = pointwise ? static_cast<const BPacker&>(matrix) : im2col;
    if (panels > 0)  // (a pass over the pool costs a wake-up and a barrier: not for nothing)
      pool.parallel_for(tiles, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          if (panel[t] >= 0) packer.pack(0, K_, t * R, std::min<int64_t>(R, N - t * R), a + panel[t] * K_ * R, R);
      });
    float* y = out + img * M_ * N;
    const float* res = residual ? residual + img * M_ * N : nullptr;
    pool.parallel_for(strips * runs, [&](int64_t u0, int64_t u1) {
      float* partial = thread_scratch(4, run_len * R * kNR);
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t m0 = u % strips * kNR, first_tile = u / strips * run_len;
        const int64_t last_tile = std::min(tiles, first_tile + run_len);
        TileOutput o{nullptr, blocked, nullptr, bias + m0, N, static_cast<int>(std::min(kNR, M_ - m0)), 0, act.kind,
                     simd::set1(act.min), simd::set1(act.max), simd::set1(act.alpha)};
        for (int64_t k0 = 0; k0 < K_; k0 += block_k) {
          const int64_t kc = std::min(block_k, K_ - k0);
          const float* b = weight_.get() + (m0 * K_ + k0 * kNR);
          const bool last = k0 + kc >= K_;
          // The next block of weights (of this strip, or the next strip's first): the tiles share
          // out fetching it, 16 floats (a cache line) per step of k.
          const float* next = b + kc * kNR;
          const int64_t next_floats = std::max<int64_t>(0, weight_end - next);
          for (int64_t t = first_tile; t < last_tile; ++t) {
            const int64_t done = (t - first_tile) * kc * 16;
            const int64_t lines = std::clamp<int64_t>((std::min(next_floats, block_k * kNR) - done) / 16, 0, kc);
            float* part = partial + (t - first_tile) * R * kNR;
            if (last) {
              o.out = blocked ? y + (m0 * N + t * R * kW) : y + m0 * N + t * R;
              o.residual = res ? res + m0 * N + t * R : nullptr;
              o.pixels = static_cast<int>(std::min<int64_t>(R, N - t * R));
            }
            if (base[t] >= 0)
              direct_tile(kc, xd + base[t], q.offset.data() + k0, b, part, k0 == 0, last ? &o : nullptr, next + done,
                          lines);
            else
              packed_tile(kc, a + (panel[t] * K_ + k0) * R, nullptr, b, part, k0 == 0, last ? &o : nullptr, next + done,
                          lines);
          }
        }
      }
    });
  }
}

}  // namespace kernels
}  // namespace dnn
