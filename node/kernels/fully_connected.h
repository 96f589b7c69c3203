// Fully-connected layer, y = act(x * W^T + bias), for the small batches a device sees.
//
// At batch 1 this is memory-bound: W is streamed once at full bandwidth, several rows per pass.
// At batch b > 1 each weight vector, once loaded, is used for up to 8 rows of x before the next is
// read, so W still crosses the memory bus once per 8 images instead of once per image; W is walked
// in blocks of rows small enough to stay in L2 while all batch chunks use them.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/activation.h"

namespace dnn {
namespace kernels {

class FullyConnected {
 public:
  // w(o, k) = src[o * row_stride + k * col_stride] * scale, for o < out, k < in; bias: `out` floats
  // or null. The weights are copied into the kernel's row-major form; the caller may free src.
  FullyConnected(const float* src, int64_t out, int64_t in, int64_t row_stride, int64_t col_stride,
                 float scale, const float* bias, const Activation& act);
  // Shares `weights` (out x in, row-major: Gemm's transB=1 form, possibly a mapped model file)
  // instead of copying it, so the model's weights exist once in memory.
  FullyConnected(const Tensor& weights, const float* bias, const Activation& act);
  int64_t in_features() const { return in_; }
  // x: batch x in (row stride in), y: batch x out.
  void forward(const float* x, int64_t batch, float* y, ThreadPool& pool) const;

 private:
  int64_t out_, in_;
  Tensor w_;                 // out x in, row-major: shared with the model or the kernel's own copy
  std::vector<float> bias_;   // out floats (zeros without a bias)
  Activation act_;
};

}  // namespace kernels
}  // namespace dnn
