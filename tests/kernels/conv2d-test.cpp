// Conv2d (GEMM with fused im2col, pointwise, Winograd, channels in lanes, depthwise with any channel multiplier) against a double-precision reference on
// random data: many shapes, strides, dilations, groups, asymmetric pads, batch > 1, every fused
// activation, with and without residual; 1 and 2 threads must agree bit for bit.
#include <gtest/gtest.h>

#include "kernels/reference.h"

namespace dnn {
namespace {

using kernels::ActKind;
using kernels::Activation;
using kernels::ConvParams;

struct Case {
  int64_t batch, in_ch, h, w, out_ch, groups, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  ActKind act;
  bool bias, residual;
};

std::string describe(const Case& c) {
  std::ostringstream o;
  o << "n" << c.batch << " c" << c.in_ch << " " << c.h << "x" << c.w << " -> " << c.out_ch << " g" << c.groups << " k"
    << c.kh << "x" << c.kw << " s" << c.sh << "," << c.sw << " d" << c.dh << "," << c.dw << " pads " << c.pt << ","
    << c.pl << "," << c.pb << "," << c.pr << " act " << int(c.act) << (c.residual ? " residual" : "");
  return o.str();
}

void run_case(const Case& c, kernels::Conv2d::Method expect_method, bool pin_gemm = false) {
  const ConvParams p{c.in_ch, c.out_ch, c.groups, c.kh, c.kw, c.sh, c.sw, c.dh, c.dw, c.pt, c.pl, c.pb, c.pr};
  Activation act;
  act.kind = c.act;
  act.min = -0.3f;
  act.max = 0.4f;
  act.alpha = 0.1f;
  const int64_t oh = p.out_h(c.h), ow = p.out_w(c.w);
  const auto x = testref::random_floats(c.batch * c.in_ch * c.h * c.w, 1);
  const auto wt = testref::random_floats(c.out_ch * c.in_ch / c.groups * c.kh * c.kw, 2);
  const auto bias = testref::random_floats(c.out_ch, 3);
  const auto res = testref::random_floats(c.batch * c.out_ch * oh * ow, 4);
  const float* b = c.bias ? bias.data() : nullptr;
  const float* r = c.residual ? res.data() : nullptr;
  kernels::Conv2d conv(p, wt.data(), b, act);
  if (pin_gemm) conv.pin_gemm();
  const auto ref = testref::conv(p, x.data(), c.batch, c.h, c.w, wt.data(), b, r, act);
  std::vector<float> y1(ref.size()), y2(ref.size());
  ThreadPool one(1), two(2);
  conv.forward(x.data(), c.batch, c.h, c.w, r, y1.data(), one);
  conv.forward(x.data(), c.batch, c.h, c.w, r, y2.data(), two);
  EXPECT_EQ(conv.method(), expect_method) << describe(c);
  testref::expect_close(y1.data(), ref, describe(c));
  EXPECT_TRUE(testref::bitwise_equal(y1, y2)) << describe(c) << ": 1 and 2 threads differ";
}

// The GEMM's packers on every build: strided windows go to channels in lanes with 16-lane vectors,
// so the method is pinned.
TEST(Conv2d, GemmPathShapes) {
  const Case cases[] = {
      {1, 3, 8, 8, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::None, true, false},
      {2, 5, 13, 11, 7, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, false},      // odd, stride 2
      {1, 5, 23, 19, 13, 1, 7, 7, 3, 3, 1, 1, 3, 3, 3, 3, ActKind::None, false, false},    // large kernel, stride 3
      {1, 4, 17, 17, 9, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, ActKind::Clip, true, false},      // dilation
      {1, 4, 12, 15, 5, 1, 3, 2, 1, 2, 1, 3, 0, 1, 2, 0, ActKind::LeakyRelu, true, false}, // asymmetric
      {3, 6, 9, 10, 8, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::HardSwish, true, true},   // groups
      {1, 12, 7, 7, 12, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, ActKind::Sigmoid, true, false},   // grouped 1x1
      {1, 8, 12, 12, 16, 1, 3, 3, 3, 3, 1, 1, 0, 0, 0, 0, ActKind::Relu, true, true},      // stride 3
      {1, 5, 31, 31, 11, 1, 11, 11, 5, 5, 1, 1, 2, 2, 2, 2, ActKind::Relu, true, false},   // AlexNet conv1-like
      {1, 70, 9, 9, 37, 1, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},       // K > KC (630)
      {1, 300, 4, 8, 20, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, ActKind::None, true, false},     // K > KC, pointwise
      // Strided windows on output rows of 32+ pixels: strips within a row read the column phases
      // in place, those across a row end are copied from them (a stem; groups, dilation, batch 2;
      // stride 3; K > KC).
      {1, 3, 70, 81, 32, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Clip, true, false},
      {2, 8, 21, 90, 16, 2, 3, 3, 2, 2, 2, 2, 2, 1, 2, 0, ActKind::Relu, true, true},
      {1, 4, 11, 100, 8, 1, 3, 5, 1, 3, 1, 1, 1, 2, 1, 2, ActKind::None, false, false},
      {1, 40, 9, 70, 24, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},
  };
  for (const Case& c : cases) run_case(c, kernels::Conv2d::Method::Gemm, /*pin_gemm=*/true);
}

TEST(Conv2d, ManyTilesAndThreadSplits) {
  // N > NC, M > MC and partial tiles on both edges; residual + Relu as in ResNet.
  run_case({1, 16, 31, 29, 103, 1, 3, 3, 1, 1, 2, 1, 1, 1, 1, 1, ActKind::Relu, true, true}, kernels::Conv2d::Method::Gemm);
  run_case({2, 24, 40, 33, 50, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, ActKind::Clip, true, true}, kernels::Conv2d::Method::Gemm);
  run_case({1, 17, 16, 16, 300, 1, 3, 5, 1, 1, 1, 1, 1, 2, 1, 2, ActKind::None, true, false}, kernels::Conv2d::Method::Gemm);
}

// Channels in lanes: the method of small output images, kernels of 5x5 or more and strided windows with 16-lane vectors
// (AVX-512). Partial strips of channels; tiles read in place (strides 1, 2, 4, padded copies,
// dilation) and packed (short, or across a row end), mixed in one image; K over several KC blocks;
// asymmetric pads; batch 2; every vector epilogue.
#if defined(__AVX512F__)
constexpr auto kSmallImageMethod = kernels::Conv2d::Method::ChannelLanes;
#else
constexpr auto kSmallImageMethod = kernels::Conv2d::Method::Gemm;
#endif

TEST(Conv2d, ChannelLanes) {
  const Case cases[] = {
      {2, 40, 7, 7, 88, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, ActKind::Clip, true, true},        // 32 + 32 + 24 channels
      {1, 300, 14, 14, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},     // K = 2700
      {1, 20, 9, 9, 96, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::HardSwish, true, false},  // 5x5: 13 + 12 pixels
      {1, 16, 1, 23, 32, 1, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, ActKind::LeakyRelu, false, true}, // 12 + 11 pixels
      {1, 24, 11, 11, 64, 1, 3, 3, 1, 1, 2, 2, 2, 1, 2, 3, ActKind::None, true, false},     // dilation, asymmetric
      {1, 16, 2, 21, 64, 1, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, ActKind::Relu, true, true},       // in place, packed, in place
      {2, 24, 28, 28, 64, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Clip, true, true},      // stride 2, in place
      {1, 3, 23, 19, 13, 1, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, ActKind::None, false, false},     // ResNet stem-like
      {1, 8, 27, 27, 24, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, ActKind::Relu, true, true},       // AlexNet conv2-like
      {2, 3, 31, 31, 11, 1, 11, 11, 4, 4, 1, 1, 2, 2, 2, 2, ActKind::Relu, true, true},     // AlexNet stem-like
      // Strided 3x3 windows on large images (a stem, ResNet's layer2.0).
      {1, 3, 70, 81, 32, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Clip, true, false},
      {1, 40, 56, 56, 48, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},
  };
  for (const Case& c : cases) run_case(c, kSmallImageMethod);
}

// Chosen on a small image, the method stays right on a large one, alone or fused with a depthwise
// convolution (which then runs unfused).
TEST(Conv2d, ChannelLanesChosenOnASmallImageServesALargeOne) {
  const ConvParams pw{32, 64, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, dw{64, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
  const auto w1 = testref::random_floats(64 * 32, 1), w2 = testref::random_floats(64 * 9, 2);
  const auto small = testref::random_floats(32 * 7 * 7, 3), large = testref::random_floats(32 * 90 * 90, 4);
  kernels::Conv2d expand(pw, w1.data(), nullptr, {}), depthwise(dw, w2.data(), nullptr, {});
  ThreadPool pool(2);
  std::vector<float> y_small(64 * 7 * 7), mid(64 * 90 * 90), apart(mid.size()), fused(mid.size());
  ASSERT_TRUE(expand.can_feed_depthwise(depthwise));  // fusion is decided at load, before any image
  expand.forward(small.data(), 1, 7, 7, nullptr, y_small.data(), pool);
  EXPECT_EQ(expand.method(), kSmallImageMethod);
  expand.forward(large.data(), 1, 90, 90, nullptr, mid.data(), pool);
  testref::expect_close(mid.data(), testref::conv(pw, large.data(), 1, 90, 90, w1.data(), nullptr, nullptr, {}), "large");
  depthwise.forward(mid.data(), 1, 90, 90, nullptr, apart.data(), pool);
  expand.forward_into_depthwise(depthwise, large.data(), 1, 90, 90, fused.data(), pool);
  EXPECT_TRUE(testref::bitwise_equal(apart, fused));
}

TEST(Conv2d, Winograd) {
  // Output sizes that are not multiples of the 4x4 tile, tile rows wider than a vector of tiles,
  // asymmetric pads, batch > 1, many channels (small tile blocks), 1x1 outputs, every epilogue.
  const Case cases[] = {
      {1, 16, 28, 28, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::None, true, false},
      {2, 20, 33, 29, 24, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},
      {1, 16, 13, 70, 8, 1, 3, 3, 1, 1, 1, 1, 0, 2, 1, 0, ActKind::Clip, true, false},
      {1, 24, 150, 7, 10, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::LeakyRelu, true, true},
      {1, 256, 28, 28, 40, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::HardSwish, true, false},
      {1, 130, 32, 32, 33, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, ActKind::Sigmoid, false, true},
      {3, 32, 30, 30, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},
  };
  for (const Case& c : cases) run_case(c, kernels::Conv2d::Method::Winograd);
  // Too few output pixels for the transforms to pay: the same layer stays on a GEMM.
  run_case({1, 64, 14, 14, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true}, kSmallImageMethod);
}

TEST(Conv2d, Depthwise) {
  const Case cases[] = {
      {1, 16, 14, 14, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::Clip, true, false},
      {2, 9, 15, 13, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, true},
      {1, 5, 17, 19, 5, 5, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, ActKind::HardSwish, true, false},
      {1, 5, 17, 20, 5, 5, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, ActKind::None, false, false},
      {1, 4, 12, 12, 4, 4, 3, 3, 1, 2, 2, 1, 0, 2, 1, 0, ActKind::LeakyRelu, true, false},
      {1, 3, 9, 30, 3, 3, 7, 3, 3, 1, 1, 2, 3, 1, 0, 2, ActKind::Sigmoid, true, true},
      {1, 7, 1, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::None, true, false},
      // Stride 1 read in place: rows of 2+ vectors, blocks of 4 rows and a short last block,
      // uneven pads; a kernel taller than the image.
      {1, 6, 23, 37, 6, 6, 3, 3, 1, 1, 1, 1, 2, 1, 0, 3, ActKind::Clip, true, true},
      {1, 2, 4, 18, 2, 2, 5, 3, 1, 1, 1, 2, 3, 2, 3, 0, ActKind::Relu, true, false},
      // Stride 2 from column phases: wide rows, odd widths, no left pad.
      {1, 4, 30, 41, 4, 4, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, ActKind::Clip, true, true},
      // Channel multipliers: several filters per input channel, and a single-channel image.
      {1, 1, 28, 28, 6, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, ActKind::Relu, true, false},      // LeNet conv1
      {2, 3, 13, 11, 12, 3, 3, 3, 2, 1, 1, 1, 1, 0, 1, 2, ActKind::Clip, true, true},      // multiplier 4
      {2, 1, 9, 9, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::None, false, true},        // batch 2, 1 -> 5
      // Rows of at most 8 outputs, whole groups of 16 channels: channels in lanes (AVX-512).
      {1, 32, 7, 7, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::Clip, true, true},
      {2, 48, 14, 14, 48, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, ActKind::Relu, true, false},
      {1, 16, 9, 7, 16, 16, 5, 5, 1, 1, 2, 2, 2, 1, 2, 3, ActKind::HardSwish, true, false},
      {1, 32, 15, 15, 32, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, ActKind::LeakyRelu, false, true},
  };
  for (const Case& c : cases) run_case(c, kernels::Conv2d::Method::Depthwise);
}

// A 1x1 expansion fused with the depthwise convolution it feeds, in bands of output rows, against
// the two run one after the other: bit for bit, for strides 1 and 2, dilation, asymmetric pads,
// 5x5 kernels, batch 2, images tall enough for several bands, 1 and 2 threads.
TEST(Conv2d, PointwiseIntoDepthwiseIsBitwiseTheTwoInTurn) {
  struct FusedCase {
    int64_t batch, in_ch, ch, h, w, k, stride, dil, pt, pb, pl, pr;
  };
  const FusedCase cases[] = {
      {1, 16, 96, 112, 112, 3, 2, 1, 1, 1, 1, 1},  // MobileNetV2 block 2
      {2, 24, 144, 56, 56, 3, 1, 1, 1, 1, 1, 1},   // block 3, batch 2
      {1, 8, 64, 130, 70, 5, 1, 2, 4, 3, 2, 4},    // several bands, dilation, asymmetric pads
      {1, 8, 40, 31, 9, 3, 2, 1, 0, 2, 1, 0},      // odd sizes, no top pad
      {1, 160, 960, 7, 7, 3, 1, 1, 1, 1, 1, 1},    // block 16: both channels in lanes, handed over blocked
      {1, 96, 576, 14, 14, 3, 2, 1, 1, 1, 1, 1},   // block 14: likewise, stride 2
      {2, 24, 80, 7, 7, 3, 1, 1, 1, 1, 1, 1},      // a half strip of channels, batch 2
  };
  for (const auto& c : cases) {
    const ConvParams pw{c.in_ch, c.ch, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    const ConvParams dw{c.ch, c.ch, c.ch, c.k, c.k, c.stride, c.stride, c.dil, c.dil, c.pt, c.pl, c.pb, c.pr};
    Activation relu6;
    relu6.kind = ActKind::Clip;
    relu6.min = 0.f;
    relu6.max = 6.f;
    const auto x = testref::random_floats(c.batch * c.in_ch * c.h * c.w, 5);
    const auto w1 = testref::random_floats(c.ch * c.in_ch, 6), b1 = testref::random_floats(c.ch, 7);
    const auto w2 = testref::random_floats(c.ch * c.k * c.k, 8), b2 = testref::random_floats(c.ch, 9);
    kernels::Conv2d expand(pw, w1.data(), b1.data(), relu6), depthwise(dw, w2.data(), b2.data(), relu6);
    ASSERT_TRUE(expand.can_feed_depthwise(depthwise));
    const int64_t oh = dw.out_h(c.h), ow = dw.out_w(c.w);
    std::vector<float> mid(c.batch * c.ch * c.h * c.w), apart(c.batch * c.ch * oh * ow), fused(apart.size());
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      expand.forward(x.data(), c.batch, c.h, c.w, nullptr, mid.data(), pool);
      depthwise.forward(mid.data(), c.batch, c.h, c.w, nullptr, apart.data(), pool);
      expand.forward_into_depthwise(depthwise, x.data(), c.batch, c.h, c.w, fused.data(), pool);
      EXPECT_TRUE(testref::bitwise_equal(apart, fused)) << c.h << "x" << c.w << " k" << c.k << " s" << c.stride
                                                        << ", " << threads << " threads";
    }
  }
  // Not a 1x1 expansion, or not a depthwise convolution of its output: no fusion.
  const auto w = testref::random_floats(64 * 64 * 9, 1);
  kernels::Conv2d k3({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, w.data(), nullptr, {});
  kernels::Conv2d pw({16, 16, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, w.data(), nullptr, {});
  kernels::Conv2d dw({16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, w.data(), nullptr, {});
  kernels::Conv2d dw32({32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, w.data(), nullptr, {});
  EXPECT_FALSE(k3.can_feed_depthwise(dw));
  EXPECT_FALSE(pw.can_feed_depthwise(k3));
  EXPECT_FALSE(pw.can_feed_depthwise(dw32));
  EXPECT_TRUE(pw.can_feed_depthwise(dw));
  // Not a 1x1 projection of a depthwise output, or of its channels: no fusion of the projection.
  EXPECT_FALSE(dw.can_feed_projection(k3));
  EXPECT_FALSE(dw32.can_feed_projection(pw));
  EXPECT_FALSE(pw.can_feed_projection(pw));
  EXPECT_TRUE(dw.can_feed_projection(pw));
}

// The block's 1x1 projection fused too, band by band where the expansion runs in bands, with and
// without a residual, against the three convolutions in turn: bit for bit.
TEST(Conv2d, ExpansionDepthwiseProjectionIsBitwiseTheThreeInTurn) {
  struct Block {
    int64_t batch, in_ch, ch, out_ch, h, w, stride;
    bool residual;
  };
  const Block blocks[] = {
      {1, 24, 144, 24, 56, 56, 1, true},    // MobileNetV2 block 3: bands, residual
      {2, 16, 96, 24, 112, 112, 2, false},  // block 2: stride 2, batch 2
      {1, 32, 192, 32, 28, 28, 1, true},    // block 5: small enough to run whole
      {1, 160, 960, 160, 7, 7, 1, true},    // block 16: channels in lanes, the projection too
  };
  Activation relu6;
  relu6.kind = ActKind::Clip;
  relu6.min = 0.f;
  relu6.max = 6.f;
  for (const Block& b : blocks) {
    const ConvParams pw{b.in_ch, b.ch, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    const ConvParams dw{b.ch, b.ch, b.ch, 3, 3, b.stride, b.stride, 1, 1, 1, 1, 1, 1};
    const ConvParams pj{b.ch, b.out_ch, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
    const int64_t oh = dw.out_h(b.h), ow = dw.out_w(b.w);
    const auto x = testref::random_floats(b.batch * b.in_ch * b.h * b.w, 11);
    const auto w1 = testref::random_floats(b.ch * b.in_ch, 12), b1 = testref::random_floats(b.ch, 13);
    const auto w2 = testref::random_floats(b.ch * 9, 14), b2 = testref::random_floats(b.ch, 15);
    const auto w3 = testref::random_floats(b.out_ch * b.ch, 16), b3 = testref::random_floats(b.out_ch, 17);
    const auto res = testref::random_floats(b.batch * b.out_ch * oh * ow, 18);
    kernels::Conv2d expand(pw, w1.data(), b1.data(), relu6), depthwise(dw, w2.data(), b2.data(), relu6),
        project(pj, w3.data(), b3.data(), {});
    expand.prepare(b.h, b.w);
    project.prepare(oh, ow);
    ASSERT_TRUE(expand.can_feed_depthwise(depthwise));
    // A projection on the GEMM fuses; one that moved to the lanes (7x7, AVX-512) runs after.
    EXPECT_EQ(project.method() == kernels::Conv2d::Method::Gemm, depthwise.can_feed_projection(project));
    std::vector<float> mid(b.batch * b.ch * b.h * b.w), dmid(b.batch * b.ch * oh * ow);
    std::vector<float> apart(b.batch * b.out_ch * oh * ow), fused(apart.size());
    const float* r = b.residual ? res.data() : nullptr;
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      expand.forward(x.data(), b.batch, b.h, b.w, nullptr, mid.data(), pool);
      depthwise.forward(mid.data(), b.batch, b.h, b.w, nullptr, dmid.data(), pool);
      project.forward(dmid.data(), b.batch, oh, ow, r, apart.data(), pool);
      expand.forward_into_depthwise(depthwise, x.data(), b.batch, b.h, b.w, fused.data(), pool, &project, r);
      EXPECT_TRUE(testref::bitwise_equal(apart, fused)) << b.h << "x" << b.w << " s" << b.stride << ", " << threads
                                                        << " threads";
    }
  }
}

TEST(Conv2d, KernelLargerThanPaddedInputGivesOnePixel) {
  run_case({1, 2, 3, 3, 3, 1, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1, ActKind::None, true, false}, kSmallImageMethod);
}

}  // namespace
}  // namespace dnn
