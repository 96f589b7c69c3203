// Winograd F(4x4, 3x3) convolution for dense 3x3, stride-1, undilated convolutions (VGG, ResNet):
// each 4x4 output tile costs 36 multiplies per (input, output) channel pair instead of 144.
//
// Weights are transformed (U = G g G^T: 36 matrices of in_ch x out_ch) once at load, or at every
// call into one scratch buffer that all layers share (transform_per_call). At run time
// tiles are processed in blocks: the input transform V = B^T d B of a block, then for each of the 36
// positions one GEMM V[xi]^T * U[xi]^T (tiles x out_ch, the same microkernel as every other
// convolution), then the output transform A^T m A, then bias, residual and activation.
// Transformed weights take 4x the original bytes, so conv2d.cpp uses this only where channels are
// few enough for that to stay small next to the model's weights, and transforms them per call on
// large images, where that costs little next to the convolution.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"

namespace dnn {
namespace kernels {

class Winograd {
 public:
  // Dense 3x3, stride 1, dilation 1 (any padding).
  static bool applies(const ConvParams& p);
  // weight: out_ch x in_ch x 3 x 3.
  Winograd(const ConvParams& p, const float* weight, bool transform_per_call);
  // As Conv2d::forward; p gives the padding; bias has out_ch floats.
  void forward(const ConvParams& p, const float* in, int64_t batch, int64_t h, int64_t w, const float* bias,
               const float* residual, const Activation& act, float* out, ThreadPool& pool) const;

 private:
  int64_t in_ch_, out_ch_;
  std::vector<float> u_;  // 36 transformed weight matrices, stored transposed: [xi][in_ch][out_ch]
  std::vector<float> g_;  // or, transformed per call: the weights as [in_ch][9][out_ch]
};

}  // namespace kernels
}  // namespace dnn
