// The Conv layer as the executor sees it: ONNX attributes (pads, auto_pad, strides, dilations,
// group, kernel_shape), 1-D convs, the fused residual input and activation attributes, shapes,
// MACs and the errors for what it cannot run — checked against a double-precision reference.
#include <gtest/gtest.h>

#include "kernels/reference.h"
#include "layers/layer.h"

namespace dnn {
namespace {

struct ConvRun {
  Node node;
  Tensor x, w, b, res;
};

ConvRun make(Shape x, Shape w, bool bias) {
  ConvRun r;
  r.node.name = "conv";
  r.node.op = "Conv";
  r.node.inputs = {"x", "w"};
  if (bias) r.node.inputs.push_back("b");
  r.node.outputs = {"y"};
  r.x = Tensor::from_f32(x, testref::random_floats(numel(x), 21));
  r.w = Tensor::from_f32(w, testref::random_floats(numel(w), 22));
  r.b = Tensor::from_f32({w[0]}, testref::random_floats(w[0], 23));
  return r;
}

// Runs the layer and compares with the reference for explicit parameters `p` (pads resolved).
void check(ConvRun& r, const kernels::ConvParams& p, const kernels::Activation& act, int threads = 1) {
  const bool bias = r.node.inputs.size() > 2 && !r.node.inputs[2].empty();
  const bool residual = r.node.inputs.size() > 3;
  std::vector<const Tensor*> consts = {nullptr, &r.w, bias ? &r.b : nullptr};
  if (residual) consts.push_back(nullptr);
  auto layer = make_layer(r.node, consts);
  ThreadPool pool(threads);
  RunContext ctx{&pool};
  std::vector<const Tensor*> in = {&r.x, nullptr, nullptr};
  if (residual) in.push_back(&r.res);
  const Tensor y = layer->forward(in, ctx).at(0);
  const bool one_d = r.x.rank() == 3;
  const int64_t h = one_d ? 1 : r.x.dim(2), w = r.x.dim(-1);
  const auto ref = testref::conv(p, r.x.f32(), r.x.dim(0), h, w, r.w.f32(), bias ? r.b.f32() : nullptr,
                                 residual ? r.res.f32() : nullptr, act);
  ASSERT_EQ(y.numel(), static_cast<int64_t>(ref.size()));
  Shape expect = one_d ? Shape{r.x.dim(0), p.out_ch, p.out_w(w)} : Shape{r.x.dim(0), p.out_ch, p.out_h(h), p.out_w(w)};
  EXPECT_EQ(y.shape(), expect);
  testref::expect_close(y.f32(), ref, r.node.attrs.s("auto_pad", "explicit pads"));
  EXPECT_EQ(layer->macs({r.x.shape(), r.w.shape()}), numel(expect) * (p.in_ch / p.groups) * p.kh * p.kw);
}

kernels::ConvParams params(int64_t in_ch, int64_t out_ch, int64_t groups, int64_t k) {
  kernels::ConvParams p;
  p.in_ch = in_ch;
  p.out_ch = out_ch;
  p.groups = groups;
  p.kh = p.kw = k;
  return p;
}

TEST(ConvLayer, AsymmetricPadsStridesDilations) {
  ConvRun r = make({2, 4, 11, 13}, {6, 4, 3, 3}, true);
  r.node.attrs.set("pads", std::vector<int64_t>{0, 1, 2, 0});
  r.node.attrs.set("strides", std::vector<int64_t>{2, 1});
  r.node.attrs.set("dilations", std::vector<int64_t>{1, 2});
  r.node.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  auto p = params(4, 6, 1, 3);
  p.pad_t = 0, p.pad_l = 1, p.pad_b = 2, p.pad_r = 0, p.stride_h = 2, p.dil_w = 2;
  check(r, p, {}, 2);
}

TEST(ConvLayer, AutoPadSameUpperLowerAndValid) {
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    ConvRun r = make({1, 3, 10, 9}, {5, 3, 4, 4}, false);
    r.node.attrs.set("auto_pad", std::string(mode));
    r.node.attrs.set("strides", std::vector<int64_t>{2, 2});
    auto p = params(3, 5, 1, 4);
    p.stride_h = p.stride_w = 2;
    if (std::string(mode) != "VALID") {
      // total pad = (ceil(in/2)-1)*2 + 4 - in: 2 for h=10, 3 for w=9; UPPER puts the odd one at the end.
      const bool upper = std::string(mode) == "SAME_UPPER";
      p.pad_t = 1, p.pad_b = 1;
      p.pad_l = upper ? 1 : 2, p.pad_r = upper ? 2 : 1;
    }
    check(r, p, {});
  }
}

TEST(ConvLayer, GroupedDepthwiseAndFusedActivation) {
  ConvRun r = make({1, 8, 9, 9}, {8, 1, 3, 3}, true);
  r.node.attrs.set("group", int64_t{8});
  r.node.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  r.node.attrs.set("dnn.activation", std::string("Clip"));
  r.node.attrs.set("dnn.act_min", 0.f);
  r.node.attrs.set("dnn.act_max", 0.5f);
  auto p = params(8, 8, 8, 3);
  p.pad_t = p.pad_l = p.pad_b = p.pad_r = 1;
  kernels::Activation act;
  act.kind = kernels::ActKind::Clip;
  act.min = 0.f;
  act.max = 0.5f;
  check(r, p, act);

  ConvRun g = make({2, 6, 7, 5}, {4, 3, 1, 1}, true);
  g.node.attrs.set("group", int64_t{2});
  g.node.attrs.set("dnn.activation", std::string("LeakyRelu"));
  g.node.attrs.set("dnn.act_alpha", 0.25f);
  act.kind = kernels::ActKind::LeakyRelu;
  act.alpha = 0.25f;
  check(g, params(6, 4, 2, 1), act);
}

TEST(ConvLayer, ResidualInputIsAddedBeforeTheActivation) {
  ConvRun r = make({1, 4, 6, 6}, {4, 4, 3, 3}, true);
  r.node.inputs.push_back("skip");
  r.node.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  r.node.attrs.set("dnn.activation", std::string("Relu"));
  r.res = Tensor::from_f32({1, 4, 6, 6}, testref::random_floats(144, 24));
  auto p = params(4, 4, 1, 3);
  p.pad_t = p.pad_l = p.pad_b = p.pad_r = 1;
  kernels::Activation act;
  act.kind = kernels::ActKind::Relu;
  check(r, p, act);
}

TEST(ConvLayer, OneDimensional) {
  ConvRun r = make({3, 2, 17}, {5, 2, 3}, true);
  r.node.attrs.set("pads", std::vector<int64_t>{2, 1});
  r.node.attrs.set("strides", std::vector<int64_t>{2});
  auto p = params(2, 5, 1, 3);
  p.kh = 1;
  p.pad_l = 2, p.pad_r = 1, p.stride_w = 2;
  check(r, p, {});
}

TEST(ConvLayer, ErrorsNameTheProblem) {
  ConvRun r = make({1, 3, 8, 8}, {4, 3, 3, 3}, false);
  EXPECT_THROW(make_layer(r.node, {nullptr, nullptr}), ModelError);  // weights not constant
  auto layer = make_layer(r.node, {nullptr, &r.w});
  EXPECT_THROW(layer->output_shapes({{1, 5, 8, 8}}), ShapeError);  // wrong channel count
  EXPECT_THROW(layer->output_shapes({{1, 3, 2, 2}}), ShapeError);  // smaller than the kernel
  r.node.attrs.set("dnn.activation", std::string("Swish"));
  EXPECT_THROW(make_layer(r.node, {nullptr, &r.w}), ModelError);
  Tensor w3 = Tensor::from_f32({4, 3, 3, 3, 3}, std::vector<float>(324));
  ConvRun v = make({1, 3, 8, 8}, {4, 3, 3, 3}, false);
  EXPECT_THROW(make_layer(v.node, {nullptr, &w3}), ModelError);  // 3-D conv
}

}  // namespace
}  // namespace dnn
