// What a node or client refuses, clearly, instead of serving a wrong or partial model: unknown
// models, plans that do not cover the model, slices over the memory limit, bad messages, requests
// past their deadline.
#include <gtest/gtest.h>

#include "swarm_harness.h"

namespace dnn::test {
namespace {

// x[-1,k] -> fc (n outputs) -> y.
Graph fc_graph(int64_t k, int64_t n) {
  Graph g;
  g.name = "fc";
  g.inputs = {{"x", {-1, k}}};
  g.outputs = {{"y", {-1, n}}};
  Node fc;
  fc.name = "fc";
  fc.op = "Gemm";
  fc.inputs = {"x", "fc.W", "fc.b"};
  fc.outputs = {"y"};
  fc.attrs.set("transB", int64_t{1});
  g.nodes.push_back(fc);
  g.constants["fc.W"] = seeded_tensor({n, k}, 1);
  g.constants["fc.b"] = seeded_tensor({n}, 2);
  return g;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(SwarmRefusal, PlanThatDoesNotCoverTheModel) {
  Graph g = fc_graph(8, 4);
  Node relu;
  relu.name = "relu";
  relu.op = "Relu";
  relu.inputs = {"y"};
  relu.outputs = {"z"};
  g.nodes.push_back(relu);
  g.outputs = {{"z", {-1, 4}}};
  NodeConfig cfg;
  cfg.stage = "0";
  const std::string e = error_of([&] { load_node_slice(make_plan("fc", {stage("a", 0, 1)}), g, cfg); });
  EXPECT_NE(e.find("does not cover"), std::string::npos) << e;
}

TEST(SwarmRefusal, UnknownStageOrShard) {
  Graph g = fc_graph(8, 4);
  Plan plan = make_plan("fc", {stage("a", 0, 1)});
  NodeConfig cfg;
  cfg.stage = "b";
  EXPECT_NE(error_of([&] { load_node_slice(plan, g, cfg); }), "");
  cfg.stage = "3";
  EXPECT_NE(error_of([&] { load_node_slice(plan, g, cfg); }).find("no stage 3"), std::string::npos);
  cfg.stage = "a";
  cfg.shard = 1;
  EXPECT_NE(error_of([&] { load_node_slice(plan, g, cfg); }).find("no such shard"), std::string::npos);
}

TEST(SwarmRefusal, SliceOverTheMemoryLimitUnlessSharded) {
  Graph g = fc_graph(1024, 12 * 1024);   // 48 MB of weights
  NodeConfig cfg;
  cfg.stage = "0";
  cfg.memory_limit_mb = 96;   // 48 MB + 64 MB runtime does not fit
  const std::string e = error_of([&] { load_node_slice(make_plan("fc", {stage("a", 0, 1)}), g, cfg); });
  EXPECT_NE(e.find("does not fit the memory limit"), std::string::npos) << e;
  // In 4 shards of 12 MB each it does.
  Plan sharded = make_plan("fc", {shard_stage("a", g, 0, SplitAxis::OutputRows, 4)});
  for (int k = 0; k < 4; ++k) {
    cfg.shard = k;
    NodeSlice s = load_node_slice(sharded, g, cfg);
    EXPECT_EQ(s.weight_bytes, (48u << 20) / 4 + 12 * 1024 * 4 / 4);
  }
}

TEST(SwarmRefusal, ClientRefusesAModelNoNodeServes) {
  Graph g = fc_graph(8, 4);
  InProcessSwarm swarm(make_plan("fc", {stage("a", 0, 1)}), g);
  ClientOptions o = swarm.client_options("nosuchmodel");
  o.topology_timeout_ms = 300;
  const std::string e = error_of([&] { InferClient c(o); });
  EXPECT_NE(e.find("unknown model 'nosuchmodel'"), std::string::npos) << e;
}

TEST(SwarmRefusal, BadMessagesGetAnErrorAndTheNodeServesOn) {
  Graph g = fc_graph(8, 4);
  InProcessSwarm swarm(make_plan("fc", {stage("a", 0, 1)}), g);
  Topics topics;
  BoundedQueue<Inbound> replies(100);
  MqttOptions raw_opt;
  raw_opt.broker = swarm.broker().url();
  raw_opt.client_id = "raw";
  MqttClient raw(raw_opt, [&](Inbound&& m) { replies.try_push(std::move(m)); });
  raw.connect();
  raw.subscribe("dnnswarm/raw/reply");

  raw.publish(topics.stage_in("fc", 0), "garbage that is not a flatbuffer");   // dropped, logged
  TensorMessage wrong;
  wrong.request_id = "raw/1";
  wrong.model = "fc";
  wrong.reply_to = "dnnswarm/raw/reply";
  wrong.tensors.push_back({"x", seeded_tensor({1, 9}, 3)});   // the model takes [*, 8]
  raw.publish(topics.stage_in("fc", 0), encode(wrong));
  auto reply = replies.pop_for(std::chrono::seconds(5));
  ASSERT_TRUE(reply);
  auto err = std::get<ErrorReport>(decode_message(reply->payload));
  EXPECT_EQ(err.request_id, "raw/1");
  EXPECT_NE(err.message.find("shape"), std::string::npos) << err.message;

  InferClient client(swarm.client_options("fc"));
  Tensor x = seeded_tensor({1, 8}, 4);
  InferResult r = client.submit({{"x", x}}).get();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(matches_whole_model(r.outputs[0].tensor, reference_output(g, x)));
  EXPECT_EQ(swarm.node(0).stats().failed, 1u);
}

TEST(SwarmRefusal, RequestsPastTheirDeadlineAreDroppedWithAnError) {
  Graph g = fc_graph(8, 4);
  NodeConfig slow;
  slow.min_frame_ms = 300;
  InProcessSwarm swarm(make_plan("fc", {stage("a", 0, 1)}), g, slow);
  ClientOptions o = swarm.client_options("fc");
  o.timeout_ms = 200;
  InferClient client(o);
  auto first = client.submit({{"x", seeded_tensor({1, 8}, 5)}});    // computed at once
  auto second = client.submit({{"x", seeded_tensor({1, 8}, 6)}});   // waits 300 ms: expired at the node
  first.get();
  InferResult b = second.get();
  EXPECT_FALSE(b.ok());
  EXPECT_FALSE(b.timed_out) << "the node should have reported it";
  EXPECT_NE(b.error.find("deadline"), std::string::npos) << b.error;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(swarm.node(0).stats().expired, 1u);
}

}  // namespace
}  // namespace dnn::test
