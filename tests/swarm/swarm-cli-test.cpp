// `dnnswarm node` and `dnnswarm infer` as separate processes against a real Mosquitto: the bundled
// LeNet-5 plan end to end, node refusals with their messages, and a swarm surviving a broker restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "core/npy.h"
#include "format/dnns.h"
#include "support/fixtures.h"
#include "swarm_harness.h"

namespace dnn::test {
namespace {

class SwarmCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/swarm-cli-test-" + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    write_lenet_plan(path("plan.json"));
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  void serve_digits_like_the_whole_model(const std::string& plan);
  std::string node_args(const std::string& stage, const std::string& id, int shard = 0, std::string plan = "") const {
    if (plan.empty()) plan = path("plan.json");
    return "--broker " + broker_.url() + " --plan " + plan + " --stage " + stage + " --shard " +
           std::to_string(shard) + " --id " + id + " 2>>" + path(id + ".log");
  }

  std::string dir_;
  MosquittoBroker broker_;
};

// Runs the six roles of the LeNet plan as processes, sends 100 digits through `dnnswarm infer` and
// compares with `dnnswarm run`.
void SwarmCli::serve_digits_like_the_whole_model(const std::string& plan) {
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  nodes.push_back(std::make_unique<NodeProcess>(node_args("conv1", "a", 0, plan)));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("conv2", "b1", 0, plan)));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("conv2", "b2", 0, plan)));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("fc1", "c0", 0, plan)));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("fc1", "c1", 1, plan)));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("head", "d", 0, plan)));
  sleep(3);   // all six load their slice and subscribe
  for (auto& n : nodes) ASSERT_TRUE(n->running());

  const std::string digits = fixture("lenet5_mnist/test_inputs_100.npy");
  std::string out;
  ASSERT_EQ(run_cli("infer --broker " + broker_.url() + " --model lenet5 --input " + digits + " --output " +
                        path("y.npy") + " --labels " + fixture("lenet5_mnist/test_labels_100.npy"),
                    &out),
            0)
      << out;
  EXPECT_NE(out.find("\"lost\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"ms_p50\""), std::string::npos) << out;
  ASSERT_EQ(run_cli("run --model " + fixture("lenet5_mnist/lenet5_mnist_b1.onnx") + " --input " + digits +
                        " --batch 1 --output " + path("ref.npy"),
                    &out),
            0)
      << out;
  EXPECT_TRUE(matches_whole_model(read_npy(path("y.npy")), read_npy(path("ref.npy"))));
}

TEST_F(SwarmCli, LeNetPlanServesTheDigitsLikeTheWholeModel) { serve_digits_like_the_whole_model(path("plan.json")); }

TEST_F(SwarmCli, NodesServeTheSameFromADnnsModel) {
  std::string out;
  ASSERT_EQ(run_cli("convert --model " + fixture("lenet5_mnist/lenet5_mnist_b1.onnx") + " --output " +
                        path("lenet5.dnns"),
                    &out),
            0)
      << out;
  std::ifstream in(path("plan.json"));
  std::string plan((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string onnx = fixture("lenet5_mnist/lenet5_mnist_b1.onnx");
  plan.replace(plan.find(onnx), onnx.size(), path("lenet5.dnns"));
  std::ofstream(path("dnns.json")) << plan;
  serve_digits_like_the_whole_model(path("dnns.json"));
}

// A shard that never came: every request fails with an explicit error (no timeout), none is scored
// (a failed row is not class 0), and infer exits 3.
TEST_F(SwarmCli, InferScoresOnlyAnsweredRowsAndExitsNonZeroOnFailures) {
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  nodes.push_back(std::make_unique<NodeProcess>(node_args("conv1", "a")));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("conv2", "b1")));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("fc1", "c0", 0)));
  nodes.push_back(std::make_unique<NodeProcess>(node_args("head", "d")));
  sleep(3);
  std::string out;
  EXPECT_EQ(run_cli("infer --broker " + broker_.url() + " --model lenet5 --count 20 --timeout-ms 8000 --input " +
                        fixture("lenet5_mnist/test_inputs_100.npy") + " --labels " +
                        fixture("lenet5_mnist/test_labels_100.npy"),
                    &out),
            3)
      << out;
  EXPECT_NE(out.find("\"ok\":0,\"errors\":20,\"timed_out\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"scored\":0,\"correct\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("no node serves stage 2"), std::string::npos) << out;
}

TEST_F(SwarmCli, NodeRefusesWithAClearError) {
  std::string out;
  EXPECT_NE(run_cli("node --broker " + broker_.url() + " --plan " + path("plan.json") +
                        " --stage conv1 --id x --model vgg16",
                    &out),
            0);
  EXPECT_NE(out.find("unknown model 'vgg16'"), std::string::npos) << out;

  // A plan that stops before the end of the model.
  std::ifstream in(path("plan.json"));
  std::string plan((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto head = plan.find(",\n    {\"name\": \"head\"");
  ASSERT_NE(head, std::string::npos) << plan;
  plan.erase(head, plan.find('}', head) + 1 - head);
  std::ofstream(path("short.json")) << plan;
  EXPECT_NE(run_cli("node --broker " + broker_.url() + " --plan " + path("short.json") + " --stage conv1 --id x", &out),
            0);
  EXPECT_NE(out.find("does not cover the whole model"), std::string::npos) << out;

  EXPECT_NE(run_cli("node --broker " + broker_.url() + " --plan " + path("plan.json") +
                        " --stage fc1 --id x --memory-limit 32",
                    &out),
            0);
  EXPECT_NE(out.find("does not fit the memory limit"), std::string::npos) << out;
}

// What a node keeps after serving frames of a model with a 32 MB activation and 4 MB frames in and
// out. With a memory limit: neither freed activations nor message buffers (measured: 8 MB of one-time
// scratch). --buffer-cache-mb keeps the activations for the next frame (measured 40 MB); without a
// memory limit glibc's heap also keeps copies of the messages (measured 20 MB more).
TEST_F(SwarmCli, MemoryLimitedNodeReturnsFreedActivationsAndMessages) {
  Graph g;
  g.name = "wide";
  g.inputs = {{"x", {1, 1, 1024, 1024}}};
  g.outputs = {{"y", {1, 1, 1024, 1024}}};
  auto conv = [](const std::string& name, const std::string& in, const std::string& out) {
    Node n;
    n.name = name;
    n.op = "Conv";
    n.inputs = {in, name + ".W"};
    n.outputs = {out};
    n.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
    n.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    return n;
  };
  g.nodes = {conv("widen", "x", "h"), conv("narrow", "h", "y")};   // h: 8 x 1024 x 1024 floats
  g.constants["widen.W"] = seeded_tensor({8, 1, 3, 3}, 1);
  g.constants["narrow.W"] = seeded_tensor({1, 8, 3, 3}, 2);
  write_dnns(g, path("wide.dnns"));
  std::ofstream(path("wide.json")) << R"({"model": "wide", "model_path": "wide.dnns", "stages": [{"name": "all", "from": "widen", "to": "narrow"}]})";
  write_npy(path("x.npy"), seeded_tensor({4, 1, 1024, 1024}, 3));

  // MB the node holds after 4 frames more than before them.
  auto retained_mb = [&](const std::string& id, const std::string& flags) {
    NodeProcess node(node_args("all", id, 0, path("wide.json")) + " " + flags);
    std::string log;
    for (int i = 0; i < 100 && log.find("serving") == std::string::npos; ++i) {
      usleep(100 * 1000);
      std::ifstream in(path(id + ".log"));
      log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    EXPECT_NE(log.find("serving"), std::string::npos) << log;
    const double before = node.memory_mb("VmRSS:");
    std::string out;
    EXPECT_EQ(run_cli("infer --broker " + broker_.url() + " --model wide --input " + path("x.npy") + " --window 1", &out), 0)
        << out;
    EXPECT_NE(out.find("\"lost\":0"), std::string::npos) << out;
    return node.memory_mb("VmRSS:") - before;
  };
  const double limited = retained_mb("limited", "--memory-limit 256");
  const double cached = retained_mb("cached", "--memory-limit 256 --buffer-cache-mb 64");
  const double unlimited = retained_mb("unlimited", "");
  EXPECT_LT(limited, 16) << "MB kept by the memory-limited node";
  EXPECT_GT(cached - limited, 32) << "MB more kept with --buffer-cache-mb 64: at least the 32 MB activation";
  EXPECT_GT(unlimited - cached, 8) << "MB more kept without a memory limit: copies of 4 MB messages";
}

TEST(NodeBufferCache, NoneWithAMemoryLimitUnlessAsked) {
  NodeConfig cfg;
  StageSpec stage;
  EXPECT_EQ(node_buffer_cache_bytes(cfg, stage), ExecOptions{}.buffer_cache_bytes);
  stage.memory_limit_mb = 512;   // the plan's device
  EXPECT_EQ(node_buffer_cache_bytes(cfg, stage), 0u);
  cfg.buffer_cache_mb = 8;
  EXPECT_EQ(node_buffer_cache_bytes(cfg, stage), size_t(8) << 20);
  cfg = {};
  cfg.memory_limit_mb = 256;   // --memory-limit
  EXPECT_EQ(node_buffer_cache_bytes(cfg, StageSpec{}), 0u);
}

TEST(SwarmReconnect, NodesResubscribeAndServeAfterABrokerRestart) {
  Graph g;
  g.name = "fc";
  g.inputs = {{"x", {-1, 8}}};
  g.outputs = {{"y", {-1, 4}}};
  Node fc;
  fc.name = "fc";
  fc.op = "Gemm";
  fc.inputs = {"x", "fc.W"};
  fc.outputs = {"h"};
  fc.attrs.set("transB", int64_t{1});
  Node relu;
  relu.name = "relu";
  relu.op = "Relu";
  relu.inputs = {"h"};
  relu.outputs = {"y"};
  g.nodes = {fc, relu};
  g.constants["fc.W"] = seeded_tensor({4, 8}, 1);
  InProcessSwarm swarm(make_plan("fc", {stage("a", 0, 1), stage("b", 1, 2, 2)}), g);

  swarm.broker().stop();
  swarm.broker().start();   // an empty broker: no subscriptions, no retained topology
  // Each node says hello again once it has resubscribed (within its 1-4 s retry interval).
  BoundedQueue<Inbound> hellos(100);
  MqttOptions watcher_opt;
  watcher_opt.broker = swarm.broker().url();
  watcher_opt.client_id = "watcher";
  MqttClient watcher(watcher_opt, [&](Inbound&& m) { hellos.try_push(std::move(m)); });
  watcher.connect();
  watcher.subscribe(Topics().hello("+"));
  std::set<std::string> back;
  while (back.size() < swarm.size()) {
    auto m = hellos.pop_for(std::chrono::seconds(15));
    ASSERT_TRUE(m) << back.size() << " of " << swarm.size() << " nodes came back";
    back.insert(m->topic);
  }
  InferClient client(swarm.client_options("fc"));
  for (int i = 0; i < 10; ++i) {
    Tensor x = seeded_tensor({1, 8}, 10 + i);
    InferResult r = client.submit({{"x", x}}).get();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(matches_whole_model(r.outputs[0].tensor, reference_output(g, x)));
  }
}

}  // namespace
}  // namespace dnn::test
