// Acceptance over a directory of exported models (tools/export_zoo.py: the torchvision families at
// opsets 9 to 13): every .onnx in $DNN_ZOO_DIR imports, validates, and leaves only operators of the
// engine's op set, with BatchNormalization only where no Conv/Gemm precedes it; where the reference
// <stem>.input.npy / .output.npy lie beside it, `dnnswarm run` must match the output. One test per
// file; without DNN_ZOO_DIR no test is registered (the models are hundreds of MB and made by torch).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/operators.h"
#include "onnx/onnx_import.h"
#include "onnx/run_reference.h"

namespace dnn {
namespace {

// An operator a layer runs, other than the pass-through ones the importer removes.
bool is_engine_op(const std::string& op) {
  const OperatorInfo* info = find_operator(op);
  return info && info->runs() && op != "Identity" && op != "Dropout";
}

class ZooModel : public testing::Test {
 public:
  explicit ZooModel(std::string path) : path_(std::move(path)) {}
  void TestBody() override {
    Graph g = import_onnx(path_);
    EXPECT_NO_THROW(g.validate());
    ASSERT_EQ(g.inputs.size(), 1u);
    EXPECT_EQ(g.inputs[0].shape.size(), 4u);
    std::set<std::string> names;
    for (auto& n : g.nodes) {
      EXPECT_TRUE(is_engine_op(n.op)) << g.describe(n) << " is outside the engine's op set";
      EXPECT_TRUE(names.insert(n.name).second) << "duplicate node name " << n.name;
      bool reads_activation = false;
      for (auto& in : n.inputs) reads_activation |= !in.empty() && !g.is_constant(in);
      EXPECT_TRUE(reads_activation) << g.describe(n) << " reads only constants";
      if (n.op == "BatchNormalization") {
        int p = g.producer(n.inputs[0]);
        if (p >= 0) {
          EXPECT_NE(g.nodes[p].op, "Conv") << g.describe(n) << " was not folded";
        }
      }
    }
    const std::string stem = path_.substr(0, path_.size() - 5);
    if (std::filesystem::exists(stem + ".input.npy") && std::filesystem::exists(stem + ".output.npy"))
      test::expect_matches_reference(path_);
  }

 private:
  std::string path_;
};

// Registered at start-up, before gtest lists or runs tests.
const bool registered = [] {
  const char* dir = std::getenv("DNN_ZOO_DIR");
  if (!dir) return false;
  std::set<std::string> files;  // sorted: stable test order
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".onnx") files.insert(e.path().string());
  if (files.empty())  // a wrong directory must not pass as "nothing to check"
    testing::RegisterTest("OnnxZoo", "NoModels", nullptr, nullptr, __FILE__, __LINE__, [dir]() -> testing::Test* {
      struct Empty : testing::Test {
        std::string dir;
        void TestBody() override { FAIL() << "no .onnx files in DNN_ZOO_DIR=" << dir; }
      };
      auto t = new Empty;
      t->dir = dir;
      return t;
    });
  for (auto& f : files)
    testing::RegisterTest("OnnxZoo", std::filesystem::path(f).stem().c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [f]() -> testing::Test* { return new ZooModel(f); });
  return true;
}();

}  // namespace
}  // namespace dnn
