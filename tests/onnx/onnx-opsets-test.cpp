// import_onnx on the small models of tests/data/onnx (made by tools/make_test_onnx.py): the opset
// 9/11/13 forms exporters write all come out in the one canonical form, and broken models fail with
// errors naming the file and the node.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "core/error.h"
#include "onnx/onnx_import.h"

namespace dnn {
namespace {

std::string data(const std::string& name) { return std::string(DNN_SOURCE_DIR) + "/tests/data/onnx/" + name; }

std::vector<std::string> ops(const Graph& g) {
  std::vector<std::string> out;
  for (auto& n : g.nodes) out.push_back(n.op);
  return out;
}

const Node& node(const Graph& g, const std::string& name) {
  for (auto& n : g.nodes)
    if (n.name == name) return n;
  throw std::runtime_error("no node " + name);
}

// The model's original initializers, read independently of the importer's passes.
std::map<std::string, Tensor> initializers(const std::string& path) {
  onnx::ModelProto m;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&f));
  std::map<std::string, Tensor> out;
  for (auto& t : m.graph().initializer()) out[t.name()] = tensor_from_proto(t, t.name());
  return out;
}

void expect_near(const Tensor& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.numel(), int64_t(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.f32()[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << what << "[" << i << "]";
}

TEST(OnnxOpsets, DynamicBatchFlattenBecomesReshapeCopyingTheBatch) {
  Graph g = import_onnx(data("reshape_dyn_batch.onnx"));
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "Reshape", "Gemm"}));
  EXPECT_EQ(g.inputs.at(0).shape, (Shape{-1, 1, 8, 8}));
  const Node& flatten = node(g, "flatten");
  EXPECT_EQ(flatten.inputs.size(), 1u);
  EXPECT_EQ(flatten.attrs.ints("shape"), (std::vector<int64_t>{0, -1}));
  // MatMul(x, W[K,N]) + Add(b) -> Gemm with B stored [N,K] (transB=1) and C = b.
  const Node& fc = node(g, "fc");
  EXPECT_EQ(fc.attrs.i("transB", 0), 1);
  auto orig = initializers(data("reshape_dyn_batch.onnx"));
  const Tensor& w = g.constants.at(fc.inputs.at(1));
  ASSERT_EQ(w.shape(), (Shape{10, 256}));
  for (int64_t n = 0; n < 10; ++n)
    for (int64_t k = 0; k < 256; ++k) ASSERT_EQ(w.f32()[n * 256 + k], orig.at("fc.w").f32()[k * 10 + n]);
  expect_near(g.constants.at(fc.inputs.at(2)), std::vector<float>(orig.at("fc.b").f32(), orig.at("fc.b").f32() + 10), "C");
  EXPECT_EQ(node(g, "conv").attrs.s("dnn.activation", ""), "Relu");
}

TEST(OnnxOpsets, PaddleOpset9BatchNormFoldsIntoConvsAndStaysAfterPool) {
  const std::string path = data("paddle_bn_opset9.onnx");
  Graph g = import_onnx(path);
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "Conv", "Pad", "MaxPool", "BatchNormalization",
                                              "GlobalAveragePool", "Flatten", "Gemm", "Softmax"}));
  // Initializers listed among the graph inputs (old exporters) are not inputs.
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape, (Shape{-1, 3, 16, 16}));

  // conv1 (no bias) + bn1: W' = W * s, b' = beta - mean * s, s = scale / sqrt(var + eps)
  auto orig = initializers(path);
  const Node& conv1 = node(g, "conv1");
  EXPECT_EQ(conv1.attrs.s("dnn.activation", ""), "Relu");
  const Tensor &w = orig.at("conv1.w"), &scale = orig.at("bn1.scale"), &beta = orig.at("bn1.bias"),
               &mean = orig.at("bn1.mean"), &var = orig.at("bn1.var");
  std::vector<float> want_w, want_b;
  for (int c = 0; c < 8; ++c) {
    float s = scale.f32()[c] / std::sqrt(var.f32()[c] + 1e-5f);
    for (int k = 0; k < 27; ++k) want_w.push_back(w.f32()[c * 27 + k] * s);
    want_b.push_back(beta.f32()[c] - mean.f32()[c] * s);
  }
  expect_near(g.constants.at(conv1.inputs.at(1)), want_w, "conv1 folded W");
  expect_near(g.constants.at(conv1.inputs.at(2)), want_b, "conv1 folded b");

  const Node& dw = node(g, "conv2_dw");
  EXPECT_EQ(dw.attrs.i("group", 0), 8);
  EXPECT_EQ(dw.attrs.s("dnn.activation", ""), "Clip");
  EXPECT_EQ(dw.attrs.f("dnn.act_min", -1), 0.f);
  EXPECT_EQ(dw.attrs.f("dnn.act_max", -1), 6.f);
  EXPECT_EQ(dw.attrs.ints("strides"), (std::vector<int64_t>{2, 2}));

  const Node& pad = node(g, "pad");
  EXPECT_EQ(pad.attrs.ints("pads"), (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1}));
  EXPECT_EQ(pad.attrs.f("value", -1), 0.f);
  EXPECT_EQ(pad.attrs.s("mode", ""), "constant");
  EXPECT_EQ(node(g, "bn3").inputs.size(), 5u);
  EXPECT_EQ(node(g, "bn3").attrs.s("dnn.activation", ""), "Relu");  // standalone BN -> Relu fused too

  const Node& fc = node(g, "fc");  // transB=0 in the file: B [K,N] -> stored [N,K]
  EXPECT_EQ(fc.attrs.i("transB", 0), 1);
  EXPECT_EQ(g.constants.at(fc.inputs.at(1)).shape(), (Shape{10, 8}));
  EXPECT_EQ(node(g, "softmax").attrs.i("axis", 0), 1);
}

TEST(OnnxOpsets, Opset11OperandsBecomeAttributes) {
  Graph g = import_onnx(data("operands_opset11.onnx"));
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Clip", "Pad", "Slice", "Conv", "Add", "Split", "Concat", "Flatten",
                                              "Softmax", "Reshape"}));
  for (auto& n : g.nodes) {
    if (n.op == "Clip" || n.op == "Pad" || n.op == "Slice" || n.op == "Split") {
      EXPECT_EQ(n.inputs.size(), 1u) << n.name;
    }
  }
  const Node& clip = node(g, "clip");
  EXPECT_EQ(clip.attrs.f("min", 0), -1.f);
  EXPECT_EQ(clip.attrs.f("max", 0), 1.5f);
  const Node& pad = node(g, "pad");
  EXPECT_EQ(pad.attrs.ints("pads"), (std::vector<int64_t>{0, 0, 1, 2, 0, 0, 1, 0}));
  EXPECT_EQ(pad.attrs.f("value", 0), 0.5f);
  const Node& slice = node(g, "slice");
  EXPECT_EQ(slice.attrs.ints("starts"), (std::vector<int64_t>{1, -8}));
  EXPECT_EQ(slice.attrs.ints("ends"), (std::vector<int64_t>{std::numeric_limits<int64_t>::max(), 100}));
  EXPECT_EQ(slice.attrs.ints("axes"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(slice.attrs.ints("steps"), (std::vector<int64_t>{1, 1}));
  // auto_pad SAME_UPPER on an 8x8 input, kernel 3, stride 2: output 4x4, one row/column of padding at the end.
  const Node& conv = node(g, "conv");
  EXPECT_EQ(conv.attrs.s("auto_pad", ""), "NOTSET");
  EXPECT_EQ(conv.attrs.ints("pads"), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(conv.attrs.ints("kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(g.is_constant(conv.inputs.at(1)));  // weights from Constant nodes
  // Range -> Cast -> Mul(ConstantOfShape) -> Unsqueeze -> Expand -> Tile folded to one constant.
  const Tensor& bias = g.constants.at(node(g, "add_bias").inputs.at(1));
  EXPECT_EQ(bias.shape(), (Shape{1, 4, 1, 1}));
  expect_near(bias, {0.f, 0.25f, 0.5f, 0.75f}, "bias");
  EXPECT_EQ(node(g, "split").attrs.ints("split"), (std::vector<int64_t>{1, 3}));
  // Opset 11 Softmax over axis 1 of a 4-D tensor normalises the flattened [1, 64] block.
  EXPECT_EQ(node(g, "softmax/flatten").attrs.i("axis", 0), 1);
  EXPECT_EQ(node(g, "softmax").attrs.i("axis", 0), 1);
  EXPECT_EQ(node(g, "softmax/reshape").attrs.ints("shape"), (std::vector<int64_t>{1, 4, 4, 4}));
  EXPECT_EQ(g.outputs.at(0).name, "y");
}

TEST(OnnxOpsets, Opset13OperandsBecomeAttributesAndGemmIsScaled) {
  const std::string path = data("operands_opset13.onnx");
  Graph g = import_onnx(path);
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Split", "Clip", "Add", "ReduceMean", "Squeeze", "Gemm", "Unsqueeze"}));
  EXPECT_EQ(node(g, "split").attrs.ints("split"), (std::vector<int64_t>{3, 3}));
  const Node& clip = node(g, "clip_max_only");
  EXPECT_EQ(clip.attrs.f("min", 0), std::numeric_limits<float>::lowest());
  EXPECT_EQ(clip.attrs.f("max", 0), 0.2f);
  EXPECT_EQ(node(g, "squeeze").attrs.ints("axes"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(node(g, "unsqueeze").attrs.ints("axes"), (std::vector<int64_t>{1}));
  EXPECT_EQ(node(g, "mean").attrs.ints("axes"), (std::vector<int64_t>{2, 3}));
  // Gemm(alpha=0.5, beta=2, transB=1, B = Transpose(w_kn)) -> W = 0.5 * w_kn^T stored [N,K], C = 2 * c.
  auto orig = initializers(path);
  const Node& fc = node(g, "fc");
  EXPECT_EQ(fc.attrs.f("alpha", 0), 1.f);
  EXPECT_EQ(fc.attrs.f("beta", 0), 1.f);
  std::vector<float> want_w, want_c;
  for (int n = 0; n < 5; ++n)
    for (int k = 0; k < 3; ++k) want_w.push_back(0.5f * orig.at("fc.w_kn").f32()[k * 5 + n]);
  for (int n = 0; n < 5; ++n) want_c.push_back(2.f * orig.at("fc.c").f32()[n]);
  EXPECT_EQ(g.constants.at(fc.inputs.at(1)).shape(), (Shape{5, 3}));
  expect_near(g.constants.at(fc.inputs.at(1)), want_w, "W");
  EXPECT_EQ(g.constants.at(fc.inputs.at(2)).shape(), (Shape{5}));
  expect_near(g.constants.at(fc.inputs.at(2)), want_c, "C");
}

TEST(OnnxOpsets, HardSwishWrittenAsHardSigmoidTimesInputFusesIntoConv) {
  Graph g = import_onnx(data("hardswish_opset13.onnx"));
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "Conv", "HardSigmoid", "Mul"}));
  EXPECT_EQ(node(g, "conv1").attrs.s("dnn.activation", ""), "HardSwish");
  EXPECT_EQ(node(g, "conv1").outputs.at(0), "a1");
  EXPECT_EQ(node(g, "scale").inputs, (std::vector<std::string>{"a1", "h2"}));  // a gate, not a HardSwish
}

TEST(OnnxOpsets, BatchNormFoldsIntoGemmAndAConvAddedToItselfStaysAnAdd) {
  Graph g = import_onnx(data("gemm_bn_opset13.onnx"));
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "Add", "Flatten", "Gemm", "Gemm"}));
  const Node& fc1 = node(g, "fc1");
  EXPECT_EQ(fc1.attrs.s("dnn.activation", ""), "Relu");
  EXPECT_EQ(g.constants.at(fc1.inputs.at(1)).shape(), (Shape{6, 8}));
  EXPECT_EQ(node(g, "conv").inputs.size(), 2u);
}

TEST(OnnxOpsets, Opset18OperandsAndShapesThroughNewerSchemas) {
  Graph g = import_onnx(data("operands_opset18.onnx"));
  EXPECT_EQ(ops(g), (std::vector<std::string>{"Conv", "Split", "Pad", "ReduceMean", "Reshape", "Reshape", "Concat"}));
  EXPECT_EQ(node(g, "split").attrs.ints("split"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(node(g, "pad").attrs.ints("pads"), (std::vector<int64_t>{0, 0, 1, 2, 0, 0, 1, 0}));
  EXPECT_EQ(node(g, "mean").attrs.ints("axes"), (std::vector<int64_t>{3}));
  EXPECT_EQ(node(g, "flatten_mean").attrs.ints("shape"), (std::vector<int64_t>{0, -1}));
  EXPECT_EQ(g.outputs.at(0).shape, (Shape{-1, 44}));
}

void expect_model_error(const std::string& file, const std::vector<std::string>& fragments) {
  const std::string path = data(file);
  try {
    import_onnx(path);
    FAIL() << "no error for " << file;
  } catch (const ModelError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

TEST(OnnxOpsetErrors, NamesTheProblem) {
  expect_model_error("custom_domain.onnx", {"fancy", "FancyActivation", "com.example"});
  expect_model_error("dynamic_dim_error.onnx", {"Mul", "run time"});
  expect_model_error("external_data.onnx", {"'w'", "external"});
  expect_model_error("opset6.onnx", {"opset 6"});
  expect_model_error("conv_bad_weights.onnx", {"'conv'", "weights of shape [4]"});
  expect_model_error("dropout_training.onnx", {"'dropout'", "training-mode"});
  expect_model_error("pool_zero_stride.onnx", {"'pool'", "strides must be positive"});
}

}  // namespace
}  // namespace dnn
