// GCC 12 reports the _mm512_undefined_ps() inside AVX-512 intrinsics as maybe-uninitialized once
// they are inlined here (GCC bug 105593, fixed in GCC 13). Set before any include, so that it
// covers the intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/channel_lane_conv.h"

#include <algorithm>
#include <cstring>

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
  float* out;             // the strip's first channel at the tile's first pixel (NCHW)
  const float* residual;  // likewise, or null
  const float* bias;      // the strip's first channel
  int64_t plane;          // pixels per channel plane
  int channels, pixels;   // valid channels of the strip, valid pixels of the tile
  ActKind kind;
  Vec lo, hi, alpha;
};

// Rows [0, R) x kNR channels += a (kc x R, k-major) * b (kc x kNR). The sums start from zero or
// from `partial`; they go back to `partial`, or with `out` transposed to NCHW through the epilogue.
// Meanwhile up to kc cache lines from `next` are fetched into L2: the weights the next block will
// read, which inside a model come cold from L3 or memory.
template <int R>
void tile_product(int64_t kc, const float* a, const float* b, float* partial, bool first, const TileOutput* out,
                  const float* next, int64_t next_lines) {
  using namespace simd;
  Vec acc[R][kVecs];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) acc[r][j] = first ? zero() : load(partial + r * kNR + j * kW);
  for (int64_t k = 0; k < kc; ++k, a += R, b += kNR) {
    if (k < next_lines) __builtin_prefetch(next + k * 16, 0, 2);
    Vec bv[kVecs];
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) bv[j] = load(b + j * kW);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Vec av = set1(a[r]);
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

using TileFn = void (*)(int64_t, const float*, const float*, float*, bool, const TileOutput*, const float*, int64_t);

TileFn tile_fn(int rows) {
  static const TileFn table[] = {nullptr,           tile_product<1>,  tile_product<2>,  tile_product<3>,
                                 tile_product<4>,  tile_product<5>,  tile_product<6>,  tile_product<7>,
                                 tile_product<8>,  tile_product<9>,  tile_product<10>, tile_product<11>,
                                 tile_product<12>, tile_product<13>, tile_product<14>};
  return table[rows];
}

}  // namespace

bool ChannelLaneConv::pays(const ConvParams& p, int64_t pixels, const Activation& act) {
  if (kW != 16 || p.groups != 1 || act.kind == ActKind::Sigmoid || pixels <= 0) return false;
  auto used = [](int64_t n, int64_t step) { return double(n) / double((n + step - 1) / step * step); };
  const int rows = tile_rows(pixels);
  const double gemm = used(pixels, kNR), lanes = used(p.out_ch, kNR) * used(pixels, rows);
  return lanes > 1.04 * gemm;
}

ChannelLaneConv::ChannelLaneConv(const PackedA& weight)
    : M_(weight.rows()), K_(weight.depth()), weight_(alloc_floats((M_ + kNR - 1) / kNR * kNR * K_)) {
  float* d = weight_.get();
  for (int64_t m0 = 0; m0 < M_; m0 += kNR)
    for (int64_t k = 0; k < K_; ++k, d += kNR)
      for (int64_t j = 0; j < kNR; ++j) d[j] = m0 + j < M_ ? weight.at(m0 + j, k) : 0.f;
}

void ChannelLaneConv::forward(const ConvParams& p, const float* in, int64_t batch, int64_t h, int64_t w,
                              const float* bias, const float* residual, const Activation& act, float* out,
                              ThreadPool& pool) const {
  const int64_t N = p.out_h(h) * p.out_w(w), strips = (M_ + kNR - 1) / kNR;
  const int R = tile_rows(N);
  const int64_t tiles = (N + R - 1) / R;
  const TileFn tile = tile_fn(R);
  // Units: a strip of channels times a run of tiles; runs split only to feed every thread.
  const int64_t want = pool.size() > 1 ? 4 * pool.size() : 1;
  const int64_t runs = std::min(tiles, std::max<int64_t>(1, (want + strips - 1) / strips));
  const int64_t run_len = (tiles + runs - 1) / runs;
  const bool pointwise = p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 &&
                         p.pad_l == 0 && p.pad_b == 0 && p.pad_r == 0;
  // im2col^T of one image: per tile, all K rows of R pixels (zero past the image).
  Tensor a_buffer = Tensor::uninitialized({tiles * K_ * R});
  float* a = a_buffer.f32();
  const float* weight_end = weight_.get() + strips * kNR * K_;
  for (int64_t img = 0; img < batch; ++img) {
    const float* x = in + img * p.in_ch * h * w;
    const MatrixPacker matrix(x, N);
    const Im2colPacker im2col(x, h, w, p);
    const BPacker& packer = pointwise ? static_cast<const BPacker&>(matrix) : im2col;
    pool.parallel_for(tiles, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) packer.pack(0, K_, t * R, std::min<int64_t>(R, N - t * R), a + t * K_ * R, R);
    });
    float* y = out + img * M_ * N;
    const float* res = residual ? residual + img * M_ * N : nullptr;
    pool.parallel_for(strips * runs, [&](int64_t u0, int64_t u1) {
      float* partial = thread_scratch(4, run_len * R * kNR);
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t m0 = u / runs * kNR, first_tile = u % runs * run_len;
        const int64_t last_tile = std::min(tiles, first_tile + run_len);
        TileOutput o{nullptr, nullptr, bias + m0, N, static_cast<int>(std::min(kNR, M_ - m0)), 0, act.kind,
                     simd::set1(act.min), simd::set1(act.max), simd::set1(act.alpha)};
        for (int64_t k0 = 0; k0 < K_; k0 += kKC) {
          const int64_t kc = std::min(kKC, K_ - k0);
          const float* b = weight_.get() + (m0 * K_ + k0 * kNR);
          const bool last = k0 + kc >= K_;
          // The next block of weights (of this strip, or the next strip's first): the tiles share
          // out fetching it, 16 floats (a cache line) per step of k.
          const float* next = b + kc * kNR;
          const int64_t next_floats = std::max<int64_t>(0, weight_end - next);
          for (int64_t t = first_tile; t < last_tile; ++t) {
            const int64_t done = (t - first_tile) * kc * 16;
            const int64_t lines = std::clamp<int64_t>((std::min(next_floats, kKC * kNR) - done) / 16, 0, kc);
            float* part = partial + (t - first_tile) * R * kNR;
            if (last) {
              o.out = y + m0 * N + t * R;
              o.residual = res ? res + m0 * N + t * R : nullptr;
              o.pixels = static_cast<int>(std::min<int64_t>(R, N - t * R));
            }
            tile(kc, a + (t * K_ + k0) * R, b, part, k0 == 0, last ? &o : nullptr, next + done, lines);
          }
        }
      }
    });
  }
}

}  // namespace kernels
}  // namespace dnn
