// .dnns writing and reading: a model comes back unchanged, every tensor sits on its own 4096-byte
// pages, and a node-range load reads exactly that range's constants.
#include <gtest/gtest.h>

#include <fstream>

#include "format/dnns.h"
#include "format/test_graphs.h"
#include "model_generated.h"

namespace dnn {
namespace {

using testing::make_node;
using testing::random_tensor;

// conv -> relu -> flatten(shape constant) -> fc: every attribute kind, both dtypes, an unused constant.
Graph sample_graph() {
  Graph g;
  g.name = "sample";
  g.inputs = {{"x", {-1, 2, 5, 5}}};
  g.outputs = {{"y", {-1, 3}}};
  Node conv = make_node("conv", "Conv", {"x", "conv.W", "conv.b"}, {"c"});
  conv.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.set("dnn.activation", std::string("LeakyRelu"));
  conv.attrs.set("dnn.act_alpha", 0.125f);
  conv.attrs.set("scales", std::vector<float>{0.5f, -2.f});
  conv.attrs.set("group", int64_t{1});
  Node reshape = make_node("flatten", "Reshape", {"c", "shape"}, {"f"});
  Node fc = make_node("fc", "Gemm", {"f", "fc.W", ""}, {"y"});
  fc.attrs.set("transB", int64_t{1});
  g.nodes = {conv, reshape, fc};
  g.constants["conv.W"] = random_tensor({4, 2, 3, 3}, 1);
  g.constants["conv.b"] = random_tensor({4}, 2);
  g.constants["shape"] = Tensor::from_i64({2}, {-1, 100});
  g.constants["fc.W"] = random_tensor({3, 100}, 3);
  g.constants["unused"] = random_tensor({7}, 4);
  return g;
}

void expect_same_graph(const Graph& a, const Graph& b) {
  EXPECT_EQ(a.name, b.name);
  auto same_values = [](const std::vector<ValueInfo>& x, const std::vector<ValueInfo>& y) {
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].name, y[i].name);
      EXPECT_EQ(x[i].shape, y[i].shape);
    }
  };
  same_values(a.inputs, b.inputs);
  same_values(a.outputs, b.outputs);
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    EXPECT_EQ(a.nodes[i].name, b.nodes[i].name);
    EXPECT_EQ(a.nodes[i].op, b.nodes[i].op);
    EXPECT_EQ(a.nodes[i].inputs, b.nodes[i].inputs);
    EXPECT_EQ(a.nodes[i].outputs, b.nodes[i].outputs);
    EXPECT_EQ(a.nodes[i].attrs.all(), b.nodes[i].attrs.all()) << a.nodes[i].name;
  }
  ASSERT_EQ(a.constants.size(), b.constants.size());
  for (auto& kv : a.constants) {
    ASSERT_TRUE(b.constants.count(kv.first)) << kv.first;
    testing::expect_same_bytes(kv.second, b.constants.at(kv.first), kv.first);
  }
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

class RoundTrip : public testing::TempDir {};

TEST_F(RoundTrip, WriteThenReadGivesTheSameGraphAndBytes) {
  const Graph g = sample_graph();
  write_dnns(g, path("m.dnns"));
  ReadStats stats;
  Graph back = read_dnns(path("m.dnns"), {}, &stats);
  expect_same_graph(g, back);
  size_t all_bytes = 0;
  for (auto& kv : g.constants) all_bytes += kv.second.bytes();
  EXPECT_EQ(stats.weight_bytes, all_bytes);
  EXPECT_EQ(stats.reads, g.constants.size());
}

TEST_F(RoundTrip, TensorsStartOnTheirOwnPagesInOrderOfFirstUse) {
  const Graph g = sample_graph();
  write_dnns(g, path("m.dnns"));
  const std::vector<uint8_t> bytes = file_bytes(path("m.dnns"));
  ASSERT_GE(bytes.size(), 16u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "DNNS");
  uint32_t version;
  uint64_t header_len;
  std::memcpy(&version, &bytes[4], 4);
  std::memcpy(&header_len, &bytes[8], 8);
  EXPECT_EQ(version, kDnnsVersion);
  const fb::Model* model = fb::GetModel(&bytes[16]);
  const uint64_t weights_start = (16 + header_len + 4095) / 4096 * 4096;

  std::vector<std::string> names;
  for (auto c : *model->constants()) {
    names.push_back(c->name()->str());
    EXPECT_EQ(c->offset() % 4096, 0u) << c->name()->str();
    const Tensor& t = g.constants.at(c->name()->str());
    ASSERT_LE(weights_start + c->offset() + c->length(), bytes.size());
    EXPECT_EQ(std::memcmp(&bytes[weights_start + c->offset()], t.raw(), t.bytes()), 0) << c->name()->str();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"conv.W", "conv.b", "shape", "fc.W", "unused"}));
  EXPECT_EQ(weights_start + model->weights_bytes(), bytes.size());
}

TEST_F(RoundTrip, ARangeLoadReadsOnlyThatRangesConstants) {
  const Graph g = sample_graph();
  write_dnns(g, path("m.dnns"));
  LoadSpec spec;
  spec.node_begin = 1;
  spec.node_end = 3;
  ReadStats stats;
  Graph part = read_dnns(path("m.dnns"), spec, &stats);

  EXPECT_EQ(stats.weight_bytes, g.constants.at("shape").bytes() + g.constants.at("fc.W").bytes());
  ASSERT_EQ(part.constants.size(), 2u);
  testing::expect_same_bytes(part.constants.at("fc.W"), g.constants.at("fc.W"), "fc.W");
  ASSERT_EQ(part.nodes.size(), 2u);
  EXPECT_EQ(part.nodes[0].name, "flatten");
  // The cut before node 1 carries "c", whose shape the file does not know; the output keeps its shape.
  ASSERT_EQ(part.inputs.size(), 1u);
  EXPECT_EQ(part.inputs[0].name, "c");
  EXPECT_TRUE(part.inputs[0].shape.empty());
  ASSERT_EQ(part.outputs.size(), 1u);
  EXPECT_EQ(part.outputs[0].name, "y");
  EXPECT_EQ(part.outputs[0].shape, (Shape{-1, 3}));

  spec.node_begin = 0;
  spec.node_end = 1;
  stats = {};
  Graph first = read_dnns(path("m.dnns"), spec, &stats);
  EXPECT_EQ(stats.weight_bytes, g.constants.at("conv.W").bytes() + g.constants.at("conv.b").bytes());
  ASSERT_EQ(first.outputs.size(), 1u);
  EXPECT_EQ(first.outputs[0].name, "c");
  EXPECT_EQ(first.inputs[0].shape, (Shape{-1, 2, 5, 5}));
}

TEST_F(RoundTrip, TheHeaderAloneGivesTheGraphAndConstantShapes) {
  const Graph g = sample_graph();
  write_dnns(g, path("m.dnns"));
  DnnsHeader h = read_dnns_header(path("m.dnns"));
  EXPECT_TRUE(h.graph.constants.empty());
  h.graph.constants = g.constants;
  expect_same_graph(g, h.graph);
  ASSERT_EQ(h.constants.size(), g.constants.size());
  EXPECT_EQ(h.constants.at("conv.W").shape, (Shape{4, 2, 3, 3}));
  EXPECT_EQ(h.constants.at("shape").dtype, DType::i64);
}

TEST_F(RoundTrip, AGraphWithoutConstantsOrAttributes) {
  Graph g;
  g.inputs = {{"x", {1, 4}}};
  g.outputs = {{"y", {1, 4}}};
  g.nodes = {make_node("relu", "Relu", {"x"}, {"y"})};
  write_dnns(g, path("plain.dnns"));
  expect_same_graph(g, read_dnns(path("plain.dnns")));
}

// The round trip keeps what the slicing semantics promise: a range passes through values that are
// produced before it and still needed after it.
TEST_F(RoundTrip, ARangeBetweenASkipConnectionPassesItThrough) {
  Graph g;
  g.inputs = {{"x", {1, 4}}};
  g.outputs = {{"y", {1, 4}}};
  g.nodes = {make_node("a", "Relu", {"x"}, {"a"}), make_node("b", "Relu", {"a"}, {"b"}),
             make_node("c", "Add", {"a", "b"}, {"y"})};
  write_dnns(g, path("skip.dnns"));
  LoadSpec spec;
  spec.node_begin = 1;
  spec.node_end = 2;
  Graph mid = read_dnns(path("skip.dnns"), spec);
  ASSERT_EQ(mid.inputs.size(), 1u);
  EXPECT_EQ(mid.inputs[0].name, "a");
  ASSERT_EQ(mid.outputs.size(), 2u);
  EXPECT_EQ(mid.outputs[0].name, "a");
  EXPECT_EQ(mid.outputs[1].name, "b");
}

}  // namespace
}  // namespace dnn
