// Model parallelism: a layer split into shards, each shard a node, joined at exactly one place,
// equals the whole model — for every split axis and for a sharded first, middle and last stage.
#include <gtest/gtest.h>

#include "swarm_harness.h"

namespace dnn::test {
namespace {

Node node(std::string name, std::string op, std::vector<std::string> in, std::string out) {
  Node n;
  n.name = std::move(name);
  n.op = std::move(op);
  n.inputs = std::move(in);
  n.outputs = {std::move(out)};
  return n;
}

// x[-1,32] -> fc1 (Relu) -> fc2 (Relu) -> fc3 -> y; weights [N,K] with transB = 1.
Graph fc_graph() {
  Graph g;
  g.name = "fc3";
  g.inputs = {{"x", {-1, 32}}};
  g.outputs = {{"y", {-1, 10}}};
  const int64_t dims[] = {32, 24, 20, 10};
  for (int i = 0; i < 3; ++i) {
    const std::string n = "fc" + std::to_string(i + 1);
    Node fc = node(n, "Gemm", {i == 0 ? "x" : "h" + std::to_string(i), n + ".W", n + ".b"},
                   i == 2 ? "y" : "h" + std::to_string(i + 1));
    fc.attrs.set("transB", int64_t{1});
    if (i < 2) fc.attrs.set("dnn.activation", std::string("Relu"));
    g.nodes.push_back(fc);
    g.constants[n + ".W"] = seeded_tensor({dims[i + 1], dims[i]}, 10 + i);
    g.constants[n + ".b"] = seeded_tensor({dims[i + 1]}, 20 + i);
  }
  return g;
}

// x[-1,3,8,8] -> conv1 (8 channels, Relu) -> conv2 (4 channels) -> y.
Graph conv_graph() {
  Graph g;
  g.name = "conv2";
  g.inputs = {{"x", {-1, 3, 8, 8}}};
  g.outputs = {{"y", {-1, 4, 8, 8}}};
  const int64_t ch[] = {3, 8, 4};
  for (int i = 0; i < 2; ++i) {
    const std::string n = "conv" + std::to_string(i + 1);
    Node c = node(n, "Conv", {i == 0 ? "x" : "h", n + ".W", n + ".b"}, i == 1 ? "y" : "h");
    c.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
    c.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    c.attrs.set("strides", std::vector<int64_t>{1, 1});
    if (i == 0) c.attrs.set("dnn.activation", std::string("Relu"));
    g.nodes.push_back(c);
    g.constants[n + ".W"] = seeded_tensor({ch[i + 1], ch[i], 3, 3}, 30 + i);
    g.constants[n + ".b"] = seeded_tensor({ch[i + 1]}, 40 + i);
  }
  return g;
}

// Sends `requests` different inputs of `shape` and checks each result against the whole model.
void expect_swarm_equals_model(const Plan& plan, const Graph& g, const Shape& shape, int requests = 8) {
  InProcessSwarm swarm(plan, g);
  InferClient client(swarm.client_options(plan.model));
  std::vector<Tensor> inputs;
  std::vector<std::future<InferResult>> results;
  for (int i = 0; i < requests; ++i) {
    inputs.push_back(seeded_tensor(shape, 100 + i));
    results.push_back(client.submit({{"x", inputs.back()}}));
  }
  for (int i = 0; i < requests; ++i) {
    InferResult r = results[i].get();
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.outputs.size(), 1u);
    EXPECT_TRUE(matches_whole_model(r.outputs[0].tensor, reference_output(g, inputs[i]))) << "request " << i;
  }
  EXPECT_EQ(client.duplicates(), 0u);
}

TEST(SwarmShards, FcSplitByOutputRowsInTheMiddleStage) {
  Graph g = fc_graph();
  Plan plan = make_plan("fc3", {stage("a", 0, 1), shard_stage("b", g, 1, SplitAxis::OutputRows, 3), stage("c", 2, 3)});
  expect_swarm_equals_model(plan, g, {2, 32});
}

TEST(SwarmShards, FcSplitByInputColumnsIsSummedThenActivatedInTheLastStage) {
  Graph g = fc_graph();
  Plan plan = make_plan("fc3", {stage("a", 0, 1), shard_stage("b", g, 1, SplitAxis::InputColumns, 2), stage("c", 2, 3)});
  expect_swarm_equals_model(plan, g, {2, 32});
  Plan last = make_plan("fc3", {stage("a", 0, 2), shard_stage("c", g, 2, SplitAxis::InputColumns, 2)});
  expect_swarm_equals_model(last, g, {1, 32});
}

TEST(SwarmShards, ConvSplitByOutputChannelsInTheFirstStageIsJoinedByTheClient) {
  Graph g = conv_graph();
  Plan plan = make_plan("conv2", {shard_stage("a", g, 0, SplitAxis::OutputChannels, 2), stage("b", 1, 2)});
  expect_swarm_equals_model(plan, g, {1, 3, 8, 8});
}

TEST(SwarmShards, AlexNetFc6ShapedLayerInFourShardsByOutputRows) {
  // AlexNet's fc6 (9216 -> 4096, 151 MB of weights, fused Relu) then a small head.
  Graph g;
  g.name = "fc6";
  g.inputs = {{"x", {-1, 9216}}};
  g.outputs = {{"y", {-1, 10}}};
  Node fc6 = node("fc6", "Gemm", {"x", "fc6.W", "fc6.b"}, "h");
  fc6.attrs.set("transB", int64_t{1});
  fc6.attrs.set("dnn.activation", std::string("Relu"));
  Node head = node("head", "Gemm", {"h", "head.W", "head.b"}, "y");
  head.attrs.set("transB", int64_t{1});
  g.nodes = {fc6, head};
  g.constants["fc6.W"] = seeded_tensor({4096, 9216}, 1);
  g.constants["fc6.b"] = seeded_tensor({4096}, 2);
  g.constants["head.W"] = seeded_tensor({10, 4096}, 3);
  g.constants["head.b"] = seeded_tensor({10}, 4);
  Plan plan = make_plan("fc6", {shard_stage("fc6", g, 0, SplitAxis::OutputRows, 4), stage("head", 1, 2)});
  expect_swarm_equals_model(plan, g, {1, 9216}, 4);
}

TEST(SwarmShards, ReplicatedShardsWithManyRequestsInFlight) {
  Graph g = fc_graph();
  Plan plan = make_plan("fc3", {stage("a", 0, 1, 2), shard_stage("b", g, 1, SplitAxis::OutputRows, 2, 2),
                                shard_stage("c", g, 2, SplitAxis::InputColumns, 2, 2)});
  expect_swarm_equals_model(plan, g, {1, 32}, 48);
}

}  // namespace
}  // namespace dnn::test
