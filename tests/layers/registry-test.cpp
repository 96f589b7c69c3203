// The operator table: lookups, error messages naming the node, and the macs() convention written
// at the top of node/layers/registry.cpp.
#include "core/operators.h"
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

// The ModelError building node `name` (one input, no constants) throws; "no error" if none.
std::string load_error(const std::string& op, const std::string& name) {
  Node n = make_node(op, 1);
  n.name = name;
  try {
    make_layer(n, {nullptr});
  } catch (const ModelError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Registry, UnsupportedOperatorNamesOpAndNode) {
  const std::string e = load_error("NonMaxSuppression", "nms_7");
  EXPECT_NE(e.find("NonMaxSuppression"), std::string::npos) << e;
  EXPECT_NE(e.find("nms_7"), std::string::npos) << e;
  EXPECT_FALSE(is_supported_op("NonMaxSuppression"));
}

TEST(Registry, LoadErrorsNameTheNode) {
  const std::string e = load_error("Reshape", "reshape_3");
  EXPECT_NE(e.find("node 'reshape_3' (Reshape)"), std::string::npos) << e;
}

// The registry is the declaration's rows that run in a layer, nothing more.
TEST(Registry, RunsWhatTheDeclarationSays) {
  for (auto& op : operators()) EXPECT_EQ(is_supported_op(op.name), op.runs()) << op.name;
  for (auto& op : supported_ops()) EXPECT_NE(find_operator(op), nullptr) << op;
}

TEST(Registry, FoldOnlyOperatorSaysWhy) {
  const std::string e = load_error("Range", "range_2");
  EXPECT_NE(e.find("node 'range_2'"), std::string::npos) << e;
  EXPECT_NE(e.find("constant inputs"), std::string::npos) << e;
}

TEST(Registry, MacsConvention) {
  const Shape x = {2, 8, 6, 6};
  const int64_t n = numel(x);
  auto macs = [&](const Node& node, std::vector<const Tensor*> consts, std::vector<Shape> in) {
    return make_layer(node, consts)->macs(in);
  };
  // Elementwise and data movement: 0.
  EXPECT_EQ(0, macs(make_node("Relu", 1), {nullptr}, {x}));
  EXPECT_EQ(0, macs(make_node("Add", 2), {nullptr, nullptr}, {x, x}));
  Attrs perm;
  perm.set("perm", std::vector<int64_t>{0, 2, 3, 1});
  EXPECT_EQ(0, macs(make_node("Transpose", 1, perm), {nullptr}, {x}));
  // Reductions and BatchNormalization: one per input element; LRN: `size` per element.
  EXPECT_EQ(n, macs(make_node("GlobalAveragePool", 1), {nullptr}, {x}));
  EXPECT_EQ(n, macs(make_node("Softmax", 1), {nullptr}, {x}));
  EXPECT_EQ(n, macs(make_node("ReduceMean", 1), {nullptr}, {x}));
  Tensor p = random_tensor({8}, 1, 0.5f, 1.f);
  EXPECT_EQ(n, macs(make_node("BatchNormalization", 5), {nullptr, &p, &p, &p, &p}, {x, {8}, {8}, {8}, {8}}));
  Attrs lrn;
  lrn.set("size", int64_t(5));
  EXPECT_EQ(5 * n, macs(make_node("LRN", 1, lrn), {nullptr}, {x}));
  // Pooling: one per window element per output.
  Attrs pool;
  pool.set("kernel_shape", std::vector<int64_t>{3, 3});
  EXPECT_EQ(2 * 8 * 4 * 4 * 9, macs(make_node("AveragePool", 1, pool), {nullptr}, {x}));
}

}  // namespace
}  // namespace dnn::test
