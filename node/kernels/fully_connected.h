// Fully-connected layer, y = act(x * W^T + bias), for the small batches a device sees.
//
// At small batches this is memory-bound: every weight is read once per call, from memory, since a
// real fc layer is far larger than the caches. So the kernel reads fewer weights. W is kept
// transposed, a row of weights per input feature, and an input feature that is zero in every row
// of x skips its row. After a ReLU that is half of them or more (AlexNet's and VGG16's fc6 take
// 61-67 % nonzero inputs, fc7 and fc8 about 50 %): those bytes are never read.
//
// Outputs go in chunks of 1024 (the work units), and W^T is stored chunk by chunk: for each chunk,
// its 4 KB piece of every row, one after another. A chunk is one stream through memory, and a
// skipped row is a whole page of it, which the hardware prefetcher (it stays inside a page) does
// not fetch either.
//
// Each output is the sum over its nonzero inputs in increasing order: the same whatever the batch,
// the other rows of x or the thread count. (Layers small enough to stay in cache, LeNet's, keep W
// row-major and take dot products instead: there skipping saves no memory traffic.)
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace dnn {
namespace kernels {

// Layers of fewer weights than this (1 MB: they stay in cache, where skipping saves no memory
// traffic) keep W row-major and take dot products of its rows with x, several rows at a time.
constexpr int64_t kChunkedFloats = 256 * 1024;
// Outputs per chunk of W^T (a 4 KB page of each of its rows).
constexpr int64_t kFcChunk = 1024;

class FullyConnected {
 public:
  // w(o, k) = src[o * row_stride + k * col_stride] * scale, for o < out, k < in; bias: `out` floats
  // or null. The weights are copied into the kernel's form; the caller may free src.
  FullyConnected(const float* src, int64_t out, int64_t in, int64_t row_stride, int64_t col_stride,
                 float scale, const float* bias, const Activation& act);
  // Takes `weights` (out x in, row-major: Gemm's transB=1 form) and transposes them in place at
  // prepare(), when nothing else holds them any more, so the model's weights exist once in memory.
  // (Still shared then, they are copied instead.)
  FullyConnected(const Tensor& weights, const float* bias, const Activation& act);
  int64_t in_features() const { return in_; }
  // Puts the weights into the kernel's form, if the constructor did not (done by the first forward
  // otherwise). A layer calls it once the model's loader has let go of its constants.
  void prepare() const;
  // The weights as the kernel keeps them (after prepare(): W^T chunk by chunk, for large layers).
  const Tensor& weights() const { return w_; }
  // x: batch x in (row stride in), y: batch x out.
  void forward(const float* x, int64_t batch, float* y, ThreadPool& pool) const;

 private:
  void forward_rows(const float* x, int64_t batch, float* y, ThreadPool& pool) const;

  int64_t out_, in_;
  bool chunked_;              // W^T chunk by chunk, skipping zero inputs; else W row-major
  mutable std::once_flag prepared_;
  // W^T chunk by chunk (chunked_index), or W row-major; until prepare(), maybe the shared original
  mutable Tensor w_;
  mutable bool prepared_form_;
  std::vector<float> bias_;   // out floats (zeros without a bias)
  Activation act_;
};

// Where w(o, k) of a rows x cols matrix goes when it is stored transposed chunk by chunk: each
// chunk of `chunk` rows as its cols x chunk transpose, the chunks one after another.
int64_t chunked_index(int64_t o, int64_t k, int64_t rows, int64_t cols, int64_t chunk);
// In place: `w` (rows x cols, row-major) is rearranged so, with scratch of a few rows only.
void chunked_transpose_in_place(float* w, int64_t rows, int64_t cols, int64_t chunk);

}  // namespace kernels
}  // namespace dnn
