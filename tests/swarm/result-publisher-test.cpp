// ResultPublisher against a real Mosquitto: the JSON on the results topic, the response topic with
// its correlation data, an output that cannot be labelled answered with an error, bad names refused.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/mosquitto.h"
#include "swarm/result_publisher.h"

namespace dnn {
namespace {

using nlohmann::json;

TEST(ResultPublisher, NamesAreChecked) {
  EXPECT_TRUE(valid_sensor_name("door_1.front"));
  EXPECT_FALSE(valid_sensor_name(""));
  EXPECT_FALSE(valid_sensor_name("a/b"));
  EXPECT_FALSE(valid_sensor_name("+"));
  EXPECT_FALSE(valid_sensor_name(std::string(129, 'x')));
  EXPECT_TRUE(valid_response_topic("app/replies/1"));
  EXPECT_FALSE(valid_response_topic("app/#"));
  EXPECT_FALSE(valid_response_topic(""));
}

TEST(ResultPublisher, PublishesJsonErrorsAndAnswersTheResponseTopic) {
  test::MosquittoBroker broker;
  std::mutex mu;
  std::vector<Inbound> got;
  MqttOptions w;
  w.broker = broker.url();
  w.client_id = "watcher";
  MqttClient watcher(w, [&](Inbound&& in) {
    std::lock_guard<std::mutex> lk(mu);
    got.push_back(std::move(in));
  });
  watcher.connect();
  watcher.subscribe("#");
  MqttOptions n = w;
  n.client_id = "node";
  MqttClient node(n, nullptr);
  node.connect();
  std::vector<std::string> sensors_seen;
  ResultSpec spec;
  spec.top_k = 2;
  ResultPublisher pub(node, Topics(), "node", spec,
                      [&](const std::string& m, const std::string& s) { sensors_seen.push_back(m + "/" + s); });

  TensorMessage m;
  m.request_id = "c/1";
  m.model = "m";
  Tensor y({1, 3});
  y.f32()[0] = 0, y.f32()[1] = 2, y.f32()[2] = 1;
  m.tensors.push_back({"out", y});
  pub.publish(m);   // no sensor: nothing
  m.sensor = "cam";
  m.response_topic = "app/replies";
  m.correlation_data = "corr-1";
  pub.publish(m);
  TensorMessage two = m;   // two outputs cannot be one label
  two.request_id = "c/2";
  two.tensors.push_back({"aux", y});
  two.response_topic.clear();
  pub.publish(two);
  ASSERT_TRUE(node.flush(std::chrono::milliseconds(5000)));
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::vector<Inbound> seen;
  while (std::chrono::steady_clock::now() < end) {
    {
      std::lock_guard<std::mutex> lk(mu);
      seen = got;
    }
    if (seen.size() >= 4) break;   // result x2, error JSON, ctl/error
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<json> on_results;
  int replies = 0, ctl_errors = 0;
  for (const auto& in : seen) {
    if (in.topic == "dnnswarm/m/results/cam") on_results.push_back(json::parse(*in.payload));
    if (in.topic == "app/replies") {
      ++replies;
      EXPECT_EQ(in.correlation_data, "corr-1");
      EXPECT_EQ(in.content_type, "application/json");
      EXPECT_EQ(json::parse(*in.payload)["request_id"], "c/1");
    }
    ctl_errors += in.topic == "dnnswarm/ctl/error";
  }
  ASSERT_EQ(on_results.size(), 2u);
  EXPECT_EQ(on_results[0]["label"], "1");
  EXPECT_EQ(on_results[0]["top"].size(), 2u);
  EXPECT_EQ(on_results[1]["request_id"], "c/2");
  EXPECT_NE(on_results[1]["error"].get<std::string>().find("2 outputs"), std::string::npos);
  EXPECT_EQ(replies, 1);
  EXPECT_EQ(ctl_errors, 1);
  EXPECT_EQ(pub.published(), 1u);
  EXPECT_EQ(pub.failed(), 1u);
  EXPECT_EQ(sensors_seen, (std::vector<std::string>{"m/cam", "m/cam"}));
}

}  // namespace
}  // namespace dnn
