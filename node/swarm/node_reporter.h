// What a node tells dashboards and Home Assistant (docs/homeassistant.md, docs/protocol.md):
//  - its retained state, <p>/node/<id>/state, every `state_interval`;
//  - unless discovery is off, Home Assistant discovery configs (integrations/homeassistant.h) for
//    itself and for every sensor stream it has answered: after each connect, and again a short
//    random time after Home Assistant says "online" on <ha prefix>/status (so a restarted Home
//    Assistant, and many nodes, do not all hear it at once).
// Nothing here blocks: configs wait in a small queue of their own and go out with try_publish()
// from tick(), which the node calls from its heartbeat thread.
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "integrations/homeassistant.h"
#include "integrations/node_state.h"
#include "transport/mqtt_client.h"

namespace dnn {

struct ReporterOptions {
  bool discovery = true;                      // Home Assistant discovery on
  HaSettings ha;
  std::chrono::milliseconds state_interval{5000};
  std::chrono::milliseconds max_announce_delay{3000};   // after Home Assistant's "online"
  size_t max_sensors = 64;                    // streams remembered (and announced); more are not
};

class NodeReporter {
 public:
  // `state` fills a NodeState with the node's current figures (frames/s and uptime are added here).
  NodeReporter(MqttClient& client, const Topics& topics, ReporterOptions opts, HaNode node, ResultSpec spec,
               std::function<NodeState()> state);

  // Topics the node must subscribe for this: Home Assistant's status (when discovery is on).
  std::vector<std::string> filters() const;
  // True when `in` was Home Assistant's status (then the node ignores it). MQTT thread; never blocks.
  bool handle(const Inbound& in);
  // After every connect: announce everything and publish the state now. Never blocks.
  void on_connected();
  // A stream this node answered. Any thread; never blocks.
  void saw_sensor(const std::string& model, const std::string& sensor);
  // Sends what is due. Call every few tens of ms from one thread.
  void tick();

  size_t sensors_known() const;
  uint64_t announcements() const { return announcements_; }

 private:
  void queue_all();   // mu_ held

  MqttClient& client_;
  Topics topics_;
  ReporterOptions opts_;
  HaNode node_;
  ResultSpec spec_;
  std::function<NodeState()> state_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  mutable std::mutex mu_;
  std::set<std::pair<std::string, std::string>> sensors_;
  bool sensors_full_logged_ = false;
  std::deque<HaMessage> outbox_;   // configs not yet handed to the client
  std::chrono::steady_clock::time_point announce_at_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point next_state_ = std::chrono::steady_clock::time_point::min();
  std::mt19937 rng_{std::random_device{}()};
  uint64_t last_processed_ = 0;
  std::chrono::steady_clock::time_point last_state_ = started_;
  std::atomic<uint64_t> announcements_{0};
};

}  // namespace dnn
