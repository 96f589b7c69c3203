// The MQTT wrapper against a real Mosquitto: round trip, birth/will, reconnect with resubscribe,
// shared-subscription split and the bounded publish window.
#include <gtest/gtest.h>

#include <map>

#include "support/mosquitto.h"
#include "transport/messages.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"

namespace dnn {
namespace {

using namespace std::chrono_literals;

// A client whose received messages land in a queue the test reads.
struct Receiver {
  BoundedQueue<Inbound> inbox{100000};
  MqttClient client;
  Receiver(const std::string& url, const std::string& id, const std::string& status = "")
      : client(MqttOptions{url, id, status}, [this](Inbound&& m) { inbox.try_push(std::move(m)); }) {
    client.connect();
  }
  std::optional<Inbound> next(std::chrono::milliseconds timeout = 5000ms) { return inbox.pop_for(timeout); }
};

std::unique_ptr<MqttClient> sender(const std::string& url, const std::string& id) {
  auto c = std::make_unique<MqttClient>(MqttOptions{url, id}, [](Inbound&&) {});
  c->connect();
  return c;
}

TEST(Mqtt, TensorMessageRoundTrip) {
  test::MosquittoBroker broker;
  Topics topics;
  Receiver rx(broker.url(), "rx");
  rx.client.subscribe(topics.stage_in("m", 0));
  auto tx = sender(broker.url(), "tx");

  TensorMessage m;
  m.request_id = "tx/1";
  m.model = "m";
  m.tensors.push_back({"x", Tensor::from_f32({2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(tx->publish(topics.stage_in("m", 0), encode(m)));
  auto got = rx.next();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "dnnswarm/m/s0/in");
  auto d = std::get<TensorMessage>(decode_message(got->payload));
  EXPECT_EQ(d.request_id, "tx/1");
  EXPECT_EQ(d.tensors[0].tensor.f32()[3], 4.0f);
}

// MQTT v5 request/response: a frame's Response Topic and Correlation Data reach the handler, and a
// publish carries Correlation Data and Content Type back.
TEST(Mqtt, ResponseTopicAndCorrelationDataRoundTrip) {
  test::MosquittoBroker broker;
  Topics topics;
  Receiver rx(broker.url(), "rx");
  rx.client.subscribe(topics.results("m", "porch"));
  auto tx = sender(broker.url(), "tx");
  const std::string corr("\x00\x01req-7", 7);
  ASSERT_TRUE(tx->publish(topics.results("m", "porch"), "{}", PublishProps{corr, "application/json"}));
  auto got = rx.next();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "dnnswarm/m/results/porch");
  EXPECT_EQ(got->correlation_data, corr);
  EXPECT_EQ(got->content_type, "application/json");
  EXPECT_TRUE(got->response_topic.empty());
}

TEST(Mqtt, BirthAndOfflineOnTheStatusTopic) {
  test::MosquittoBroker broker;
  Topics topics;
  const std::string status = topics.node_status("n1");
  {
    Receiver node(broker.url(), "n1", status);
    Receiver watcher(broker.url(), "watcher");
    watcher.client.subscribe(status);
    auto birth = watcher.next();
    ASSERT_TRUE(birth);   // retained, so it arrives although published before the subscription
    EXPECT_EQ(*birth->payload, "online");
  }
  Receiver late(broker.url(), "late");
  late.client.subscribe(status);
  auto last = late.next();
  ASSERT_TRUE(last);
  EXPECT_EQ(*last->payload, "offline");
}

TEST(Mqtt, ReconnectsAndResubscribesAfterBrokerRestart) {
  test::MosquittoBroker broker;
  Receiver rx(broker.url(), "rx");
  rx.client.subscribe("dnnswarm/t");
  auto tx = sender(broker.url(), "tx");
  ASSERT_TRUE(tx->publish("dnnswarm/t", "before"));
  ASSERT_TRUE(rx.next());

  broker.stop();
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(rx.client.connected());
  broker.start();   // same port, empty broker: subscriptions must be made again by the client

  // Publishing waits for the reconnect; the receiver must have resubscribed by itself.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  bool resumed = false;
  while (!resumed && std::chrono::steady_clock::now() < deadline) {
    tx->publish("dnnswarm/t", "after");
    auto m = rx.next(500ms);
    resumed = m && *m->payload == "after";
  }
  EXPECT_TRUE(resumed) << "traffic did not resume after the broker restart";
}

TEST(Mqtt, SharedSubscriptionSplitsMessagesBetweenMembers) {
  test::MosquittoBroker broker;
  Topics topics;
  Receiver a(broker.url(), "a"), b(broker.url(), "b");
  a.client.subscribe(topics.stage_share("m", 1));
  b.client.subscribe(topics.stage_share("m", 1));
  EXPECT_EQ(topics.stage_share("m", 1), "$share/dnnswarm-m-s1/dnnswarm/m/s1/in");
  auto tx = sender(broker.url(), "tx");
  const int n = 100;
  for (int i = 0; i < n; ++i) tx->publish(topics.stage_in("m", 1), std::to_string(i));
  std::map<std::string, int> seen;
  int got_a = 0, got_b = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got_a + got_b < n && std::chrono::steady_clock::now() < deadline) {
    if (auto m = a.next(5ms)) ++got_a, ++seen[*m->payload];
    if (auto m = b.next(5ms)) ++got_b, ++seen[*m->payload];
  }
  EXPECT_FALSE(a.next(200ms) || b.next(200ms)) << "a message arrived twice";
  EXPECT_EQ(got_a + got_b, n);
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));   // each exactly once
  EXPECT_NEAR(got_a, n / 2, 5);
  EXPECT_NEAR(got_b, n / 2, 5);
}

TEST(Mqtt, ManyPublishesFlowWithoutTheReceiveMaximumStall) {
  test::MosquittoBroker broker;
  Receiver rx(broker.url(), "rx");
  rx.client.subscribe("dnnswarm/bulk");
  auto tx = sender(broker.url(), "tx");
  const int n = 2000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) ASSERT_TRUE(tx->publish("dnnswarm/bulk", std::string(1000, 'x')));
  int got = 0;
  while (got < n && rx.next(2000ms)) ++got;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(got, n);
  // Unwindowed QoS1 publishing delivered only ~368 of 2000 in 5 s here (Paho 1.2.0's 1 s stall).
  EXPECT_LT(s, 5.0);
}

}  // namespace
}  // namespace dnn
