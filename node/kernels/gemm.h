// Packed single-precision GEMM, BLIS style: C = epilogue(A * B).
//
// A (M x K) holds weights and is packed ONCE, at load time, into MR-row panels per KC-deep block of K.
// B (K x N) holds activations and is packed on the fly, one KC x NR strip at a time, by a BPacker —
// for a convolution the packer gathers the im2col columns directly, so no im2col matrix ever exists;
// a plain contiguous B may instead be read in place.
// A register-tiled microkernel (MR x NR accumulators) multiplies one A panel by one B strip; the
// epilogue (bias, residual, activation) runs on each tile right after its last K block.
//
// Determinism: every C element is accumulated in the same order (K blocks of KC, sequential k inside)
// whatever part of C a caller computes, so splitting work over threads never changes a result.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace dnn {
namespace kernels {

// Register tile and cache blocking for the build's instruction set.
#if defined(__AVX512F__)
constexpr int64_t kMR = 8, kNR = 32, kKC = 256;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int64_t kMR = 6, kNR = 16, kKC = 256;
#elif defined(__aarch64__)
// 24 accumulators + 3 B vectors + 2 A vectors (read by lane) of the 32 NEON registers.
constexpr int64_t kMR = 8, kNR = 12, kKC = 256;
#elif defined(__ARM_NEON)
// 32-bit ARM has 16 NEON registers: 8 accumulators + 2 B vectors + a broadcast A value.
constexpr int64_t kMR = 4, kNR = 8, kKC = 256;
#else
constexpr int64_t kMR = 4, kNR = 16, kKC = 256;
#endif
constexpr int64_t kNC = kNR * 12;  // columns of B packed at once (KC x NC floats stay in L2)
constexpr int64_t kMC = kMR * 12;  // rows of A swept per B strip (the A block stays in L2)

// A packed: for each KC block of K, panels of MR rows (zero-padded past M), k-major inside a panel.
class PackedA {
 public:
  PackedA() = default;
  // a(m, k) = src[m * row_stride + k * col_stride] * scale
  PackedA(const float* src, int64_t M, int64_t K, int64_t row_stride, int64_t col_stride, float scale = 1.f);
  // The same, packed into `buffer` (at least packed_floats(M, K) floats) owned by the caller:
  // for an A packed per call (an activation), without an allocation each time.
  PackedA(const float* src, int64_t M, int64_t K, int64_t row_stride, int64_t col_stride, float* buffer);
  static int64_t packed_floats(int64_t M, int64_t K) { return (M + kMR - 1) / kMR * kMR * K; }
  int64_t rows() const { return M_; }
  int64_t depth() const { return K_; }
  // Panel holding rows [m, m + MR) of the KC block starting at k0 (m a multiple of MR).
  const float* panel(int64_t k0, int64_t m) const { return data_.get() + k0 * Mpad_ + m * block_depth(k0); }
  int64_t block_depth(int64_t k0) const { return k0 + kKC <= K_ ? kKC : K_ - k0; }
  // The matrix back in row-major M x K form (for a kernel that re-derives its own weight layout).
  void unpack(float* dst) const;
  // One element, a(m, k).
  float at(int64_t m, int64_t k) const {
    const int64_t k0 = k / kKC * kKC;
    return panel(k0, m / kMR * kMR)[(k - k0) * kMR + m % kMR];
  }

 private:
  void pack(const float* src, int64_t row_stride, int64_t col_stride, float scale);
  int64_t M_ = 0, K_ = 0, Mpad_ = 0;
  std::shared_ptr<float> data_;
};

// Produces B one strip at a time: rows [k0, k0+kc) x columns [n, n+cols) written to dst row-major
// with ld floats per row (cols <= ld <= NR; the GEMM's strips have ld = NR), zero-filling columns
// past cols.
class BPacker {
 public:
  virtual ~BPacker() = default;
  virtual void pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* dst, int64_t ld) const = 0;
  // A full strip that can be read where it is (rows ldb floats apart), or null: then it is packed.
  virtual const float* in_place(int64_t k0, int64_t n, int64_t& ldb) const { return nullptr; }
  // Or one whose row k (k0 <= k < k0 + kc) is at the result + rows[k - k0]: a convolution's window
  // read straight from the input through a table of tap offsets. Null: packed.
  virtual const float* in_place_rows(int64_t k0, int64_t n, const int32_t*& rows) const { return nullptr; }
};

// B given as a matrix in memory: b(k, n) = src[k * row_stride + n * col_stride]. With in_place, a
// contiguous B is read directly instead of copied.
class MatrixPacker : public BPacker {
 public:
  MatrixPacker(const float* src, int64_t row_stride, int64_t col_stride = 1, bool in_place = false)
      : src_(src), row_stride_(row_stride), col_stride_(col_stride), in_place_(in_place) {}
  void pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* dst, int64_t ld) const override;
  const float* in_place(int64_t k0, int64_t n, int64_t& ldb) const override;

 private:
  const float* src_;
  int64_t row_stride_, col_stride_;
  bool in_place_;
};

// B packed once and shared: when a product is split by rows of A (too few column tiles to go round
// the threads), each unit would otherwise pack the same strips of B again. KC x NR strips, zero past
// N, all read in place. The buffer belongs to the caller.
class SharedB : public BPacker {
 public:
  static int64_t packed_floats(int64_t K, int64_t N) { return K * ((N + kNR - 1) / kNR * kNR); }
  // Packs all of `src` (K x N) into `buffer`, strips spread over the pool.
  SharedB(const BPacker& src, int64_t K, int64_t N, float* buffer, ThreadPool& pool);
  void pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* dst, int64_t ld) const override;
  const float* in_place(int64_t k0, int64_t n, int64_t& ldb) const override;

 private:
  float* strip(int64_t k0, int64_t n) const { return data_ + k0 * Npad_ + n * std::min(kKC, K_ - k0); }
  int64_t K_, Npad_;
  float* data_;
};

struct Epilogue {
  const float* bias = nullptr;      // per row of C (output channel), or null
  const float* residual = nullptr;  // laid out like C (same ldc), added after bias, or null
  Activation act;
};

// Floats of scratch gemm_block needs (one packed B block).
constexpr int64_t kGemmWorkspace = kKC * kNC;

// Computes rows [m0, m1) and columns [n0, n1) of C (row stride ldc) on the calling thread, in
// column chunks of at most kNC.
// m0 must be a multiple of kMR; workspace holds kGemmWorkspace floats, 64-byte aligned.
void gemm_block(const PackedA& A, const BPacker& B, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                float* C, int64_t ldc, const Epilogue& ep, float* workspace);

// Splits an M x N product into work units: column tiles of equal width (at most NC on one thread,
// one per thread on several when the columns allow) and, when there are too few columns to keep
// every thread busy, MR-aligned row chunks. Unit boundaries depend only on the shape and thread
// count, and never on timing.
struct GemmTiling {
  GemmTiling(int64_t M, int64_t N, int threads);
  int64_t units() const { return n_tiles * m_chunks; }
  void unit(int64_t u, int64_t& m0, int64_t& m1, int64_t& n0, int64_t& n1) const;
  int64_t M, N, n_tiles, n_step, m_chunks, m_step;
};

// C (M x N, row stride ldc) = epilogue(A * B) for an A that is not worth keeping packed (an
// activation), over the pool. a(m, k) = a_src[m * a_row_stride + k * a_col_stride] * scale.
void gemm(const float* a_src, int64_t a_row_stride, int64_t a_col_stride, float scale, const BPacker& B,
          int64_t M, int64_t K, int64_t N, float* C, int64_t ldc, const Epilogue& ep, ThreadPool& pool);
void gemm(const PackedA& A, const BPacker& B, int64_t N, float* C, int64_t ldc, const Epilogue& ep, ThreadPool& pool);

// This thread's 64-byte aligned scratch buffer number `slot` (0..5), grown to at least n floats and
// kept for the next call: kernels reuse it instead of allocating (and page-faulting) per call.
// (An operand the whole pool reads is a Tensor instead: it comes from, and goes back to, the
// activations' buffer cache, so at run time it costs no memory of its own.)
float* thread_scratch(int slot, int64_t n);

// 64-byte aligned float scratch for one thread.
std::unique_ptr<float, void (*)(void*)> alloc_floats(int64_t n);

}  // namespace kernels
}  // namespace dnn
