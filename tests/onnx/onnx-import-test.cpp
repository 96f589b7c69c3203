// import_onnx on the real fixture models: what the passes leave, shapes, weights, and clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>

#include "core/error.h"
#include "core/npy.h"
#include "onnx/onnx_import.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

const std::string kFixtures = test::fixture("");
const std::string kBigFixtures = test::fixture("");

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (auto& n : g.nodes) counts[n.op]++;
  return counts;
}

void expect_same_tensor(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(got.f32()[i], want.f32()[i]) << what << " element " << i;
}

TEST(OnnxImport, LeNetBatch1FusesReluIntoConvAndGemm) {
  Graph g = import_onnx(kFixtures + "lenet5_mnist/lenet5_mnist_b1.onnx");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape, (Shape{1, 1, 28, 28}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].shape, (Shape{1, 10}));
  std::vector<std::string> ops;
  for (auto& n : g.nodes) ops.push_back(n.op);
  EXPECT_EQ(ops, (std::vector<std::string>{"Conv", "MaxPool", "Conv", "MaxPool", "Flatten", "Gemm", "Gemm", "Gemm"}));
  EXPECT_EQ(g.nodes[0].attrs.s("dnn.activation", ""), "Relu");
  EXPECT_EQ(g.nodes[5].attrs.s("dnn.activation", ""), "Relu");
  EXPECT_EQ(g.nodes[7].attrs.s("dnn.activation", ""), "");  // logits
  EXPECT_EQ(g.nodes[0].attrs.ints("pads"), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(g.nodes[5].attrs.i("transB", 0), 1);
  EXPECT_NO_THROW(g.validate());
}

TEST(OnnxImport, LeNetWeightsAreTheFixtureWeights) {
  Graph g = import_onnx(kFixtures + "lenet5_mnist/lenet5_mnist_b1.onnx");
  // Conv weights [M, C, kh, kw] and Gemm weights [N, K] (transB=1) are stored as PyTorch has them.
  std::vector<std::pair<int, std::string>> layers = {{0, "conv1"}, {2, "conv2"}, {5, "fc1"}, {6, "fc2"}, {7, "fc3"}};
  for (auto& [index, name] : layers) {
    const Node& n = g.nodes.at(index);
    expect_same_tensor(g.constants.at(n.inputs[1]), read_npy(kFixtures + "lenet5_mnist/weights/" + name + ".weight.npy"),
                       name + ".weight");
    expect_same_tensor(g.constants.at(n.inputs[2]), read_npy(kFixtures + "lenet5_mnist/weights/" + name + ".bias.npy"),
                       name + ".bias");
  }
}

TEST(OnnxImport, LeNetDynamicBatchKeepsBatchUnknown) {
  Graph g = import_onnx(kFixtures + "lenet5_mnist/lenet5_mnist_dyn.onnx");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape, (Shape{-1, 1, 28, 28}));
  EXPECT_EQ(g.outputs[0].shape, (Shape{-1, 10}));
  EXPECT_EQ(g.nodes.size(), 8u);
}

TEST(OnnxImport, ResNet18FoldsResidualAddAndReluIntoConv) {
  Graph g = import_onnx(kBigFixtures + "resnet18/resnet18.onnx");
  auto ops = op_counts(g);
  EXPECT_EQ(ops, (std::map<std::string, int>{
                     {"Conv", 20}, {"MaxPool", 1}, {"GlobalAveragePool", 1}, {"Flatten", 1}, {"Gemm", 1}}));
  int residual = 0, relu = 0;
  for (auto& n : g.nodes) {
    if (n.op != "Conv") continue;
    residual += n.inputs.size() == 4;
    relu += n.attrs.s("dnn.activation", "") == "Relu";
    if (n.inputs.size() == 4) {
      EXPECT_EQ(n.attrs.s("dnn.activation", ""), "Relu") << n.name;
    }
  }
  EXPECT_EQ(residual, 8);
  EXPECT_EQ(relu, 17);
  EXPECT_EQ(g.inputs[0].shape, (Shape{1, 3, 224, 224}));
  EXPECT_NO_THROW(g.validate());
}

TEST(OnnxImport, MobileNetV2FusesClipAsReLU6) {
  Graph g = import_onnx(kFixtures + "mobilenet_v2/mobilenet_v2.onnx");
  auto ops = op_counts(g);
  EXPECT_EQ(ops, (std::map<std::string, int>{{"Conv", 52}, {"GlobalAveragePool", 1}, {"Flatten", 1}, {"Gemm", 1}}));
  int clip = 0, residual = 0;
  for (auto& n : g.nodes) {
    if (n.attrs.s("dnn.activation", "") == "Clip") {
      ++clip;
      EXPECT_EQ(n.attrs.f("dnn.act_min", -1), 0.f);
      EXPECT_EQ(n.attrs.f("dnn.act_max", -1), 6.f);
    }
    residual += n.op == "Conv" && n.inputs.size() == 4;
  }
  EXPECT_EQ(clip, 35);
  EXPECT_EQ(residual, 10);
  for (auto& kv : g.constants) EXPECT_EQ(kv.second.dtype(), DType::f32) << kv.first;  // no shape leftovers
}

// Resident-set figures of this process, in bytes (VmRSS now, VmHWM peak since the last reset).
int64_t status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

TEST(OnnxImport, PeakMemoryIsAboutTheWeightsOnce) {
  const std::string path = kFixtures + "mobilenet_v2/mobilenet_v2.onnx";
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  const int64_t before = status_kb("VmRSS");
  ASSERT_LT(status_kb("VmHWM") - before, 1024) << "cannot reset the peak-RSS counter here";
  Graph g = import_onnx(path);
  int64_t weight_bytes = 0;
  for (auto& kv : g.constants) weight_bytes += int64_t(kv.second.bytes());
  const int64_t peak_growth = (status_kb("VmHWM") - before) * 1024;
  // A plain protobuf parse holds the file's bytes and then the tensors: ~2x. Allow 15 % + 8 MB.
  EXPECT_LT(peak_growth, weight_bytes * 115 / 100 + (8 << 20)) << "weights " << weight_bytes;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

template <class E>
void expect_error_naming(const std::string& path, const std::string& fragment) {
  try {
    import_onnx(path);
    FAIL() << "no error for " << path;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// Writes `bytes` to a temporary .onnx file, expects a ModelError naming it and saying `fragment`.
void expect_model_error_for(const std::string& bytes, const std::string& fragment) {
  const std::string path = testing::TempDir() + "onnx-import-test-" + std::to_string(getpid()) + ".onnx";
  std::ofstream(path, std::ios::binary) << bytes;
  expect_error_naming<ModelError>(path, fragment);
  std::remove(path.c_str());
}

const std::string kCorrupt = "truncated or corrupt";

TEST(OnnxImportErrors, MissingFile) {
  expect_error_naming<IoError>("/nonexistent/model.onnx", "cannot open");
}

TEST(OnnxImportErrors, TruncatedFile) {
  std::string bytes = read_all(kFixtures + "mobilenet_v2/mobilenet_v2.onnx");
  expect_model_error_for(bytes.substr(0, bytes.size() / 2), kCorrupt);
}

TEST(OnnxImportErrors, TruncatedSmallModel) {
  std::string bytes = read_all(kFixtures + "lenet5_mnist/lenet5_mnist_b1.onnx");
  for (size_t len : {bytes.size() / 3, bytes.size() / 2, bytes.size() - 7}) expect_model_error_for(bytes.substr(0, len), kCorrupt);
}

TEST(OnnxImportErrors, GarbageBytes) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(char((i * 7919) % 251));
  expect_model_error_for(garbage, kCorrupt);
  expect_model_error_for("", "no model graph");
}

}  // namespace
}  // namespace dnn
