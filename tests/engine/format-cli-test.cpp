// `dnnswarm inspect` against the per-layer planning data measured in PyTorch (tests/data/
// layers_*.csv), and `dnnswarm convert`: the .dnns it writes is the imported graph, byte for byte.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/npy.h"
#include "format/child_process.h"
#include "format/dnns.h"
#include "format/test_graphs.h"
#include "onnx/onnx_import.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

const std::string kFixtures = test::fixture("");
const std::string kBigFixtures = test::fixture("");

std::vector<nlohmann::json> inspect_json(const std::string& model) {
  testing::Command c = testing::run_dnnswarm("inspect --json --model " + model);
  EXPECT_EQ(c.status, 0) << c.out;
  std::vector<nlohmann::json> rows;
  std::istringstream lines(c.out);
  std::string line;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// One row of layers_<model>.csv: a PyTorch Conv2d or Linear module.
struct CsvLayer {
  std::string layer, type, out_shape;
  int64_t params, weight_bytes, macs, transfer_bytes;
};

std::vector<CsvLayer> read_csv(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::string line;
  std::getline(in, line);  // header: layer,module,type,in_shape,out_shape,params,weight_bytes,weight_pct,macs,...
  std::vector<CsvLayer> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() < 11) continue;
    rows.push_back({f[0], f[2], f[4], std::stoll(f[5]), std::stoll(f[6]), std::stoll(f[8]), std::stoll(f[10])});
  }
  return rows;
}

std::string shape_text(const nlohmann::json& shape) {
  std::string s;
  for (auto& d : shape) s += (s.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
  return s;
}

// The rows of inspect's output for Conv and Gemm nodes must match the CSV's Conv2d/Linear modules in
// order, shape, MACs, params and weight bytes. `bn_bias`: the model's convolutions have no bias in
// PyTorch but gain one when the importer folds BatchNorm into them (one per output channel).
// `chain`: no skip connections, so a cut after a layer's block sends exactly the next weighted
// layer's input — the CSV's transfer_bytes; with skips a cut also carries them, so it sends more.
void check_against_csv(const std::string& model, const std::string& csv, bool bn_bias, bool chain) {
  SCOPED_TRACE(model);
  const std::vector<nlohmann::json> rows = inspect_json(model);
  ASSERT_FALSE(rows.empty());
  const std::vector<CsvLayer> ref = read_csv(csv);
  std::vector<size_t> weighted;
  for (size_t i = 0; i + 1 < rows.size(); ++i)
    if (rows[i]["op"] == "Conv" || rows[i]["op"] == "Gemm") weighted.push_back(i);
  ASSERT_EQ(weighted.size(), ref.size());

  for (size_t k = 0; k < ref.size(); ++k) {
    const nlohmann::json& row = rows[weighted[k]];
    SCOPED_TRACE(ref[k].layer + " = " + row["name"].get<std::string>());
    EXPECT_EQ(shape_text(row["out_shape"]), ref[k].out_shape);
    EXPECT_EQ(row["macs"].get<int64_t>(), ref[k].macs);
    const int64_t folded = bn_bias && ref[k].type.rfind("conv", 0) == 0 ? row["out_shape"][1].get<int64_t>() : 0;
    EXPECT_EQ(row["params"].get<int64_t>(), ref[k].params + folded);
    EXPECT_EQ(row["weight_bytes"].get<int64_t>(), ref[k].weight_bytes + 4 * folded);
    // A cut placed just before the next weighted layer (after this layer's activation and pooling).
    const size_t cut_after = k + 1 < ref.size() ? weighted[k + 1] - 1 : rows.size() - 2;
    const int64_t cut = rows[cut_after]["cut_bytes"].get<int64_t>();
    if (chain)
      EXPECT_EQ(cut, ref[k].transfer_bytes);
    else
      EXPECT_GE(cut, ref[k].transfer_bytes);
  }
  const nlohmann::json& total = rows.back();
  EXPECT_TRUE(total["total"].get<bool>());
  EXPECT_EQ(total["nodes"].get<size_t>(), rows.size() - 1);
}

TEST(Inspect, LeNet5MatchesTheCsvIncludingCutBytes) {
  check_against_csv(kFixtures + "lenet5_mnist/lenet5_mnist_b1.onnx", kFixtures + "layers_lenet5.csv", false, true);
}

TEST(Inspect, ResNet18MatchesTheCsv) {
  check_against_csv(kBigFixtures + "resnet18/resnet18.onnx", kFixtures + "layers_resnet18.csv", true, false);
}

TEST(Inspect, MobileNetV2MatchesTheCsv) {
  check_against_csv(kFixtures + "mobilenet_v2/mobilenet_v2.onnx", kFixtures + "layers_mobilenet_v2.csv", true, false);
}

// AlexNet and VGG16 are too large to ship: set DNN_MODELS_DIR to the folder
// the model export script (bench/engine_vs_ort.sh runs it) wrote to check them too.
TEST(Inspect, AlexNetAndVgg16MatchTheCsvWhenGenerated) {
  const char* dir = std::getenv("DNN_MODELS_DIR");
  if (!dir) GTEST_SKIP() << "set DNN_MODELS_DIR to the output folder of make_models.py";
  check_against_csv(std::string(dir) + "/bench/alexnet/alexnet.onnx", kFixtures + "layers_alexnet.csv", false, true);
  check_against_csv(std::string(dir) + "/large/vgg16/vgg16.onnx", kFixtures + "layers_vgg16.csv", false, true);
}

TEST(Inspect, TableAndErrors) {
  testing::Command c = testing::run_dnnswarm("inspect --model " + kFixtures + "lenet5_mnist/lenet5_mnist_b1.onnx");
  EXPECT_EQ(c.status, 0);
  EXPECT_NE(c.out.find("/fc1/Gemm"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("total"), std::string::npos);
  c = testing::run_dnnswarm("inspect --help");
  EXPECT_EQ(c.status, 0);
  EXPECT_NE(c.out.find("--json"), std::string::npos);
  c = testing::run_dnnswarm("inspect --model /nonexistent.onnx");
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.out.find("/nonexistent.onnx"), std::string::npos) << c.out;
}

class Convert : public testing::TempDir {};

TEST_F(Convert, WritesTheImportedGraphAndRunsTheSame) {
  const std::string onnx = kFixtures + "lenet5_mnist/lenet5_mnist_dyn.onnx";
  testing::Command c = testing::run_dnnswarm("convert --model " + onnx + " --output " + path("lenet.dnns"));
  ASSERT_EQ(c.status, 0) << c.out;

  const Graph imported = import_onnx(onnx);
  const Graph read = read_dnns(path("lenet.dnns"));
  ASSERT_EQ(read.nodes.size(), imported.nodes.size());
  for (size_t i = 0; i < read.nodes.size(); ++i) {
    EXPECT_EQ(read.nodes[i].name, imported.nodes[i].name);
    EXPECT_EQ(read.nodes[i].inputs, imported.nodes[i].inputs);
    EXPECT_EQ(read.nodes[i].attrs.all(), imported.nodes[i].attrs.all());
  }
  ASSERT_EQ(read.constants.size(), imported.constants.size());
  for (auto& kv : imported.constants) testing::expect_same_bytes(read.constants.at(kv.first), kv.second, kv.first);
  EXPECT_EQ(read.inputs[0].shape, imported.inputs[0].shape);

  // Both files give the same logits for the same digits, and the same inspect rows.
  const std::string x = kFixtures + "lenet5_mnist/test_inputs_100.npy";
  ASSERT_EQ(testing::run_dnnswarm("run --model " + onnx + " --input " + x + " --output " + path("a.npy")).status, 0);
  ASSERT_EQ(testing::run_dnnswarm("run --model " + path("lenet.dnns") + " --input " + x + " --output " + path("b.npy")).status, 0);
  testing::expect_same_bytes(read_npy(path("a.npy")), read_npy(path("b.npy")), "logits");
  auto from_onnx = inspect_json(onnx), from_dnns = inspect_json(path("lenet.dnns"));
  ASSERT_EQ(from_onnx.size(), from_dnns.size());
  for (size_t i = 0; i + 1 < from_onnx.size(); ++i) EXPECT_EQ(from_onnx[i], from_dnns[i]);
}

TEST_F(Convert, RefusesABrokenModelWithItsName) {
  std::ofstream(path("broken.onnx")) << "this is not a protobuf";
  testing::Command c = testing::run_dnnswarm("convert --model " + path("broken.onnx") + " --output " + path("out.dnns"));
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.out.find("broken.onnx"), std::string::npos) << c.out;
  EXPECT_FALSE(std::ifstream(path("out.dnns")).good());
  c = testing::run_dnnswarm("convert --model " + path("broken.onnx"));  // --output missing
  EXPECT_EQ(c.status, 2) << c.out;
}

}  // namespace
}  // namespace dnn
