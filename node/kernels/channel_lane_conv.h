// Convolution with the output channels in the vector lanes and the output pixels in the register
// rows: conv2d's GEMM with its two operands swapped.
//
// conv2d's GEMM (C = W x im2col) puts output pixels in the lanes, and a small image leaves lanes
// idle: 7x7 = 49 pixels take 64 lanes, AlexNet's 13x13 = 169 take 192, 14x14 = 196 take 224.
// Here C^T = im2col^T x W^T instead: the channel counts of real CNNs are multiples of 16, and the
// pixel tile (register rows) is chosen to divide the image (7 rows for 49 pixels, 13 for 169, 14
// for 196), so nothing idles. Each finished tile is transposed in registers back to NCHW before the
// epilogue (bias, residual, activation): callers see an ordinary convolution.
//
// Loops, BLIS-style with the roles swapped: W^T is packed once, in strips of kNR output channels;
// for each strip and KC block of K, every pixel tile runs an R x kNR microkernel, partial sums
// waiting in a small per-thread buffer between K blocks. A tile on one output row reads its
// pixels straight from the input (or a zero-padded copy of it) through a table of tap offsets, at
// a fixed stride of 1, 2 or 4: no im2col at all. Only the other tiles (across a row end, or
// short) get a packed im2col^T panel per call. Every output is summed in the same order whatever
// the thread count.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/conv2d.h"

namespace dnn {
namespace kernels {

class ChannelLaneConv {
 public:
  // Whether this form leaves clearly fewer lanes idle than conv2d's GEMM on an output of `pixels`,
  // or the kernel is 5x5 or larger, where the GEMM mostly gathers im2col strips. Only with
  // 16-lane vectors (AVX-512), where it was measured; never for Sigmoid, which has no vector
  // epilogue.
  static bool pays(const ConvParams& p, int64_t pixels, const Activation& act);
  // From conv2d's packed weights (one group: out_ch x K, K = in_ch * kh * kw), read in place: no
  // unpacked copy, so switching a layer over costs one extra copy of its weights, not two.
  explicit ChannelLaneConv(const PackedA& weight);
  // As Conv2d::forward; p gives the padding; bias has out_ch floats. With `blocked` (out_ch a
  // multiple of the vector width, no residual), the output is left as the tiles make it, channels
  // in lanes: out[image][channel / W][pixel][channel % W] for W-lane vectors, with no transposes.
  void forward(const ConvParams& p, const float* in, int64_t batch, int64_t h, int64_t w, const float* bias,
               const float* residual, const Activation& act, float* out, ThreadPool& pool,
               bool blocked = false) const;

 private:
  struct Plan;  // how the tiles of one input size read their pixels (in place or packed)
  std::shared_ptr<const Plan> plan(const ConvParams& p, int64_t h, int64_t w) const;

  int64_t M_, K_;
  std::unique_ptr<float, void (*)(void*)> weight_;  // W^T in strips of kNR channels: [strip][K][kNR]
  // The plan of the last input size: a model runs every layer at one size, so it is made once.
  mutable std::mutex plan_mu_;
  mutable std::shared_ptr<const Plan> plan_;
};

}  // namespace kernels
}  // namespace dnn
