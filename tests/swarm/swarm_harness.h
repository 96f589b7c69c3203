// A swarm inside the test process: a real Mosquitto, every role of a plan as a NodeRuntime (each with
// its own MQTT client), and helpers to build small models and compare with the whole-model run.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "engine/executor.h"
#include "support/fixtures.h"
#include "support/mosquitto.h"
#include "swarm/client.h"
#include "swarm/node_runtime.h"
#include "swarm/plan.h"

namespace dnn::test {

// Values in [-1, 1) from an LCG: the same seed always gives the same tensor.
inline Tensor seeded_tensor(const Shape& shape, uint32_t seed) {
  Tensor t(shape);
  uint32_t x = seed * 2654435761u + 12345;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x = x * 1664525u + 1013904223u;
    t.f32()[i] = static_cast<float>(x >> 8) / static_cast<float>(1 << 23) - 1.f;
  }
  return t;
}

inline StageSpec stage(std::string name, size_t begin, size_t end, int replicas = 1) {
  StageSpec s;
  s.name = std::move(name);
  s.node_begin = begin;
  s.node_end = end;
  s.replicas = replicas;
  return s;
}

inline StageSpec shard_stage(std::string name, const Graph& g, size_t node, SplitAxis axis, int shards,
                             int replicas = 1) {
  StageSpec s = stage(std::move(name), node, node + 1, replicas);
  s.shard_node = g.nodes[node].name;
  s.shard_axis = axis;
  s.shards = shards;
  return s;
}

inline Plan make_plan(std::string model, std::vector<StageSpec> stages) {
  Plan p;
  p.model = std::move(model);
  p.stages = std::move(stages);
  return p;
}

// |y - ref| <= 1e-5 * max|ref|, the swarm's bar against the whole-model run.
inline ::testing::AssertionResult matches_whole_model(const Tensor& y, const Tensor& ref) {
  if (y.shape() != ref.shape())
    return ::testing::AssertionFailure() << "shape " << to_string(y.shape()) << " vs " << to_string(ref.shape());
  float max_ref = 0, max_diff = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    max_ref = std::max(max_ref, std::abs(ref.f32()[i]));
    max_diff = std::max(max_diff, std::abs(y.f32()[i] - ref.f32()[i]));
  }
  if (max_diff <= 1e-5f * max_ref) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |diff| " << max_diff << " > 1e-5 * max|ref| " << max_ref;
}

class InProcessSwarm {
 public:
  // Starts every role of `plan` (stages x shards x replicas), connecting them in parallel.
  // `tweak` may change one role's config (e.g. make one replica slower).
  InProcessSwarm(const Plan& plan, const Graph& full, NodeConfig base = {},
                 const std::function<void(NodeConfig&)>& tweak = nullptr) {
    base.broker = broker_.url();
    std::vector<NodeConfig> roles;
    for (size_t s = 0; s < plan.stages.size(); ++s)
      for (int k = 0; k < (plan.stages[s].sharded() ? plan.stages[s].shards : 1); ++k)
        for (int r = 0; r < plan.stages[s].replicas; ++r) {
          NodeConfig c = base;
          c.stage = std::to_string(s);
          c.shard = k;
          c.node_id = "n" + std::to_string(s) + "-" + std::to_string(k) + "-" + std::to_string(r);
          if (tweak) tweak(c);
          roles.push_back(c);
        }
    for (auto& c : roles) nodes_.push_back(std::make_unique<NodeRuntime>(c, plan, load_node_slice(plan, full, c)));
    // Paho takes up to ~2 s per connect when other clients already run in the process; in parallel
    // those waits overlap.
    std::vector<std::future<void>> starting;
    for (auto& n : nodes_) starting.push_back(std::async(std::launch::async, [&n] { n->start(); }));
    for (auto& f : starting) f.get();   // rethrows a failed start
  }

  ClientOptions client_options(const std::string& model, int window = 32) const {
    ClientOptions o;
    o.broker = broker_.url();
    o.model = model;
    o.window = window;
    return o;
  }
  NodeRuntime& node(size_t i) { return *nodes_.at(i); }
  size_t size() const { return nodes_.size(); }
  MosquittoBroker& broker() { return broker_; }

 private:
  MosquittoBroker broker_;
  std::vector<std::unique_ptr<NodeRuntime>> nodes_;
};

// The repository's LeNet-5 plan, pointed at the fixture model, written to `path`.
inline void write_lenet_plan(const std::string& path) {
  std::ifstream in(source("deploy/lenet5-swarm.json"));
  std::string plan((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string rel = "../models/lenet5/lenet5_mnist_b1.onnx";
  plan.replace(plan.find(rel), rel.size(), fixture("lenet5_mnist/lenet5_mnist_b1.onnx"));
  const std::string labels = "../models/lenet5/labels.txt";
  plan.replace(plan.find(labels), labels.size(), source("models/lenet5/labels.txt"));
  std::ofstream(path) << plan;
}

// A background `dnnswarm node` (args after "node"; may end with a redirection), stopped with
// SIGTERM by its pid. `env` is put before the command, e.g. "VAR=1".
class NodeProcess {
 public:
  explicit NodeProcess(const std::string& args, const std::string& env = "") {
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", (env + " exec " + std::string(DNN_BINARY) + " node " + args).c_str(), nullptr);
      _exit(127);
    }
  }
  ~NodeProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  bool running() { return waitpid(pid_, nullptr, WNOHANG) == 0; }
  void signal(int sig) { kill(pid_, sig); }
  void kill_hard() {   // kill -9, and reap
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Resident set in MB, from /proc/<pid>/status ("VmRSS:" or "VmHWM:"); -1 if the line is missing.
  double memory_mb(const std::string& key) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024;
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

// The whole model's output for `x` on one device.
inline Tensor reference_output(const Graph& g, const Tensor& x) {
  Executor ex(g);
  return ex.run({x}).at(0);
}

}  // namespace dnn::test
