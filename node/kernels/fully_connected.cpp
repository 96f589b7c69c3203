#include "kernels/fully_connected.h"

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

constexpr int64_t kBatchChunk = 8;  // rows of x sharing one pass over the weights
constexpr int64_t kRowBlock = 16;   // weight rows per work item (16 x 9216 floats = 590 KB: in L2)

// dots[r * NB + b] = <w row r, x row b> for R weight rows and NB rows of x. The k loop runs in
// vectors, then a horizontal sum, then the scalar tail: the same order for every (R, NB), so an
// output never depends on the batch size or on how rows were grouped.
template <int R, int NB>
void dot_rows(const float* w, int64_t K, const float* x, float* dots) {
  using namespace simd;
  Vec acc[R][NB];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = zero();
  int64_t k = 0;
  for (; k + kWidth <= K; k += kWidth) {
    Vec wv[R];
    for (int r = 0; r < R; ++r) wv[r] = loadu(w + r * K + k);
    for (int b = 0; b < NB; ++b) {
      const Vec xv = loadu(x + b * K + k);
      for (int r = 0; r < R; ++r) acc[r][b] = fma(wv[r], xv, acc[r][b]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b) {
      float s = hsum(acc[r][b]);
      for (int64_t t = k; t < K; ++t) s += w[r * K + t] * x[b * K + t];
      dots[r * NB + b] = s;
    }
}

// Rows [o0, o1) of W against NB rows of x; y row stride is `out`.
template <int NB>
void rows_times_batch(const float* w, int64_t K, int64_t o0, int64_t o1, const float* x, float* y, int64_t out) {
  // As many weight rows per pass as the registers allow next to NB accumulators each.
  constexpr int R = NB <= 2 ? 4 : NB <= 3 ? 3 : NB <= 4 ? 2 : 1;
  float dots[R * NB];
  int64_t o = o0;
  for (; o + R <= o1; o += R) {
    dot_rows<R, NB>(w + o * K, K, x, dots);
    for (int r = 0; r < R; ++r)
      for (int b = 0; b < NB; ++b) y[b * out + o + r] = dots[r * NB + b];
  }
  for (; o < o1; ++o) {
    dot_rows<1, NB>(w + o * K, K, x, dots);
    for (int b = 0; b < NB; ++b) y[b * out + o] = dots[b];
  }
}

}  // namespace

FullyConnected::FullyConnected(const float* src, int64_t out, int64_t in, int64_t row_stride,
                               int64_t col_stride, float scale, const float* bias, const Activation& act)
    : out_(out), in_(in), w_({out, in}), bias_(out, 0.f), act_(act) {
  float* w = w_.f32();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) w[o * in + k] = src[o * row_stride + k * col_stride] * scale;
  if (bias) std::copy(bias, bias + out, bias_.begin());
}

FullyConnected::FullyConnected(const Tensor& weights, const float* bias, const Activation& act)
    : out_(weights.dim(0)), in_(weights.dim(1)), w_(weights), bias_(out_, 0.f), act_(act) {
  if (bias) std::copy(bias, bias + out_, bias_.begin());
}

void FullyConnected::forward(const float* x, int64_t batch, float* y, ThreadPool& pool) const {
  const int64_t blocks = (out_ + kRowBlock - 1) / kRowBlock;
  pool.parallel_for(blocks, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t o0 = blk * kRowBlock, o1 = std::min(out_, o0 + kRowBlock);
      for (int64_t b0 = 0; b0 < batch; b0 += kBatchChunk) {
        const float* xb = x + b0 * in_;
        float* yb = y + b0 * out_;
        switch (std::min(kBatchChunk, batch - b0)) {
          case 1: rows_times_batch<1>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 2: rows_times_batch<2>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 3: rows_times_batch<3>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 4: rows_times_batch<4>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 5: rows_times_batch<5>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 6: rows_times_batch<6>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 7: rows_times_batch<7>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          default: rows_times_batch<8>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
        }
        for (int64_t b = b0; b < std::min(batch, b0 + kBatchChunk); ++b)
          for (int64_t o = o0; o < o1; ++o) finish_row(y + b * out_ + o, 1, bias_[o], nullptr, act_);
      }
    }
  }, 1);
}

}  // namespace kernels
}  // namespace dnn
