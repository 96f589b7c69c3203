// The swarm under faults, as it runs in the field: real Mosquitto, the bundled LeNet-5 plan's six
// roles as separate `dnnswarm node` processes, and a client sending a steady load while a node is
// killed (kill -9), frozen (SIGSTOP), or the broker restarts, or while nodes' clocks are off.
// Each asserts on counts: no request lost (every one answered, or failed with an explicit error),
// and none failed while a peer survived. Timings are printed (docs/reliability.md), not asserted:
// the machine may be loaded.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>

#include "core/npy.h"
#include "support/fixtures.h"
#include "swarm_harness.h"

namespace dnn::test {
namespace {

struct Tally {
  int sent = 0, answered = 0, failed = 0, lost = 0;
  uint64_t resends = 0, duplicates = 0;
  double max_latency_ms = 0;
  int correct = 0;
  std::string first_error;
};

class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/faults-test-" + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    write_lenet_plan(dir_ + "/plan.json");
    digits_ = read_npy(fixture("lenet5_mnist/test_inputs_100.npy"));
    labels_ = read_npy(fixture("lenet5_mnist/test_labels_100.npy")).to_i64_vector();
  }
  void TearDown() override {
    nodes_.clear();
    (void)system(("rm -rf " + dir_).c_str());
  }

  // The roles of the plan: id -> (stage, shard).
  const std::map<std::string, std::pair<std::string, int>> roles_ = {
      {"a", {"conv1", 0}}, {"b1", {"conv2", 0}}, {"b2", {"conv2", 0}},
      {"c0", {"fc1", 0}},  {"c1", {"fc1", 1}},   {"d", {"head", 0}}};

  void start(const std::string& id, const std::string& flags = "", const std::string& env = "") {
    const auto& [stage, shard] = roles_.at(id);
    nodes_[id] = std::make_unique<NodeProcess>("--broker " + broker_.url() + " --plan " + dir_ + "/plan.json --stage " +
                                                   stage + " --shard " + std::to_string(shard) + " --id " + id + " " +
                                                   flags + " 2>>" + dir_ + "/" + id + ".log",
                                               env);
  }
  // Starts every role (with per-node flags/env) and waits until each one serves.
  void start_all(const std::map<std::string, std::string>& flags = {},
                 const std::map<std::string, std::string>& env = {}) {
    for (const auto& [id, role] : roles_)
      start(id, flags.count(id) ? flags.at(id) : "", env.count(id) ? env.at(id) : "");
    for (const auto& [id, role] : roles_) {
      std::string log;
      for (int i = 0; i < 300 && log.find("serving") == std::string::npos; ++i) {
        usleep(100 * 1000);
        std::ifstream in(dir_ + "/" + id + ".log");
        log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
      ASSERT_NE(log.find("serving"), std::string::npos) << id << ": " << log;
    }
    sleep(1);   // every node has heard every other's heartbeat
  }

  // Sends `count` digits at `rate` per second; fault(i) runs before request i is sent.
  Tally load(int count, double rate, const std::function<void(int)>& fault) {
    ClientOptions o;
    o.broker = broker_.url();
    o.model = "lenet5";
    o.timeout_ms = 10000;
    if (const char* a = std::getenv("FAULTS_MAX_ATTEMPTS")) o.max_attempts = std::atoi(a);   // to see them fail
    InferClient client(o);
    std::deque<std::pair<int, std::future<InferResult>>> pending;
    Tally t;
    auto collect = [&](const InferResult& r, int i) {
      t.max_latency_ms = std::max(t.max_latency_ms, r.latency_ms);
      if (r.ok()) {
        ++t.answered;
        const Tensor& y = r.outputs.at(0).tensor;
        const float* p = y.f32();
        t.correct += std::max_element(p, p + y.numel()) - p == labels_[i % labels_.size()];
      } else if (r.timed_out) {
        ++t.lost;
      } else {
        ++t.failed;
        if (t.first_error.empty()) t.first_error = r.error;
      }
    };
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
      if (fault) fault(i);
      std::this_thread::sleep_until(t0 + std::chrono::duration<double>(i / rate));
      Shape s = digits_.shape();
      s[0] = 1;
      const int64_t row = digits_.numel() / digits_.dim(0);
      Tensor x(s);
      std::memcpy(x.f32(), digits_.f32() + (i % digits_.dim(0)) * row, x.bytes());
      pending.emplace_back(i, client.submit({{"", x}}));
      ++t.sent;
      while (!pending.empty() &&
             pending.front().second.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        collect(pending.front().second.get(), pending.front().first);
        pending.pop_front();
      }
    }
    for (auto& [i, f] : pending) collect(f.get(), i);
    t.resends = client.resends();
    t.duplicates = client.duplicates();
    return t;
  }

  void report(const std::string& scenario, const Tally& t) {
    std::printf("FAULTS %s: sent %d answered %d failed %d lost %d resends %llu duplicates %llu max_latency_ms %.0f "
                "correct %d%s%s\n",
                scenario.c_str(), t.sent, t.answered, t.failed, t.lost, (unsigned long long)t.resends,
                (unsigned long long)t.duplicates, t.max_latency_ms, t.correct, t.first_error.empty() ? "" : " first error: ",
                t.first_error.c_str());
    EXPECT_EQ(t.lost, 0) << scenario << ": requests neither answered nor failed";
    EXPECT_EQ(t.answered + t.failed, t.sent);
    EXPECT_GE(t.correct, t.answered * 9 / 10) << "LeNet-5 gets about 97 % of these digits right";
  }

  std::string dir_;
  MosquittoBroker broker_;
  Tensor digits_;
  std::vector<int64_t> labels_;
  std::map<std::string, std::unique_ptr<NodeProcess>> nodes_;
};

constexpr double kRate = 50;   // requests per second: steady, well below saturation

// Replicas of unequal speed: the fast one hands requests to the slow one when busy; either dying
// must cost nothing while the other lives.
TEST_F(Faults, EitherOfTwoUnequalReplicasKilledLosesNothing) {
  start_all({{"b2", "--min-frame-ms 15"}});
  const Tally t = load(500, kRate, [&](int i) {
    if (i == 100) nodes_.at("b2")->kill_hard();   // the slow one
    if (i == 200) start("b2", "--min-frame-ms 15");
    if (i == 300) nodes_.at("b1")->kill_hard();   // the fast one
    if (i == 400) start("b1");
  });
  report("kill -9 each of two unequal conv2 replicas", t);
  EXPECT_EQ(t.failed, 0) << t.first_error;
}

// A shard has no peer: its requests fail explicitly while it is away, none hangs, and once it is
// back everything is answered again.
TEST_F(Faults, KilledShardFailsExplicitlyThenRecovers) {
  start_all();
  const Tally t = load(400, kRate, [&](int i) {
    if (i == 100) nodes_.at("c1")->kill_hard();
    if (i == 200) start("c1");
  });
  report("kill -9 a fc1 shard (no peer) for 2 s", t);
  EXPECT_GT(t.answered, 400 - 150) << "requests sent long after the shard's return were answered";
}

TEST_F(Faults, FrozenReplicaLosesNothing) {
  start_all();
  const Tally t = load(750, kRate, [&](int i) {
    if (i == 100) nodes_.at("b2")->signal(SIGSTOP);
    if (i == 600) nodes_.at("b2")->signal(SIGCONT);   // 10 s later
  });
  report("SIGSTOP a conv2 replica for 10 s", t);
  EXPECT_EQ(t.failed, 0) << t.first_error;
  EXPECT_LT(t.max_latency_ms, 10000);
}

TEST_F(Faults, BrokerRestartLosesNothing) {
  start_all();
  const Tally t = load(400, kRate, [&](int i) {
    if (i == 100) broker_.stop();
    if (i == 125) broker_.start();   // half a second later
  });
  report("broker restart", t);
}

TEST_F(Faults, NodesWithClocksAMinuteOffAnswerEverything) {
  start_all({}, {{"b1", "DNNSWARM_TEST_CLOCK_OFFSET_MS=60000"},
                 {"b2", "DNNSWARM_TEST_CLOCK_OFFSET_MS=-60000"},
                 {"d", "DNNSWARM_TEST_CLOCK_OFFSET_MS=60000"}});
  const Tally t = load(200, kRate, nullptr);
  report("clocks 60 s ahead / behind", t);
  EXPECT_EQ(t.answered, 200) << t.first_error;
}

}  // namespace
}  // namespace dnn::test
