#include "kernels/winograd.h"

#include <algorithm>
#include <cstring>

#include "core/tensor.h"
#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

constexpr int64_t kTile = 4;  // output tile edge
constexpr int64_t kPatch = 6;  // input patch edge (tile + 2)
constexpr int64_t kXi = kPatch * kPatch;

using simd::Vec;
constexpr int64_t kW = simd::kWidth;

// r = B^T d, the F(4, 3) input transform, on vectors of independent tiles.
inline void input_transform(const Vec d[6], Vec r[6]) {
  using namespace simd;
  const Vec c2 = set1(2.f), c4 = set1(4.f), c5 = set1(5.f);
  r[0] = fma(c4, d[0], fnma(c5, d[2], d[4]));
  r[1] = fnma(c4, add(d[1], d[2]), add(d[3], d[4]));
  r[2] = fma(c4, sub(d[1], d[2]), sub(d[4], d[3]));
  r[3] = fma(c2, sub(d[3], d[1]), sub(d[4], d[2]));
  r[4] = fma(c2, sub(d[1], d[3]), sub(d[4], d[2]));
  r[5] = fma(c4, d[1], fnma(c5, d[3], d[5]));
}

// o = A^T m, the output transform.
inline void output_transform(const Vec m[6], Vec o[4]) {
  using namespace simd;
  const Vec a = add(m[1], m[2]), b = sub(m[1], m[2]), c = add(m[3], m[4]), d = sub(m[3], m[4]);
  o[0] = add(add(m[0], a), c);
  o[1] = fma(set1(2.f), d, b);
  o[2] = fma(set1(4.f), c, a);
  o[3] = add(fma(set1(8.f), d, b), m[5]);
}

// U[xi][c][m] = (G g G^T)[xi] for input channels [c0, c1), vectorised over output channels; g is
// laid out [c][9][m]. G is the F(4, 3) kernel transform.
void transform_weights(const float* g, int64_t C, int64_t M, int64_t c0, int64_t c1, float* u) {
  static const float G[6][3] = {{1.f / 4, 0, 0},         {-1.f / 6, -1.f / 6, -1.f / 6}, {-1.f / 6, 1.f / 6, -1.f / 6},
                                {1.f / 24, 1.f / 12, 1.f / 6}, {1.f / 24, -1.f / 12, 1.f / 6}, {0, 0, 1}};
  using namespace simd;
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t m0 = 0; m0 < M; m0 += kW) {
      const int n = static_cast<int>(std::min(kW, M - m0));
      Vec gv[9], t[6][3];
      for (int k = 0; k < 9; ++k) gv[k] = loadu_n(g + (c * 9 + k) * M + m0, n);
      for (int i = 0; i < 6; ++i)
        for (int s = 0; s < 3; ++s)
          t[i][s] = fma(set1(G[i][2]), gv[6 + s], fma(set1(G[i][1]), gv[3 + s], mul(set1(G[i][0]), gv[s])));
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j)
          storeu_n(u + ((i * 6 + j) * C + c) * M + m0,
                   fma(set1(G[j][2]), t[i][2], fma(set1(G[j][1]), t[i][1], mul(set1(G[j][0]), t[i][0]))), n);
    }
}

#if defined(__AVX512F__)
// One 4x4 output tile for 16 channels: o[i * 4 + j] holds output pixel (i, j) of every channel
// (lanes). Bias, residual and activation are applied here, and each channel's tile goes to its
// plane with one masked store per tile row (after a transpose), instead of 16 scalar stores.
// y (and residual) point at the tile's first pixel in the first channel's plane.
void store_tile16(simd::Vec o[16], int channels, int64_t ny, int64_t nx, const float* bias, float* y,
                  const float* residual, int64_t ow, int64_t plane, const Activation& act) {
  using namespace simd;
  const Vec b = loadu_n(bias, channels);
  for (int k = 0; k < 16; ++k) o[k] = add(o[k], b);
  transpose(o);  // o[c]: channel c's tile, pixel (i, j) in lane i * 4 + j
  const Vec lo = set1(act.min), hi = set1(act.max), alpha = set1(act.alpha);
  // Row i of the tile: lanes [4i, 4i + nx), stored at y + i * ow (so the pointer is offset by -4i).
  __mmask16 row_mask[4];
  for (int64_t i = 0; i < 4; ++i) row_mask[i] = i < ny ? static_cast<__mmask16>(((1u << nx) - 1) << (4 * i)) : 0;
  for (int c = 0; c < channels; ++c) {
    Vec v = o[c];
    if (residual) {
      Vec r = zero();
      for (int64_t i = 0; i < ny; ++i) r = _mm512_mask_loadu_ps(r, row_mask[i], residual + c * plane + i * (ow - 4));
      v = add(v, r);
    }
    v = activate(act.kind, v, lo, hi, alpha);
    for (int64_t i = 0; i < ny; ++i) _mm512_mask_storeu_ps(y + c * plane + i * (ow - 4), row_mask[i], v);
  }
}
#endif

// Tiles per block: a thread's transformed input and products for them (36 x (in_ch + out_ch) x
// tiles floats) should stay near 2 MB. (Counting in_ch only, VGG16's 128 -> 256 layer took 3.5 MB
// a thread, past the model's memory budget on 2 threads.)
int64_t target_tiles(int64_t in_ch, int64_t out_ch) {
  return std::clamp<int64_t>(14000 / std::max<int64_t>(in_ch + out_ch, 1), kNR, 8 * kNR);
}

}  // namespace

bool Winograd::applies(const ConvParams& p) {
  return p.groups == 1 && p.kh == 3 && p.kw == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1;
}

Winograd::Winograd(const ConvParams& p, const float* weight, bool transform_per_call)
    : in_ch_(p.in_ch), out_ch_(p.out_ch) {
  const int64_t C = in_ch_, M = out_ch_;
  g_.resize(C * 9 * M);  // [c][9][m]: output channels contiguous, for the vectorised transform
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int k = 0; k < 9; ++k) g_[(c * 9 + k) * M + m] = weight[(m * C + c) * 9 + k];
  if (transform_per_call) return;
  u_.resize(kXi * C * M);
  transform_weights(g_.data(), C, M, 0, C, u_.data());
  g_ = {};
}

void Winograd::forward(const ConvParams& p, const float* in, int64_t batch, int64_t h, int64_t w, const float* bias,
                       const float* residual, const Activation& act, float* out, ThreadPool& pool) const {
  const int64_t C = in_ch_, M = out_ch_, oh = p.out_h(h), ow = p.out_w(w);
  const int64_t th = (oh + kTile - 1) / kTile, tw = (ow + kTile - 1) / kTile;
  // A block is whole tile rows, so its output rows are complete when the epilogue runs over them.
  // With several threads, at least two blocks each where the image allows (ResNet18's 28x28
  // layers were one block, on one thread). Blocking changes no sum: a tile's products are the same.
  const int64_t threads = pool.size(), want_blocks = threads > 1 ? (2 * threads + batch - 1) / batch : 1;
  const int64_t rows_per_block =
      std::min(std::max<int64_t>(1, target_tiles(C, M) / tw), std::max<int64_t>(1, (th + want_blocks - 1) / want_blocks));
  const int64_t blocks = (th + rows_per_block - 1) / rows_per_block;
  const int64_t max_tiles = rows_per_block * tw;

  // Input rows of one tile row, padded, and its column phases: enough whole vectors for tw + 1 tiles.
  const int64_t nvec = (tw + 1 + kW - 1) / kW, row_len = 4 * kW * nvec;
  const int64_t ld = (max_tiles + 2 * kW - 1) / kW * kW;  // V row stride, with a vector of slack
  const int64_t tiles_pad = (max_tiles + kMR - 1) / kMR * kMR;

  // With 16-lane vectors, the output transform stores whole tile rows and applies the epilogue as
  // it goes (Sigmoid, with no vector form, keeps the separate pass).
  const bool fused = kW == 16 && act.kind != ActKind::Sigmoid;
  const float* transformed = u_.data();
  Tensor scratch;
  if (u_.empty()) {  // transformed now, into a buffer that goes back to the activations' cache
    scratch = Tensor::uninitialized({kXi * C * M});
    pool.parallel_for(C, [&](int64_t c0, int64_t c1) { transform_weights(g_.data(), C, M, c0, c1, scratch.f32()); });
    transformed = scratch.f32();
  }

  pool.parallel_for(batch * blocks, [&](int64_t ub, int64_t ue) {
    float* v = thread_scratch(1, kXi * C * ld);
    float* prod = thread_scratch(2, kXi * tiles_pad * M);
    float* apack = thread_scratch(4, PackedA::packed_floats(max_tiles, C));
    float* rows = thread_scratch(3, (kPatch + 6 + 6) * row_len);  // 6 padded rows, 6 B^T rows, phases
    float* ws = thread_scratch(0, kGemmWorkspace);
    float* padded = rows;
    float* vert = rows + kPatch * row_len;
    float* phase = vert + kPatch * row_len;  // 4 phases x row_len / 4, then the even/odd split
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t img = u / blocks, ty0 = u % blocks * rows_per_block, ty1 = std::min(th, ty0 + rows_per_block);
      const int64_t tiles = (ty1 - ty0) * tw;
      const float* x = in + img * C * h * w;
      // Input transform, vectorised over the tiles of a tile row: B^T along columns on whole padded
      // rows, then the rows split into 4 column phases so B^T along rows reads whole vectors.
      for (int64_t c = 0; c < C; ++c) {
        const float* plane = x + c * h * w;
        for (int64_t ty = ty0; ty < ty1; ++ty) {
          const int64_t y0 = ty * kTile - p.pad_t;
          for (int64_t r = 0; r < kPatch; ++r) {
            float* dst = padded + r * row_len;
            std::fill(dst, dst + row_len, 0.f);
            const int64_t iy = y0 + r;
            if (iy >= 0 && iy < h) {
              const int64_t n = std::min(w, row_len - p.pad_l);
              if (n > 0) std::memcpy(dst + p.pad_l, plane + iy * w, n * sizeof(float));
            }
          }
          for (int64_t xx = 0; xx < row_len; xx += kW) {
            Vec d[6], r[6];
            for (int k = 0; k < 6; ++k) d[k] = simd::loadu(padded + k * row_len + xx);
            input_transform(d, r);
            for (int k = 0; k < 6; ++k) simd::storeu(vert + k * row_len + xx, r[k]);
          }
          const int64_t quarter = row_len / 4;
          float* t_base = v + c * ld + (ty - ty0) * tw;
          for (int k = 0; k < 6; ++k) {
            // phase j holds columns 4q + j: two even/odd splits.
            float* even = phase + 4 * quarter;
            float* odd = even + 2 * quarter;
            const float* src = vert + k * row_len;
            for (int64_t q = 0; q < 2 * quarter; q += kW) {
              Vec e, o;
              simd::deinterleave2(src + 2 * q, e, o);
              simd::storeu(even + q, e);
              simd::storeu(odd + q, o);
            }
            for (int64_t q = 0; q < quarter; q += kW) {
              Vec e, o;
              simd::deinterleave2(even + 2 * q, e, o);
              simd::storeu(phase + q, e);
              simd::storeu(phase + 2 * quarter + q, o);
              simd::deinterleave2(odd + 2 * q, e, o);
              simd::storeu(phase + quarter + q, e);
              simd::storeu(phase + 3 * quarter + q, o);
            }
            for (int64_t tx = 0; tx < tw; tx += kW) {
              // Tile tx covers columns 4tx .. 4tx+5: phases 0-3 at tx, phases 0-1 at tx + 1.
              // (Shifting registers rather than reloading at tx + 1: a load straddling two fresh
              // vector stores stalls on store forwarding.)
              Vec d[6], r[6];
              for (int j = 0; j < 4; ++j) d[j] = simd::load(phase + j * quarter + tx);
              d[4] = simd::shift_in1(d[0], simd::load(phase + tx + kW));
              d[5] = simd::shift_in1(d[1], simd::load(phase + quarter + tx + kW));
              input_transform(d, r);
              // Lanes past tw spill into the next tile row's slots, which that row rewrites.
              for (int l = 0; l < 6; ++l) simd::storeu(t_base + (k * 6 + l) * C * ld + tx, r[l]);
            }
          }
        }
      }
      // 36 products, tiles x out_ch each: prod[xi] = V[xi]^T (tiles x C) * U[xi]^T (C x M). Tiles are
      // the GEMM's rows and output channels its vector lanes, so few tiles (small images) waste no lanes.
      for (int64_t xi = 0; xi < kXi; ++xi) {
        const PackedA a(v + xi * C * ld, tiles, C, 1, ld, apack);
        gemm_block(a, MatrixPacker(transformed + xi * C * M, M, 1, true), 0, tiles, 0, M, prod + xi * tiles_pad * M, M,
                   Epilogue{}, ws);
      }
      // Output transform, vectorised over output channels, scattered into the channel planes.
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t oy = (ty0 + t / tw) * kTile, ox = t % tw * kTile;
        const int64_t ny = std::min(kTile, oh - oy), nx = std::min(kTile, ow - ox);
        for (int64_t m0 = 0; m0 < M; m0 += kW) {
          const int nm = static_cast<int>(std::min(kW, M - m0));
          const float* src = prod + t * M + m0;
          Vec q[6][4];
          for (int k = 0; k < 6; ++k) {
            Vec mv[6];
            for (int l = 0; l < 6; ++l) mv[l] = simd::loadu_n(src + (k * 6 + l) * tiles_pad * M, nm);
            output_transform(mv, q[k]);
          }
          Vec o[16];  // o[i * 4 + j]: output pixel (i, j), channels in lanes
          for (int j = 0; j < 4; ++j) {
            Vec col[6] = {q[0][j], q[1][j], q[2][j], q[3][j], q[4][j], q[5][j]}, r[4];
            output_transform(col, r);
            for (int i = 0; i < 4; ++i) o[i * 4 + j] = r[i];
          }
          const int64_t offset = ((img * M + m0) * oh + oy) * ow + ox;
#if defined(__AVX512F__)
          if (fused) {
            store_tile16(o, nm, ny, nx, bias + m0, out + offset, residual ? residual + offset : nullptr, ow, oh * ow,
                         act);
            continue;
          }
#endif
          alignas(64) float os[16][kW];
          for (int k = 0; k < 16; ++k) simd::storeu(os[k], o[k]);
          float* y = out + offset;
          for (int lane = 0; lane < nm; ++lane, y += oh * ow)
            for (int64_t i = 0; i < ny; ++i)
              for (int64_t j = 0; j < nx; ++j) y[i * ow + j] = os[i * 4 + j][lane];
        }
      }
      if (fused) continue;
      // The epilogue over the block's complete output rows.
      const int64_t oy0 = ty0 * kTile, oy1 = std::min(oh, ty1 * kTile);
      for (int64_t m = 0; m < M; ++m) {
        float* y = out + ((img * M + m) * oh) * ow;
        const float* res = residual ? residual + ((img * M + m) * oh) * ow : nullptr;
        for (int64_t oy = oy0; oy < oy1; ++oy) finish_row(y + oy * ow, ow, bias[m], res ? res + oy * ow : nullptr, act);
      }
    }
  });
}

}  // namespace kernels
}  // namespace dnn
