// NodeReporter against a real Mosquitto: the retained state, discovery on connect, after Home
// Assistant's "online" and for new sensor streams (bounded), and nothing of Home Assistant when off.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/mosquitto.h"
#include "swarm/node_reporter.h"

namespace dnn {
namespace {

using Clock = std::chrono::steady_clock;

struct Seen {
  std::mutex mu;
  std::vector<std::string> topics;
  size_t count(const std::string& prefix) {
    std::lock_guard<std::mutex> lk(mu);
    size_t n = 0;
    for (const auto& t : topics) n += t.rfind(prefix, 0) == 0;
    return n;
  }
};

struct Rig {
  test::MosquittoBroker broker;
  Seen seen;
  std::unique_ptr<MqttClient> watcher, node;
  Rig() {
    MqttOptions w;
    w.broker = broker.url();
    w.client_id = "watcher";
    watcher = std::make_unique<MqttClient>(w, [this](Inbound&& in) {
      std::lock_guard<std::mutex> lk(seen.mu);
      seen.topics.push_back(in.topic);
    });
    watcher->connect();
    watcher->subscribe("#");
    MqttOptions n;
    n.broker = broker.url();
    n.client_id = "node-a";
    node = std::make_unique<MqttClient>(n, nullptr);
    node->connect();
  }
};

// Ticks `r` until `pred` holds or 20 s pass.
template <class Pred>
bool tick_until(NodeReporter& r, Pred pred) {
  const auto end = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < end) {
    r.tick();
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

NodeState fixed_state() {
  NodeState s;
  s.node_id = "node-a";
  s.processed = 10;
  return s;
}

TEST(NodeReporter, AnnouncesOnConnectOnlineAndNewSensorsBounded) {
  Rig rig;
  ReporterOptions o;
  o.max_sensors = 2;
  o.max_announce_delay = std::chrono::milliseconds(200);
  NodeReporter r(*rig.node, Topics(), o, HaNode{"node-a", "m", "stage", 0, "s0", -1}, ResultSpec{}, fixed_state);
  EXPECT_EQ(r.filters(), std::vector<std::string>{"homeassistant/status"});
  r.on_connected();
  ASSERT_TRUE(tick_until(r, [&] {
    return rig.seen.count("homeassistant/sensor/dnnswarm_node_node-a/") >= 5 && rig.seen.count("dnnswarm/node/node-a/state") >= 1;
  }));
  r.saw_sensor("m", "cam1");
  r.saw_sensor("m", "cam1");   // once
  r.saw_sensor("m", "cam2");
  r.saw_sensor("m", "cam3");   // beyond max_sensors: not remembered
  EXPECT_EQ(r.sensors_known(), 2u);
  ASSERT_TRUE(tick_until(r, [&] { return rig.seen.count("homeassistant/sensor/dnnswarm_m_cam2/") >= 2; }));
  EXPECT_EQ(rig.seen.count("homeassistant/sensor/dnnswarm_m_cam1/"), 2u);
  EXPECT_EQ(rig.seen.count("homeassistant/sensor/dnnswarm_m_cam3/"), 0u);

  // Home Assistant's status is the reporter's; "offline" changes nothing, "online" announces all.
  Inbound off{"homeassistant/status", std::make_shared<const std::string>("offline"), "", "", ""};
  EXPECT_TRUE(r.handle(off));
  Inbound other{"dnnswarm/m/s0/in", std::make_shared<const std::string>("x"), "", "", ""};
  EXPECT_FALSE(r.handle(other));
  const uint64_t before = r.announcements();
  Inbound on{"homeassistant/status", std::make_shared<const std::string>("online"), "", "", ""};
  EXPECT_TRUE(r.handle(on));
  ASSERT_TRUE(tick_until(r, [&] { return rig.seen.count("homeassistant/sensor/dnnswarm_m_cam2/") >= 4; }));
  EXPECT_EQ(r.announcements(), before + 1);
  EXPECT_GE(rig.seen.count("homeassistant/sensor/dnnswarm_node_node-a/"), 10u);
}

TEST(NodeReporter, DiscoveryOffPublishesOnlyTheState) {
  Rig rig;
  ReporterOptions o;
  o.discovery = false;
  NodeReporter r(*rig.node, Topics(), o, HaNode{"node-a", "m", "stage", 0, "s0", -1}, ResultSpec{}, fixed_state);
  EXPECT_TRUE(r.filters().empty());
  Inbound on{"homeassistant/status", std::make_shared<const std::string>("online"), "", "", ""};
  EXPECT_FALSE(r.handle(on));
  r.on_connected();
  r.saw_sensor("m", "cam1");
  ASSERT_TRUE(tick_until(r, [&] { return rig.seen.count("dnnswarm/node/node-a/state") >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(rig.seen.count("homeassistant/"), 0u);
}

TEST(NodeReporter, RefusesAWildcardPrefix) {
  Rig rig;
  ReporterOptions o;
  o.ha.discovery_prefix = "ha/#";
  EXPECT_THROW(NodeReporter(*rig.node, Topics(), o, HaNode{}, ResultSpec{}, fixed_state), Error);
}

}  // namespace
}  // namespace dnn
