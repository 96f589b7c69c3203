#include "kernels/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/tensor.h"
#include "kernels/simd.h"

namespace dnn {
namespace kernels {

std::unique_ptr<float, void (*)(void*)> alloc_floats(int64_t n) {
  size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  return {static_cast<float*>(p), std::free};
}

float* thread_scratch(int slot, int64_t n) {
  struct Buffer {
    std::unique_ptr<float, void (*)(void*)> data{nullptr, std::free};
    int64_t size = 0;
  };
  thread_local Buffer buffers[6];
  Buffer& b = buffers[slot];
  if (b.size < n) {
    b.data = alloc_floats(n);
    b.size = n;
  }
  return b.data.get();
}

PackedA::PackedA(const float* src, int64_t M, int64_t K, int64_t row_stride, int64_t col_stride, float scale)
    : M_(M), K_(K), Mpad_((M + kMR - 1) / kMR * kMR) {
  data_ = std::shared_ptr<float>(alloc_floats(Mpad_ * K_).release(), std::free);
  pack(src, row_stride, col_stride, scale);
}

PackedA::PackedA(const float* src, int64_t M, int64_t K, int64_t row_stride, int64_t col_stride, float* buffer)
    : M_(M), K_(K), Mpad_((M + kMR - 1) / kMR * kMR) {
  data_ = std::shared_ptr<float>(buffer, [](float*) {});
  pack(src, row_stride, col_stride, 1.f);
}

void PackedA::unpack(float* dst) const {
  for (int64_t k0 = 0; k0 < K_; k0 += kKC)
    for (int64_t m = 0; m < M_; m += kMR) {
      const float* p = panel(k0, m);
      for (int64_t k = k0; k < k0 + block_depth(k0); ++k, p += kMR)
        for (int64_t r = m; r < std::min(M_, m + kMR); ++r) dst[r * K_ + k] = p[r - m];
    }
}

void PackedA::pack(const float* src, int64_t row_stride, int64_t col_stride, float scale) {
  float* d = data_.get();
  if (row_stride == 1 && scale == 1.f) {  // rows contiguous (an activation packed per call): vector copies
    for (int64_t k0 = 0; k0 < K_; k0 += kKC) {
      const int64_t kc = block_depth(k0);
      for (int64_t m = 0; m < Mpad_; m += kMR) {
        const int64_t rows = std::min<int64_t>(kMR, std::max<int64_t>(0, M_ - m));
        for (int64_t k = k0; k < k0 + kc; ++k, d += kMR) {
          const float* s = src + k * col_stride + m;
          for (int64_t r = 0; r < kMR; r += simd::kWidth) {
            const int n = static_cast<int>(std::clamp<int64_t>(rows - r, 0, simd::kWidth));
            simd::storeu_n(d + r, simd::loadu_n(s + r, n), static_cast<int>(std::min<int64_t>(simd::kWidth, kMR - r)));
          }
        }
      }
    }
    return;
  }
  for (int64_t k0 = 0; k0 < K_; k0 += kKC) {
    const int64_t kc = block_depth(k0);
    for (int64_t m = 0; m < Mpad_; m += kMR)
      for (int64_t k = k0; k < k0 + kc; ++k)
        for (int64_t r = m; r < m + kMR; ++r) *d++ = r < M_ ? src[r * row_stride + k * col_stride] * scale : 0.f;
  }
}

void MatrixPacker::pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* dst, int64_t ld) const {
  const float* src = src_ + k0 * row_stride_ + n * col_stride_;
  for (int64_t k = 0; k < kc; ++k, dst += ld, src += row_stride_) {
    if (col_stride_ == 1)
      simd::copy_floats(src, dst, cols);
    else
      for (int64_t j = 0; j < cols; ++j) dst[j] = src[j * col_stride_];
    simd::zero_floats(dst + cols, ld - cols);
  }
}

const float* MatrixPacker::in_place(int64_t k0, int64_t n, int64_t& ldb) const {
  if (!in_place_ || col_stride_ != 1) return nullptr;
  ldb = row_stride_;
  return src_ + k0 * row_stride_ + n;
}

namespace {

constexpr int kVecs = kNR / simd::kWidth;  // vectors per tile row

// The epilogue of a full tile, applied in registers after its last K block.
struct TileEpilogue {
  const float* bias;      // MR values, one per row
  const float* residual;  // tile origin in the residual (row stride ldc), or null
  ActKind kind;
  simd::Vec lo, hi, alpha;
};

// C[MR x cols] (+)= A panel (MR x kc, k-major) * B strip (kc rows of NR, row stride ldb, or row k
// at b + rows[k] with a table); every MR*NR sum stays in registers, and only the first `cols`
// columns of C are touched. With `ep`, bias, residual and activation are applied before the store.
template <bool ROWS>
void microkernel(int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* rows, float* c, int64_t ldc,
                 int cols, bool accumulate, const TileEpilogue* ep) {
  using namespace simd;
  Vec acc[kMR][kVecs];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) acc[i][j] = zero();
  for (int64_t k = 0; k < kc; ++k) {
    DNN_MCA_BEGIN("gemm");
    const float* bk = ROWS ? b + rows[k] : b;
    Vec bv[kVecs];
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) bv[j] = loadu(bk + j * kWidth);
#if defined(__aarch64__)
    // A's column as MR / 4 vectors, each lane multiplied in by fmla-by-element: no broadcasts.
#pragma GCC unroll 4
    for (int i = 0; i < kMR; i += 4) {
      const Vec av = loadu(a + i);
#pragma GCC unroll 4
      for (int j = 0; j < kVecs; ++j) {
        acc[i][j] = vfmaq_laneq_f32(acc[i][j], bv[j], av, 0);
        acc[i + 1][j] = vfmaq_laneq_f32(acc[i + 1][j], bv[j], av, 1);
        acc[i + 2][j] = vfmaq_laneq_f32(acc[i + 2][j], bv[j], av, 2);
        acc[i + 3][j] = vfmaq_laneq_f32(acc[i + 3][j], bv[j], av, 3);
      }
    }
#elif defined(__ARM_NEON)
    // 32-bit ARM has no FMA by element: A's column as one vector, each lane broadcast in NEON
    // registers (a broadcast load goes through a core register there).
#pragma GCC unroll 4
    for (int i = 0; i < kMR; i += 4) {
      const Vec av = loadu(a + i);
      const Vec al[4] = {vdupq_lane_f32(vget_low_f32(av), 0), vdupq_lane_f32(vget_low_f32(av), 1),
                         vdupq_lane_f32(vget_high_f32(av), 0), vdupq_lane_f32(vget_high_f32(av), 1)};
#pragma GCC unroll 4
      for (int l = 0; l < 4; ++l)
#pragma GCC unroll 4
        for (int j = 0; j < kVecs; ++j) acc[i + l][j] = fma(al[l], bv[j], acc[i + l][j]);
    }
#else
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const Vec av = set1(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < kVecs; ++j) acc[i][j] = fma(av, bv[j], acc[i][j]);
    }
#endif
    a += kMR;
    b += ldb;
    DNN_MCA_END("gemm");
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kVecs; ++j) {
      float* p = c + i * ldc + j * kWidth;
      const int n = std::max(0, std::min<int>(kWidth, cols - j * kWidth));
      if (n == kWidth) {
        Vec v = accumulate ? add(loadu(p), acc[i][j]) : acc[i][j];
        if (ep) {
          v = add(v, set1(ep->bias[i]));
          if (ep->residual) v = add(v, loadu(ep->residual + i * ldc + j * kWidth));
          v = activate(ep->kind, v, ep->lo, ep->hi, ep->alpha);
        }
        storeu(p, v);
      } else if (n > 0) {  // a partial strip: the same arithmetic on the first n lanes
        Vec v = accumulate ? add(loadu_n(p, n), acc[i][j]) : acc[i][j];
        if (ep) {
          v = add(v, set1(ep->bias[i]));
          if (ep->residual) v = add(v, loadu_n(ep->residual + i * ldc + j * kWidth, n));
          v = activate(ep->kind, v, ep->lo, ep->hi, ep->alpha);
        }
        storeu_n(p, v, n);
      }
    }
}

}  // namespace

void gemm_block(const PackedA& A, const BPacker& B, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                float* C, int64_t ldc, const Epilogue& ep, float* workspace) {
  if (n1 - n0 > kNC) {  // the workspace holds kNC columns of B
    for (int64_t n = n0; n < n1; n += kNC) gemm_block(A, B, m0, m1, n, std::min(n1, n + kNC), C, ldc, ep, workspace);
    return;
  }
  const int64_t K = A.depth();
  alignas(64) float edge[kMR * kNR];
  if (K == 0)  // an empty sum: C is the epilogue of zero
    for (int64_t m = m0; m < m1; ++m) {
      std::fill(C + m * ldc + n0, C + m * ldc + n1, 0.f);
      finish_row(C + m * ldc + n0, n1 - n0, ep.bias ? ep.bias[m] : 0.f,
                 ep.residual ? ep.residual + m * ldc + n0 : nullptr, ep.act);
    }
  static const float kNoBias[kMR] = {};
  // Sigmoid has no vector form: full tiles get bias and residual in registers, then finish_row.
  const bool sigmoid = ep.act.kind == ActKind::Sigmoid;
  TileEpilogue tile_ep{nullptr, nullptr, ep.act.kind, simd::set1(ep.act.min), simd::set1(ep.act.max),
                       simd::set1(ep.act.alpha)};
  const int64_t strips = (n1 - n0 + kNR - 1) / kNR;  // at most kNC / kNR
  const float* strip_ptr[kNC / kNR];
  int64_t strip_ld[kNC / kNR];
  const int32_t* strip_rows[kNC / kNR];
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = A.block_depth(k0);
    const bool first = k0 == 0, last = k0 + kc >= K;
    for (int64_t s = 0; s < strips; ++s) {
      const int64_t n = n0 + s * kNR, cols = std::min(kNR, n1 - n);
      strip_rows[s] = nullptr;
      strip_ptr[s] = cols == kNR ? B.in_place(k0, n, strip_ld[s]) : nullptr;
      if (!strip_ptr[s] && cols == kNR) {
        strip_ptr[s] = B.in_place_rows(k0, n, strip_rows[s]);
        strip_ld[s] = 0;
      }
      if (!strip_ptr[s]) {
        float* dst = workspace + s * kc * kNR;
        B.pack(k0, kc, n, cols, dst, kNR);
        strip_ptr[s] = dst;
        strip_ld[s] = kNR;
      }
    }
    for (int64_t mb = m0; mb < m1; mb += kMC) {
      const int64_t me = std::min(m1, mb + kMC);
      for (int64_t s = 0; s < strips; ++s) {
        const int64_t n = n0 + s * kNR, cols = std::min(kNR, n1 - n);
        for (int64_t m = mb; m < me; m += kMR) {
          const int64_t rows = std::min(kMR, me - m);
          float* c = C + m * ldc + n;
          if (rows == kMR) {
            tile_ep.bias = ep.bias ? ep.bias + m : kNoBias;
            tile_ep.residual = ep.residual ? ep.residual + m * ldc + n : nullptr;
            (strip_rows[s] ? microkernel<true> : microkernel<false>)(kc, A.panel(k0, m), strip_ptr[s], strip_ld[s],
                                                                     strip_rows[s], c, ldc, static_cast<int>(cols),
                                                                     !first, last ? &tile_ep : nullptr);
            if (last && sigmoid)
              for (int64_t r = 0; r < rows; ++r) finish_row(c + r * ldc, cols, 0.f, nullptr, ep.act);
            continue;
          }
          // Last rows of A (M not a multiple of MR): product into scratch, then the valid part into C.
          (strip_rows[s] ? microkernel<true> : microkernel<false>)(kc, A.panel(k0, m), strip_ptr[s], strip_ld[s],
                                                                   strip_rows[s], edge, kNR, kNR, false, nullptr);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < cols; ++j) c[r * ldc + j] = first ? edge[r * kNR + j] : c[r * ldc + j] + edge[r * kNR + j];
          if (last)
            for (int64_t r = 0; r < rows; ++r)
              finish_row(c + r * ldc, cols, ep.bias ? ep.bias[m + r] : 0.f,
                         ep.residual ? ep.residual + (m + r) * ldc + n : nullptr, ep.act);
        }
      }
    }
  }
}

GemmTiling::GemmTiling(int64_t M_, int64_t N_, int threads) : M(M_), N(N_) {
  const int64_t strips = (N + kNR - 1) / kNR, m_panels = std::max<int64_t>(1, (M + kMR - 1) / kMR);
  // Column tiles of equal width, whole strips. On one thread at most NC wide: 784 columns are
  // 3 x 288, not 384 + 384 + 16. On several, with columns enough, one tile per thread: each unit
  // then packs only its own B, with no copy shared between row chunks (VGG16's conv4 shared a
  // 14.7 MB one), and the threads get equal work (with 384 + 384 + 16 conv4 scaled 1.5x, not 2x).
  const bool by_columns = threads > 1 && strips >= 2 * threads;
  n_tiles = by_columns ? threads : std::max<int64_t>(1, (N + kNC - 1) / kNC);
  n_step = std::max<int64_t>(kNR, ((N + n_tiles - 1) / n_tiles + kNR - 1) / kNR * kNR);
  n_tiles = std::max<int64_t>(1, (N + n_step - 1) / n_step);
  // Too few columns for the threads: row chunks too, a multiple of the threads where rows allow;
  // they share one packed B (gemm()), cheap next to the product.
  const int64_t want = threads > 1 && !by_columns ? 4 * threads : 1;
  m_chunks = std::min(m_panels, std::max<int64_t>(1, (want + n_tiles - 1) / n_tiles));
  while (want > 1 && n_tiles * m_chunks % threads != 0 && m_chunks < m_panels) ++m_chunks;
  m_step = (m_panels + m_chunks - 1) / m_chunks * kMR;
  m_chunks = std::max<int64_t>(1, (M + m_step - 1) / m_step);
}

void GemmTiling::unit(int64_t u, int64_t& m0, int64_t& m1, int64_t& n0, int64_t& n1) const {
  const int64_t t = u / m_chunks, c = u % m_chunks;
  n0 = t * n_step;
  n1 = std::min(N, n0 + n_step);
  m0 = c * m_step;
  m1 = std::min(M, m0 + m_step);
}

SharedB::SharedB(const BPacker& src, int64_t K, int64_t N, float* buffer, ThreadPool& pool)
    : K_(K), Npad_((N + kNR - 1) / kNR * kNR), data_(buffer) {
  const int64_t blocks = (K + kKC - 1) / kKC, strips = Npad_ / kNR;
  pool.parallel_for(blocks * strips, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t k0 = u / strips * kKC, n = u % strips * kNR;
      src.pack(k0, std::min(kKC, K - k0), n, std::min(kNR, N - n), strip(k0, n), kNR);
    }
  });
}

void SharedB::pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* dst, int64_t ld) const {
  const float* src = strip(k0, n);
  for (int64_t k = 0; k < kc; ++k, dst += ld, src += kNR) {
    std::memcpy(dst, src, sizeof(float) * cols);
    std::fill(dst + cols, dst + ld, 0.f);
  }
}

const float* SharedB::in_place(int64_t k0, int64_t n, int64_t& ldb) const {
  ldb = kNR;
  return strip(k0, n);
}

void gemm(const PackedA& A, const BPacker& B, int64_t N, float* C, int64_t ldc, const Epilogue& ep, ThreadPool& pool) {
  const GemmTiling tiling(A.rows(), N, pool.size());
  // Split by rows of A: pack B once for all units, unless it is read in place anyway.
  int64_t ld;
  Tensor buffer;
  std::unique_ptr<SharedB> shared;
  if (tiling.m_chunks > 1 && !B.in_place(0, 0, ld)) {
    buffer = Tensor::uninitialized({SharedB::packed_floats(A.depth(), N)});
    shared = std::make_unique<SharedB>(B, A.depth(), N, buffer.f32(), pool);
  }
  const BPacker& b = shared ? *shared : B;
  pool.parallel_for(tiling.units(), [&](int64_t u0, int64_t u1) {
    float* ws = thread_scratch(0, kGemmWorkspace);
    for (int64_t u = u0; u < u1; ++u) {
      int64_t m0, m1, n0, n1;
      tiling.unit(u, m0, m1, n0, n1);
      gemm_block(A, b, m0, m1, n0, n1, C, ldc, ep, ws);
    }
  });
}

void gemm(const float* a_src, int64_t a_row_stride, int64_t a_col_stride, float scale, const BPacker& B,
          int64_t M, int64_t K, int64_t N, float* C, int64_t ldc, const Epilogue& ep, ThreadPool& pool) {
  gemm(PackedA(a_src, M, K, a_row_stride, a_col_stride, scale), B, N, C, ldc, ep, pool);
}

}  // namespace kernels
}  // namespace dnn
