// Camera frames answered with labelled JSON, and Home Assistant discovery, end to end: a real
// Mosquitto, the bundled LeNet-5 plan (deploy/lenet5-swarm.json: 4 stages, a replicated stage and a
// sharded one, 6 nodes) and real MNIST digits. Frames are TensorMessages with a sensor, published to
// the first stage as a camera bridge does.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "engine/model.h"
#include "integrations/homeassistant.h"
#include "support/fixtures.h"
#include "swarm_harness.h"

namespace dnn {
namespace {

using nlohmann::json;
using test::source;
using Clock = std::chrono::steady_clock;

// An MQTT client that keeps everything it receives.
class Recorder {
 public:
  Recorder(const std::string& broker, const std::string& id, const std::vector<std::string>& filters) {
    MqttOptions o;
    o.broker = broker;
    o.client_id = id;
    client_ = std::make_unique<MqttClient>(o, [this](Inbound&& in) {
      std::lock_guard<std::mutex> lk(mu_);
      if (got_.size() < 100000) got_.push_back(std::move(in));
      cv_.notify_all();
    });
    client_->connect();
    for (const auto& f : filters) client_->subscribe(f);
  }
  // Waits (at most `timeout`) until `pred` holds for what has arrived; returns a copy of it.
  std::vector<Inbound> wait(const std::function<bool(const std::vector<Inbound>&)>& pred,
                            std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_until(lk, Clock::now() + timeout, [&] { return pred(got_); });
    return got_;
  }
  std::vector<Inbound> after(std::chrono::milliseconds quiet) {
    std::this_thread::sleep_for(quiet);
    std::lock_guard<std::mutex> lk(mu_);
    return got_;
  }
  void clear() {
    std::lock_guard<std::mutex> lk(mu_);
    got_.clear();
  }
  MqttClient& client() { return *client_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Inbound> got_;
  std::unique_ptr<MqttClient> client_;
};

size_t count_prefix(const std::vector<Inbound>& v, const std::string& prefix, bool non_empty = true) {
  size_t n = 0;
  for (const auto& in : v) n += in.topic.rfind(prefix, 0) == 0 && (!non_empty || (in.payload && !in.payload->empty()));
  return n;
}

class ResultsAndHomeAssistant : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    full_ = new Graph(load_model(source("models/lenet5/lenet5_mnist_b1.onnx")));
    plan_ = new Plan(load_plan(source("deploy/lenet5-swarm.json"), *full_));
    NodeConfig base;
    base.state_interval_ms = 500;
    swarm_ = new test::InProcessSwarm(*plan_, *full_, base);
  }
  static void TearDownTestSuite() {
    delete swarm_;
    delete plan_;
    delete full_;
  }
  static std::string url() { return swarm_->broker().url(); }

  static Graph* full_;
  static Plan* plan_;
  static test::InProcessSwarm* swarm_;
};
Graph* ResultsAndHomeAssistant::full_ = nullptr;
Plan* ResultsAndHomeAssistant::plan_ = nullptr;
test::InProcessSwarm* ResultsAndHomeAssistant::swarm_ = nullptr;

TensorMessage frame(const Tensor& digits, int64_t i, const std::string& sensor) {
  const int64_t row = 28 * 28;
  Tensor x({1, 1, 28, 28});
  std::copy(digits.f32() + i * row, digits.f32() + (i + 1) * row, x.f32());
  TensorMessage m;
  m.request_id = "cam-" + sensor + "/" + std::to_string(i);
  m.model = "lenet5";
  m.stage = 0;
  m.tensors.push_back({"", x});
  m.sensor = sensor;
  return m;
}

TEST_F(ResultsAndHomeAssistant, FramesWithASensorGetLabelledJsonMatchingTheModel) {
  const Topics topics;
  Recorder rec(url(), "results-watcher", {topics.results("lenet5", "+")});
  const Tensor digits = read_npy(source("models/lenet5/test_inputs_all.npy"));
  const Tensor labels = read_npy(source("models/lenet5/test_labels_all.npy"));
  const int n = 60;
  for (int i = 0; i < n; ++i) rec.client().publish(topics.stage_in("lenet5", 0), encode(frame(digits, i, "door")));
  const auto got = rec.wait([&](const std::vector<Inbound>& v) { return v.size() >= static_cast<size_t>(n); });
  ASSERT_EQ(got.size(), static_cast<size_t>(n));

  Executor whole(*full_);
  std::set<std::string> ids;
  int correct = 0, reference_correct = 0;
  for (const auto& in : got) {
    EXPECT_EQ(in.topic, topics.results("lenet5", "door"));
    EXPECT_EQ(in.content_type, "application/json");
    const json r = json::parse(*in.payload);
    const std::string id = r["request_id"];
    ids.insert(id);
    const int i = std::stoi(id.substr(id.find('/') + 1));
    // The model's own answer for this digit, from one process.
    const Tensor y = whole.run({frame(digits, i, "door").tensors[0].tensor})[0];
    const int64_t argmax = std::max_element(y.f32(), y.f32() + 10) - y.f32();
    EXPECT_EQ(r["sensor"], "door");
    EXPECT_EQ(r["model"], "lenet5");
    ASSERT_EQ(r["top"].size(), 3u);   // the plan's top_k
    EXPECT_EQ(r["top"][0]["label"], std::to_string(argmax)) << id;
    for (const auto& t : r["top"]) {
      const std::string l = t["label"];
      EXPECT_TRUE(l.size() == 1 && l[0] >= '0' && l[0] <= '9') << l;
    }
    const double score = r["score"];
    EXPECT_EQ(r["detected"], score >= 0.5);
    EXPECT_EQ(r["label"], score >= 0.5 ? json(std::to_string(argmax)) : json(nullptr));
    EXPECT_GT(r["latency_ms"].get<double>(), 0.0);
    ASSERT_EQ(r["stages"].size(), 5u);   // conv1, conv2, both fc1 shards, head
    correct += r["top"][0]["label"] == std::to_string(labels.i64()[i]);
    reference_correct += argmax == labels.i64()[i];
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
  EXPECT_EQ(correct, reference_correct);
  EXPECT_GE(correct, n * 9 / 10);
}

TEST_F(ResultsAndHomeAssistant, ResponseTopicGetsTheAnswerWithItsCorrelationData) {
  const Topics topics;
  const std::string reply = "clients/app-1/answers";
  Recorder rec(url(), "responder-watcher", {reply});
  const Tensor digits = read_npy(source("models/lenet5/test_inputs_all.npy"));
  std::map<std::string, std::string> sent;   // correlation data -> request id
  for (int i = 0; i < 5; ++i) {
    TensorMessage m = frame(digits, 100 + i, "porch");
    m.response_topic = reply;
    m.correlation_data = std::string("\x00\x01corr-", 7) + std::to_string(i);   // binary, as MQTT allows
    sent[m.correlation_data] = m.request_id;
    rec.client().publish(topics.stage_in("lenet5", 0), encode(m));
  }
  const auto got = rec.wait([](const std::vector<Inbound>& v) { return v.size() >= 5; });
  ASSERT_EQ(got.size(), 5u);
  for (const auto& in : got) {
    EXPECT_EQ(in.topic, reply);
    EXPECT_EQ(in.content_type, "application/json");
    ASSERT_TRUE(sent.count(in.correlation_data)) << "unknown correlation data";
    EXPECT_EQ(json::parse(*in.payload)["request_id"], sent[in.correlation_data]);
    sent.erase(in.correlation_data);
  }
  EXPECT_TRUE(sent.empty());
}

TEST_F(ResultsAndHomeAssistant, InvalidSensorOrResponseTopicIsRefusedAndTheNodeServesOn) {
  const Topics topics;
  Recorder rec(url(), "bad-watcher", {"#"});   // one filter: overlapping ones may deliver twice
  const Tensor digits = read_npy(source("models/lenet5/test_inputs_all.npy"));
  TensorMessage wild = frame(digits, 1, "a+b");   // not a topic level: no result anywhere
  rec.client().publish(topics.stage_in("lenet5", 0), encode(wild));
  TensorMessage bad_reply = frame(digits, 2, "gate");
  bad_reply.response_topic = "replies/#";
  rec.client().publish(topics.stage_in("lenet5", 0), encode(bad_reply));
  const auto got = rec.wait([&](const std::vector<Inbound>& v) {
    return count_prefix(v, topics.results("lenet5", "gate")) >= 1;
  });
  EXPECT_EQ(count_prefix(got, topics.results("lenet5", "gate")), 1u);   // answered on its results topic only
  const auto later = rec.after(std::chrono::milliseconds(500));
  EXPECT_EQ(count_prefix(later, "replies/"), 0u);
  EXPECT_EQ(count_prefix(later, "dnnswarm/lenet5/results/a+b"), 0u);
}

TEST_F(ResultsAndHomeAssistant, DiscoveryIsRetainedReannouncedAndRemovable) {
  const Topics topics;
  const HaSettings ha;
  // Two cameras send a frame each: the last stage answers and makes both streams known.
  {
    Recorder cam(url(), "cameras", {topics.results("lenet5", "+")});
    const Tensor digits = read_npy(source("models/lenet5/test_inputs_all.npy"));
    cam.client().publish(topics.stage_in("lenet5", 0), encode(frame(digits, 7, "door")));
    cam.client().publish(topics.stage_in("lenet5", 0), encode(frame(digits, 8, "porch")));
    cam.wait([](const std::vector<Inbound>& v) { return v.size() >= 2; });
  }
  // 6 nodes x 5 entities; the "door" stream: prediction, score, "0 detected", "7 detected".
  const std::string door_dev = ha_stream_device_id(topics, "lenet5", "door");
  const auto configs_complete = [&](const std::vector<Inbound>& v) {
    return count_prefix(v, "homeassistant/sensor/dnnswarm_node_") >= 30 &&
           count_prefix(v, "homeassistant/sensor/" + door_dev + "/") >= 2 &&
           count_prefix(v, "homeassistant/binary_sensor/" + door_dev + "/") >= 2;
  };
  {
    // A subscriber that arrives later gets them: they are retained.
    Recorder late(url(), "ha-late", {"homeassistant/#", topics.node_state("+")});
    const auto got = late.wait(
        [&](const std::vector<Inbound>& v) { return configs_complete(v) && count_prefix(v, "dnnswarm/node/") >= 6; },
        std::chrono::seconds(30));
    EXPECT_EQ(count_prefix(got, "homeassistant/sensor/dnnswarm_node_"), 30u);
    EXPECT_EQ(count_prefix(got, "homeassistant/binary_sensor/" + door_dev + "/"), 2u);
    EXPECT_GE(count_prefix(got, "dnnswarm/node/"), 6u);
    EXPECT_EQ(count_prefix(got, "homeassistant/image/"), 0u);   // the plan names no image type
    for (const auto& in : got) {
      if (in.topic.rfind("dnnswarm/node/", 0) == 0) {
        const json s = json::parse(*in.payload);
        EXPECT_EQ(s["model"], "lenet5");
        EXPECT_GT(s["rss_mb"].get<double>(), 1.0);
        EXPECT_TRUE(s["role"] == "stage" || s["role"] == "shard");
        continue;
      }
      const json c = json::parse(*in.payload);   // every config names topics the swarm publishes
      if (c.contains("state_topic")) {
        const std::string st = c["state_topic"];
        EXPECT_TRUE(st.rfind("dnnswarm/node/", 0) == 0 || st.rfind("dnnswarm/lenet5/results/", 0) == 0) << st;
      }
    }
  }

  // Home Assistant restarts: every node announces again, within its random delay.
  Recorder watcher(url(), "ha-watcher", {"homeassistant/+/+/+/config"});
  watcher.wait(configs_complete, std::chrono::seconds(30));   // the retained ones
  watcher.clear();
  watcher.client().publish(ha_status_topic(ha), "online");
  const auto again = watcher.wait(
      [&](const std::vector<Inbound>& v) {
        return count_prefix(v, "homeassistant/sensor/dnnswarm_node_") >= 30 &&
               count_prefix(v, "homeassistant/binary_sensor/" + door_dev + "/") >= 2;
      },
      std::chrono::seconds(30));
  EXPECT_EQ(count_prefix(again, "homeassistant/sensor/dnnswarm_node_"), 30u);
  EXPECT_GE(count_prefix(again, "homeassistant/binary_sensor/" + door_dev + "/"), 2u);

  // Decommission the first stage's node and the "door" camera: their entities go, the rest stay.
  swarm_->node(0).stop();
  ASSERT_EQ(swarm_->node(0).id(), "n0-0-0");
  std::string out;
  ASSERT_EQ(test::run_cli("homeassistant --broker " + url() + " --remove-node n0-0-0 --remove-sensor lenet5/door", &out), 0)
      << out;
  const json summary = json::parse(out.substr(out.find('{')));
  EXPECT_EQ(summary["configs_removed"], 5 + 4);
  Recorder after(url(), "ha-after", {"homeassistant/#", topics.node_status("+"), topics.node_state("+")});
  const auto left = after.wait(
      [&](const std::vector<Inbound>& v) { return count_prefix(v, "homeassistant/sensor/dnnswarm_node_") >= 25; },
      std::chrono::seconds(30));
  const auto settled = after.after(std::chrono::milliseconds(1000));
  EXPECT_EQ(count_prefix(settled, "homeassistant/sensor/dnnswarm_node_n0-0-0/"), 0u);
  EXPECT_EQ(count_prefix(settled, "homeassistant/sensor/dnnswarm_node_"), 25u);
  EXPECT_EQ(count_prefix(settled, "homeassistant/sensor/" + door_dev + "/"), 0u);
  EXPECT_EQ(count_prefix(settled, "homeassistant/binary_sensor/" + door_dev + "/"), 0u);
  EXPECT_EQ(count_prefix(settled, topics.node_status("n0-0-0")), 0u);
  EXPECT_EQ(count_prefix(settled, topics.node_state("n0-0-0")), 0u);
  EXPECT_GE(count_prefix(settled, "homeassistant/sensor/" + ha_stream_device_id(topics, "lenet5", "porch") + "/"), 2u);
  (void)left;
}

TEST(HomeAssistantCli, RefusesWithOneClearLine) {
  std::string out;
  EXPECT_EQ(test::run_cli("homeassistant --broker tcp://127.0.0.1:1", &out), 1);
  EXPECT_NE(out.find("nothing to do"), std::string::npos) << out;
  EXPECT_EQ(test::run_cli("homeassistant --remove-sensor door", &out), 1);
  EXPECT_NE(out.find("expected MODEL/SENSOR"), std::string::npos) << out;
  EXPECT_EQ(test::run_cli("homeassistant --remove-node a --ha-prefix 'x/#'", &out), 1);
  EXPECT_NE(out.find("discovery prefix"), std::string::npos) << out;
}

}  // namespace
}  // namespace dnn
