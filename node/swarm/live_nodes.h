// Which nodes of a swarm are alive, from what the broker relays: every node's heartbeat (load and
// speed) and its retained status ("offline" is its will, sent by the broker the moment its
// connection drops). A node that misses heartbeats for `stale_ms` — frozen, cut off, overloaded
// past answering — counts as gone until it is heard again.
//
// Senders use it to steer around trouble (docs/protocol.md, "Delivery"): while every replica of a
// stage is healthy, requests go to the stage's shared subscription; while one is silent (Mosquitto
// still deals it its round-robin share, which would sit unanswered), they go straight to the work
// topic of the healthy replica expected to finish soonest. Thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "transport/messages.h"
#include "transport/topics.h"

namespace dnn {

class LiveNodes {
 public:
  explicit LiveNodes(uint64_t stale_ms) : stale_ms_(stale_ms), since_ms_(steady_ms()) {}

  void heard(const Heartbeat& hb, uint64_t now_ms);
  // A retained status message: "offline" forgets the node at once, "online" marks it reachable.
  void status(const std::string& node_id, bool online, uint64_t now_ms);
  // When `topic` is a node status topic of `topics` (<p>/node/<id>/status): records it and returns
  // the node's id; else "".
  std::string status_message(const Topics& topics, const std::string& topic, const std::string& payload,
                             uint64_t now_ms);

  // False for a node gone offline or silent past stale_ms. A node never heard of counts as alive
  // (the requester may have started after it).
  bool alive(const std::string& node_id, uint64_t now_ms) const;

  // Where to send a request for (model, stage, shard) so that it reaches a live replica: "" while
  // every known replica is healthy (the shared subscription is best), else the live one expected to
  // finish a new request first (or "" when none is live). `always`: choose a live one even when all
  // are healthy (re-sends). Counts the request against the chosen node until its next heartbeat.
  std::string route(const std::string& model, int stage, int shard, uint64_t now_ms, bool always = false);

  // Live replicas of (model, stage, shard) known.
  int live_count(const std::string& model, int stage, int shard, uint64_t now_ms) const;
  // True when, after listening for stale_ms at least, no node serves (model, stage, shard): each one
  // known has gone offline (or none was ever heard). Silent ones still count: a broker restart
  // silences everybody for a few seconds, and they come back.
  bool none_serves(const std::string& model, int stage, int shard, uint64_t now_ms) const;

 private:
  struct Node {
    std::string model;
    int stage = -1, shard = 0;
    bool known_role = false;   // a heartbeat told its role
    bool offline = false;
    uint64_t heard_ms = 0;     // last heartbeat or "online"
    double depth = 0;          // waiting requests at its last heartbeat
    double sent_since = 0;     // requests routed to it since
    float ms_per_frame = 0;
  };
  bool fresh(const Node& n, uint64_t now_ms) const { return !n.offline && now_ms - n.heard_ms <= stale_ms_; }

  uint64_t stale_ms_;
  uint64_t since_ms_;   // when it started listening
  mutable std::mutex mu_;
  std::map<std::string, Node> nodes_;
};

}  // namespace dnn
