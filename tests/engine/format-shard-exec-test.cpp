// Sliced models compute what the whole model computes: every shard axis (shards loaded from a .dnns
// file, run with the Executor, joined with join_shards) and pipeline stages loaded as node ranges.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "core/npy.h"
#include "engine/executor.h"
#include "format/dnns.h"
#include "format/shard.h"
#include "format/test_graphs.h"
#include "onnx/onnx_import.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

using testing::make_node;
using testing::random_tensor;

void expect_close(const Tensor& y, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(y.shape(), ref.shape()) << what;
  float max_ref = 0, max_err = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    max_ref = std::max(max_ref, std::fabs(ref.f32()[i]));
    max_err = std::max(max_err, std::fabs(y.f32()[i] - ref.f32()[i]));
  }
  EXPECT_LE(max_err, 1e-5f * max_ref + 1e-6f) << what << ": max |error| " << max_err << " of max |ref| " << max_ref;
}

// Feeds a graph's inputs by name from `values` and runs it whole.
std::vector<Tensor> run(const Graph& g, const std::map<std::string, Tensor>& values) {
  Executor ex(g);
  std::vector<Tensor> in;
  for (auto& v : ex.inputs()) in.push_back(values.at(v.name));
  return ex.run(in);
}

Graph gemm_model(int64_t m, int64_t k, int64_t n, bool trans_b, const std::string& act) {
  Graph g = testing::gemm_graph(m, k, n, trans_b);
  g.nodes.pop_back();  // the test's Relu node: the activation is fused instead
  g.outputs = {{"h", {m, n}}};
  if (!act.empty()) g.nodes[0].attrs.set("dnn.activation", act);
  if (act == "Clip") {
    g.nodes[0].attrs.set("dnn.act_min", 0.f);
    g.nodes[0].attrs.set("dnn.act_max", 1.5f);
  }
  if (act == "LeakyRelu") g.nodes[0].attrs.set("dnn.act_alpha", 0.2f);
  return g;
}

// A 3x3 stride-2 convolution with a fused residual and Relu; grouped when `groups` > 1.
Graph conv_model(int64_t groups = 1) {
  Graph g;
  const int64_t cin = groups > 1 ? groups * 2 : 5, cout = groups > 1 ? groups * 3 : 10;
  g.inputs = {{"x", {2, cin, 9, 9}}, {"skip", {2, cout, 5, 5}}};
  g.outputs = {{"y", {2, cout, 5, 5}}};
  Node conv = make_node("conv", "Conv", {"x", "conv.W", "conv.b", "skip"}, {"y"});
  conv.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.attrs.set("strides", std::vector<int64_t>{2, 2});
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.set("dnn.activation", std::string("Relu"));
  conv.attrs.set("group", groups);
  g.nodes = {conv};
  g.constants["conv.W"] = random_tensor({cout, cin / groups, 3, 3}, 11);
  g.constants["conv.b"] = random_tensor({cout}, 12);
  return g;
}

class ShardedRun : public testing::TempDir {
 protected:
  // Runs every shard of `spec.node` (all spec.count of them, each loaded alone from a .dnns file),
  // joins them, and compares with the whole model.
  void check(const Graph& full, ShardSpec spec, const std::map<std::string, Tensor>& inputs) {
    SCOPED_TRACE(spec.node + " " + to_string(spec.axis) + " x" + std::to_string(spec.count));
    write_dnns(full, path("m.dnns"));
    const Tensor ref = run(full, inputs).at(0);
    std::vector<Tensor> parts;
    for (spec.index = 0; spec.index < spec.count; ++spec.index) {
      LoadSpec ls;
      ls.node_begin = 0;
      ls.node_end = 1;
      ls.shard = spec;
      Graph shard = read_dnns(path("m.dnns"), ls);
      parts.push_back(run(shard, inputs).at(0));
    }
    expect_close(join_shards(parts, spec.axis, fused_activation(full.nodes[0])), ref, "joined shards");
  }
};

TEST_F(ShardedRun, GemmByOutputRows) {
  const std::map<std::string, Tensor> in{{"x", random_tensor({3, 37}, 21)}};
  check(gemm_model(3, 37, 29, true, "Relu"), {"fc", SplitAxis::OutputRows, 0, 4}, in);
  check(gemm_model(3, 37, 29, false, "Clip"), {"fc", SplitAxis::OutputRows, 0, 3}, in);
}

TEST_F(ShardedRun, GemmByInputColumnsSumsThenActivates) {
  const std::map<std::string, Tensor> in{{"x", random_tensor({3, 37}, 22)}};
  check(gemm_model(3, 37, 29, true, "Relu"), {"fc", SplitAxis::InputColumns, 0, 4}, in);
  check(gemm_model(3, 37, 29, false, "Clip"), {"fc", SplitAxis::InputColumns, 0, 3}, in);
  check(gemm_model(3, 37, 29, true, "LeakyRelu"), {"fc", SplitAxis::InputColumns, 0, 5}, in);
  check(gemm_model(3, 37, 29, true, ""), {"fc", SplitAxis::InputColumns, 0, 2}, in);
}

TEST_F(ShardedRun, ConvByOutputChannelsWithAResidual) {
  const std::map<std::string, Tensor> in{{"x", random_tensor({2, 5, 9, 9}, 23)}, {"skip", random_tensor({2, 10, 5, 5}, 24)}};
  check(conv_model(), {"conv", SplitAxis::OutputChannels, 0, 3}, in);
  check(conv_model(), {"conv", SplitAxis::OutputChannels, 0, 10}, in);
}

TEST_F(ShardedRun, GroupedConvByWholeGroups) {
  const std::map<std::string, Tensor> in{{"x", random_tensor({2, 8, 9, 9}, 25)}, {"skip", random_tensor({2, 12, 5, 5}, 26)}};
  check(conv_model(4), {"conv", SplitAxis::OutputChannels, 0, 3}, in);  // groups 2 + 1 + 1
  // Depthwise: one input and one output channel per group.
  Graph dw = conv_model(4);
  dw.constants["conv.W"] = random_tensor({8, 1, 3, 3}, 27);
  dw.constants["conv.b"] = random_tensor({8}, 28);
  dw.nodes[0].attrs.set("group", int64_t{8});
  dw.nodes[0].inputs.pop_back();  // no residual
  dw.inputs.pop_back();
  dw.outputs = {{"y", {2, 8, 5, 5}}};
  check(dw, {"conv", SplitAxis::OutputChannels, 0, 3}, {{"x", in.at("x")}});
}

// conv -> maxpool -> flatten -> fc -> relu, cut into stages loaded as node ranges of the file; the
// middle stage ends in a sharded fc, as a swarm plan would run it.
TEST_F(ShardedRun, PipelineStagesAndAShardedStageMatchTheWholeModel) {
  Graph g;
  g.inputs = {{"x", {1, 3, 8, 8}}};
  g.outputs = {{"y", {1, 10}}};
  Node conv = make_node("conv", "Conv", {"x", "conv.W", "conv.b"}, {"c"});
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.set("dnn.activation", std::string("Relu"));
  Node pool = make_node("pool", "MaxPool", {"c"}, {"p"});
  pool.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.attrs.set("strides", std::vector<int64_t>{2, 2});
  Node flat = make_node("flatten", "Flatten", {"p"}, {"f"});
  Node fc = make_node("fc", "Gemm", {"f", "fc.W", "fc.b"}, {"h"});
  fc.attrs.set("transB", int64_t{1});
  fc.attrs.set("dnn.activation", std::string("Relu"));
  Node out = make_node("out", "Gemm", {"h", "out.W"}, {"y"});
  out.attrs.set("transB", int64_t{1});
  g.nodes = {conv, pool, flat, fc, out};
  g.constants["conv.W"] = random_tensor({4, 3, 3, 3}, 31);
  g.constants["conv.b"] = random_tensor({4}, 32);
  g.constants["fc.W"] = random_tensor({16, 64}, 33);
  g.constants["fc.b"] = random_tensor({16}, 34);
  g.constants["out.W"] = random_tensor({10, 16}, 35);
  write_dnns(g, path("pipe.dnns"));
  const Tensor x = random_tensor({1, 3, 8, 8}, 36);
  const Tensor ref = run(g, {{"x", x}}).at(0);

  auto stage = [&](size_t begin, size_t end, std::optional<ShardSpec> shard = std::nullopt) {
    LoadSpec ls;
    ls.node_begin = begin;
    ls.node_end = end;
    ls.shard = shard;
    return read_dnns(path("pipe.dnns"), ls);
  };
  // Stage 1: conv, pool. Stage 2: flatten, fc split by input columns over 2 devices. Stage 3: out.
  Tensor p = run(stage(0, 2), {{"x", x}}).at(0);
  std::vector<Tensor> parts;
  for (int i = 0; i < 2; ++i) parts.push_back(run(stage(2, 4, ShardSpec{"fc", SplitAxis::InputColumns, i, 2}), {{"p", p}}).at(0));
  Tensor h = join_shards(parts, SplitAxis::InputColumns, fused_activation(g.nodes[3]));
  expect_close(run(stage(4, 5), {{"h", h}}).at(0), ref, "3 stages");
}

// A real model, imported (so with the importer's fused activations and residuals) and written as
// .dnns: each picked Conv or Gemm layer in turn is sharded 3 ways on every axis that applies, between
// a stage before it and a stage after it, all loaded from the file. Returns how many cases ran.
int check_sharded_model(const std::string& onnx, const std::string& dnns, const Tensor& x, const Tensor& ref,
                        bool (*pick)(const Node&)) {
  const Graph g = import_onnx(onnx);
  write_dnns(g, dnns);
  const Tensor whole = run(g, {{g.inputs[0].name, x}}).at(0);
  expect_close(whole, ref, "whole model");

  // Runs a range of the file on the values computed so far; returns its outputs by name.
  auto run_range = [&](const std::map<std::string, Tensor>& values, size_t begin, size_t end,
                       std::optional<ShardSpec> shard = std::nullopt) {
    LoadSpec ls;
    ls.node_begin = begin;
    ls.node_end = end;
    ls.shard = shard;
    Graph part = read_dnns(dnns, ls);
    std::vector<Tensor> out = run(part, values);
    std::map<std::string, Tensor> produced;
    for (size_t i = 0; i < part.outputs.size(); ++i) produced[part.outputs[i].name] = out[i];
    return produced;
  };

  int checked = 0;
  for (size_t s = 0; s < g.nodes.size(); ++s) {
    const Node& node = g.nodes[s];
    if (!pick(node)) continue;
    std::vector<SplitAxis> axes;
    if (node.op == "Conv") axes = {SplitAxis::OutputChannels};
    if (node.op == "Gemm") axes = {SplitAxis::OutputRows, SplitAxis::InputColumns};
    for (SplitAxis axis : axes) {
      SCOPED_TRACE(node.name + " " + to_string(axis));
      std::map<std::string, Tensor> values{{g.inputs[0].name, x}};
      if (s > 0)
        for (auto& kv : run_range(values, 0, s)) values[kv.first] = kv.second;
      std::vector<Tensor> parts;
      for (int i = 0; i < 3; ++i) parts.push_back(run_range(values, s, s + 1, ShardSpec{node.name, axis, i, 3}).at(node.outputs[0]));
      values[node.outputs[0]] = join_shards(parts, axis, fused_activation(node));
      Tensor y = s + 1 < g.nodes.size() ? run_range(values, s + 1, g.nodes.size()).at(g.outputs[0].name)
                                        : values.at(g.outputs[0].name);
      expect_close(y, whole, "sharded");
      ++checked;
    }
  }
  return checked;
}

const std::string kFixtures = test::fixture("");
const std::string kBigFixtures = test::fixture("");

TEST_F(ShardedRun, LeNet5WithAnyLayerShardedMatchesTheReference) {
  const std::string dir = kFixtures + "lenet5_mnist/";
  int checked = check_sharded_model(dir + "lenet5_mnist_dyn.onnx", path("lenet.dnns"), read_npy(dir + "test_inputs_100.npy"),
                                    read_npy(dir + "ref_logits_100.npy"), [](const Node& n) { return true; });
  EXPECT_EQ(checked, 2 + 3 * 2);  // 2 convolutions, 3 fully-connected layers
}

// ResNet18's convolutions that carry a fused residual (cut to the shard's channels by a Slice), and fc.
TEST_F(ShardedRun, ResNet18ResidualConvolutionsShardedMatchTheReference) {
  const std::string dir = kBigFixtures + "resnet18/";
  int checked = check_sharded_model(dir + "resnet18.onnx", path("resnet18.dnns"), read_npy(dir + "input.npy"),
                                    read_npy(dir + "ref_output.npy"), [](const Node& n) {
                                      return (n.op == "Conv" && n.inputs.size() > 3 && n.name.find("layer4") != std::string::npos) ||
                                             n.op == "Gemm";
                                    });
  EXPECT_EQ(checked, 2 + 2);  // layer4's two residual convolutions, fc on both axes
}

}  // namespace
}  // namespace dnn
