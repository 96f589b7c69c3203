// Direct depthwise convolution (groups == in_ch: each output channel reads one input channel;
// out_ch / in_ch filters per input channel), NCHW, any kernel size, stride, dilation and padding,
// with bias, residual and activation fused.
//
// At a column stride of 1 every tap of an output vector is one masked load straight from the input
// plane (the mask zeroes columns outside the image): nothing is copied. Other strides first copy
// each plane into a zero-padded buffer split into `stride_w` column phases (phase p holds padded
// columns p, p+s, p+2s, ...), so every tap again becomes one contiguous vector load. Both compute
// four output rows at a time, four independent chains of FMAs.
// Small images (output rows of at most 8 pixels) with 16-lane vectors go channels-in-lanes
// instead: 16 planes transposed into one pixel-major block, a vector of 16 channels per pixel.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/conv2d.h"

namespace dnn {
namespace kernels {

// weight: out_ch x kh x kw; bias: out_ch floats. Shapes as in Conv2d::forward, except that output
// (and residual) channel planes may lie `out_stride` floats apart (0: out_h * out_w, packed), for
// writing a band of rows into a larger image.
// With `blocked_input`, `in` holds the channels in lanes, as ChannelLaneConv's blocked output
// ([image][channel / W][pixel][channel % W]); only where depthwise_takes_blocked().
void depthwise_conv(const ConvParams& p, const float* weight, const float* bias, const Activation& act,
                    const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
                    ThreadPool& pool, int64_t out_stride = 0, bool blocked_input = false);

// Whether this convolution of a w-wide input runs channels in lanes, and so can take its input
// blocked (one filter per channel, whole vectors of channels, small output rows).
bool depthwise_takes_blocked(const ConvParams& p, int64_t w, const Activation& act);

}  // namespace kernels
}  // namespace dnn
