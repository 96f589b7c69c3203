// 2-D convolution, NCHW, any stride, dilation, (asymmetric) padding and group count, with bias,
// residual and activation fused into the epilogue. The method is chosen once:
//  - one input channel per group (depthwise, with any channel multiplier; also a single-channel
//    image such as LeNet's digits): a direct kernel, weights kept as they are. A GEMM would pack
//    an im2col matrix only to use each packed value for a handful of output channels;
//  - dense 3x3 stride 1 with at most kWinogradMaxPairs channel pairs, on images of at least
//    kWinogradMinPixels output pixels: Winograd F(4x4, 3x3). Its transformed weights are 4x larger,
//    so the channel-heavy late layers of VGG / ResNet stay on GEMM, and on small images it does not
//    pay for its transforms. The image size is known at prepare() (the model's declared input) or
//    else the first forward(), which decides once (later calls with another size keep the method:
//    it is correct for any size).
//  - one group on a small output image, whose pixel count fills the GEMM's vector lanes badly
//    (7x7 = 49 pixels in 64 lanes): the same GEMM transposed, channels in the lanes
//    (channel_lane_conv.h). Decided likewise.
//  - everything else: packed GEMM per group, the im2col gather fused into B packing
//    (1x1 stride-1 unpadded convolutions read the input in place).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/gemm.h"

namespace dnn {
namespace kernels {

struct ConvParams {
  int64_t in_ch = 0, out_ch = 0, groups = 1;
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  int64_t out_h(int64_t h) const { return (h + pad_t + pad_b - dil_h * (kh - 1) - 1) / stride_h + 1; }
  int64_t out_w(int64_t w) const { return (w + pad_l + pad_r - dil_w * (kw - 1) - 1) / stride_w + 1; }
};

// A channel plane zero-padded and split into stride_w column phases, so that a strided window reads
// contiguous columns: phase q, padded row y holds padded columns q, q + s, q + 2s, ... Layout
// [phase][padded row][qw floats], qw = ceil(padded width / s) + kSlack.
struct ColumnPhases {
  ColumnPhases(const ConvParams& p, int64_t h, int64_t w);
  static constexpr int64_t kSlack = 16;  // floats past a row's data, a vector or more: split() leaves them as they are
  static int64_t row_floats(const ConvParams& p, int64_t w) {  // qw
    return (w + p.pad_l + p.pad_r + p.stride_w - 1) / p.stride_w + kSlack;
  }
  int64_t floats() const { return s * ph * qw; }
  // Where tap (ky, kx) of output pixel (oy, 0) is, from the plane's start (pixel ox: + ox).
  int64_t tap(const ConvParams& p, int64_t oy, int64_t ky, int64_t kx) const {
    const int64_t col = kx * p.dil_w;
    return (col % s * ph + oy * p.stride_h + ky * p.dil_h) * qw + col / s;
  }
  // Writes dst (floats() floats: the data and its zero padding, not the slack) from an h x w plane.
  void split(const float* plane, float* dst) const;
  int64_t s, ph, qw, h, w, pad_t, pad_l;

 private:
  // Stride 2: the lanes of each vector of a padded row that are inside the image (bit i: lane i).
  std::vector<unsigned> lanes_;
};

// The im2col matrix of one group of one image (K = channels*kh*kw rows, N = out_h*out_w columns),
// gathered straight into packed B strips; padding reads as zero.
class Im2colPacker : public BPacker {
 public:
  // `in` points at the group's first input channel (planes of h x w follow). With `phases`, the
  // same channels as ColumnPhases(p, h, w) one after the other, and `taps` (K offsets: tap k of
  // output row 0 from the first plane's start): a strip within one output row is then read in
  // place (in_place_rows), the others copied from the phases without bounds checks.
  Im2colPacker(const float* in, int64_t h, int64_t w, const ConvParams& p, const float* phases = nullptr,
               const int32_t* taps = nullptr);
  void pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* dst, int64_t ld) const override;
  const float* in_place_rows(int64_t k0, int64_t n, const int32_t*& rows) const override;

 private:
  const float* in_;
  int64_t h_, w_, oh_, ow_;
  const ConvParams& p_;
  const float* phases_;
  const int32_t* taps_;
  int64_t row_step_;  // floats from one output row's taps to the next one's, in the phases
};

class Winograd;
class ChannelLaneConv;

// Largest in_ch * out_ch run through Winograd: 256 x 256 (9.4 MB of transformed weights).
constexpr int64_t kWinogradMaxPairs = 256 * 256;
// Fewer input channels than this (an RGB stem) leave too little GEMM work to pay for the transforms.
constexpr int64_t kWinogradMinChannels = 16;
// Smallest output (pixels) that gets Winograd. Measured: 1.5x faster than the GEMM at 28x28 and
// still ~1.4x at 14x14, but there the 4x weights stop being worth it: ResNet18's layer3 would add
// 21 MB of resident weights for ~2 ms, and the model's peak RSS must stay near its weight bytes.
constexpr int64_t kWinogradMinPixels = 28 * 28;
// From this many output pixels on, Winograd's weights are transformed per call rather than kept
// 4x larger: the transform does 162 multiply-adds per channel pair, the convolution 9 per pixel and
// pair (0.6 % at 56x56). On VGG16 that keeps 21 MB of transformed weights from being resident.
constexpr int64_t kWinogradPerCallPixels = 56 * 56;

class Conv2d {
 public:
  enum class Method { Gemm, Depthwise, Winograd, ChannelLanes };
  // weight: out_ch x (in_ch / groups) x kh x kw; bias: out_ch floats or null. Both are copied into
  // the kernel's own (packed) form, so the caller may free them.
  Conv2d(const ConvParams& p, const float* weight, const float* bias, const Activation& act);
  ~Conv2d();
  // in: batch x in_ch x h x w; out: batch x out_ch x out_h(h) x out_w(w); residual: like out, or null.
  void forward(const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
               ThreadPool& pool) const;
  // Fusion of an inverted-residual block's expansion and depthwise convolution (MobileNetV2): when
  // this is a 1x1 convolution feeding `dw` and nothing else, both run in bands of output rows, so
  // the expanded activation (6x the block's channels; 4.8 MB at MobileNetV2's 112x112) lives only
  // in a cache-sized band instead of going to memory and back. On small images, where both run
  // channels in lanes, the expansion's tiles go to the depthwise convolution as they are, without
  // transposes. Results are bit for bit those of the two convolutions run one after the other.
  bool can_feed_depthwise(const Conv2d& dw) const;
  // And the block's 1x1 projection after the depthwise convolution (this one): it takes each band
  // of depthwise output while that is still in cache, instead of the whole image from memory.
  bool can_feed_projection(const Conv2d& project) const;
  // in: batch x in_ch x h x w; out: dw's output, or with `project`, its output (with `residual`,
  // laid out like it, added as its fused residual). dw's padding must be set.
  void forward_into_depthwise(const Conv2d& dw, const float* in, int64_t batch, int64_t h, int64_t w, float* out,
                              ThreadPool& pool, const Conv2d* project = nullptr,
                              const float* residual = nullptr) const;
  // Settles the method for images of h x w (padding set), if no earlier call or forward() has.
  void prepare(int64_t h, int64_t w) const;
  // Gemm until prepare() or a first forward() has moved the convolution to Winograd or ChannelLanes.
  Method method() const { return method_; }
  // Keeps the GEMM whatever the image (call before the first forward): for tests of its packers,
  // whose shapes another method takes over on some builds.
  void pin_gemm() { pinned_gemm_ = true; }
  // auto_pad resolves the padding only once the input size is known.
  void set_padding(int64_t top, int64_t left, int64_t bottom, int64_t right);

 private:
  void forward_gemm(const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
                    ThreadPool& pool) const;

  // At the first forward(), when the image size is known: Winograd, ChannelLanes or Gemm.
  void choose_method(int64_t h, int64_t w) const;

  ConvParams p_;
  Activation act_;
  std::vector<float> bias_;       // out_ch floats (zeros without a bias)
  std::vector<float> depthwise_;  // Depthwise: out_ch x kh x kw as given
  bool winograd_candidate_ = false;
  bool pinned_gemm_ = false;
  // Set by prepare() or the first forward() (once: call_once).
  mutable std::once_flag chosen_;
  mutable Method method_ = Method::Gemm;
  mutable std::vector<PackedA> packed_;               // Gemm: one packed weight matrix per group
  mutable std::unique_ptr<Winograd> winograd_;        // Winograd: transformed weights
  mutable std::unique_ptr<ChannelLaneConv> lanes_;    // ChannelLanes: weights packed transposed
};

}  // namespace kernels
}  // namespace dnn
