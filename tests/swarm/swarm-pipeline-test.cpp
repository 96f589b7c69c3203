// The bundled LeNet-5 over a real Mosquitto: pipeline stages, replicated stages, a sharded fc layer,
// and all of them at once with 64 requests in flight, against the whole model on one device.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/npy.h"
#include "engine/model.h"
#include "support/fixtures.h"
#include "swarm_harness.h"

namespace dnn::test {
namespace {

class LeNetSwarm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new Graph(load_model(fixture("lenet5_mnist/lenet5_mnist_b1.onnx")));
    digits_ = new Tensor(read_npy(fixture("lenet5_mnist/test_inputs_100.npy")));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete digits_;
  }
  static const Graph& model() { return *model_; }
  static size_t nodes() { return model_->nodes.size(); }
  // Digit i as a [1, 1, 28, 28] frame.
  static Tensor digit(int i) {
    Shape s = digits_->shape();
    s[0] = 1;
    Tensor t(s);
    std::memcpy(t.f32(), digits_->f32() + i * t.numel(), t.bytes());
    return t;
  }
  static size_t first_gemm() {
    for (size_t i = 0; i < nodes(); ++i)
      if (model_->nodes[i].op == "Gemm") return i;
    throw Error("LeNet has no Gemm");
  }

  // Sends digits 0..n-1 (all different) with `window` in flight; every one must be answered exactly
  // once with the whole model's output for that digit.
  void expect_swarm_equals_model(InProcessSwarm& swarm, int n, int window) {
    InferClient client(swarm.client_options("lenet5", window));
    std::vector<std::future<InferResult>> results;
    for (int i = 0; i < n; ++i) results.push_back(client.submit({{"", digit(i)}}));
    std::set<std::string> ids;
    for (int i = 0; i < n; ++i) {
      InferResult r = results[i].get();
      ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.error;
      ids.insert(r.request_id);
      EXPECT_TRUE(matches_whole_model(r.outputs.at(0).tensor, reference_output(model(), digit(i)))) << "digit " << i;
    }
    EXPECT_EQ(ids.size(), static_cast<size_t>(n));
    EXPECT_TRUE(client.drain(std::chrono::seconds(1)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));   // a duplicate would arrive by now
    EXPECT_EQ(client.duplicates(), 0u);
  }

  static Graph* model_;
  static Tensor* digits_;
};
Graph* LeNetSwarm::model_ = nullptr;
Tensor* LeNetSwarm::digits_ = nullptr;

TEST_F(LeNetSwarm, ThreeStagePipeline) {
  const size_t n = nodes();
  Plan plan = make_plan("lenet5", {stage("a", 0, n / 3), stage("b", n / 3, 2 * n / 3), stage("c", 2 * n / 3, n)});
  InProcessSwarm swarm(plan, model());
  expect_swarm_equals_model(swarm, 20, 8);
  for (size_t i = 0; i < swarm.size(); ++i) EXPECT_EQ(swarm.node(i).stats().processed, 20u);
}

TEST_F(LeNetSwarm, StageWithThreeReplicas) {
  const size_t n = nodes();
  Plan plan = make_plan("lenet5", {stage("a", 0, n / 2), stage("b", n / 2, n, 3)});
  InProcessSwarm swarm(plan, model());
  expect_swarm_equals_model(swarm, 30, 16);
  uint64_t total = 0;
  for (size_t i = 1; i < swarm.size(); ++i) {
    EXPECT_GT(swarm.node(i).stats().processed, 0u) << "replica " << i << " got no work";
    total += swarm.node(i).stats().processed;
  }
  EXPECT_EQ(total, 30u);
}

TEST_F(LeNetSwarm, DataAndModelParallelCombinedWith64InFlight) {
  const size_t n = nodes(), fc = first_gemm();
  Plan plan = make_plan("lenet5", {stage("convs", 0, fc, 2), shard_stage("fc1", model(), fc, SplitAxis::OutputRows, 2, 2),
                                   stage("head", fc + 1, n, 2)});
  InProcessSwarm swarm(plan, model());
  expect_swarm_equals_model(swarm, 64, 64);
}

TEST_F(LeNetSwarm, FasterReplicaServesMoreFrames) {
  const int W = 32, R = 200;   // the window keeps both replicas busy (a smaller one limits throughput)
  // One stage, two replicas; replica 0 is made twice as slow (40 vs 20 ms per frame).
  Plan plan = make_plan("lenet5", {stage("all", 0, nodes(), 2)});
  InProcessSwarm swarm(plan, model(), {}, [&](NodeConfig& c) { c.min_frame_ms = c.node_id == "n0-0-0" ? 40 : 20; });
  InferClient client(swarm.client_options("lenet5", W));
  std::vector<std::future<InferResult>> results;
  for (int i = 0; i < R; ++i) results.push_back(client.submit({{"", digit(i % 100)}}));
  for (auto& f : results) ASSERT_TRUE(f.get().ok());
  const double slow = swarm.node(0).stats().processed, fast = swarm.node(1).stats().processed;
  EXPECT_EQ(slow + fast, R);
  // Blind round-robin would give 100/100; serving by speed gives about 67/133.
  EXPECT_GT(fast / slow, 1.5) << "fast " << fast << ", slow " << slow << ", handed off by slow "
                              << swarm.node(0).stats().handed_off << ", by fast " << swarm.node(1).stats().handed_off;
}

}  // namespace
}  // namespace dnn::test
