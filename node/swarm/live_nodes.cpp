#include "swarm/live_nodes.h"

#include <algorithm>

namespace dnn {

void LiveNodes::heard(const Heartbeat& hb, uint64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  Node& n = nodes_[hb.info.node_id];
  n.model = hb.info.model;
  n.stage = hb.info.stage;
  n.shard = hb.info.shard_index;
  n.known_role = true;
  n.offline = false;
  n.heard_ms = now_ms;
  n.depth = hb.queue_depth;
  n.sent_since = 0;
  n.ms_per_frame = hb.info.caps.ms_per_frame;
}

void LiveNodes::status(const std::string& node_id, bool online, uint64_t now_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!online) {
    nodes_.erase(node_id);   // gone: its subscriptions are gone with it
    return;
  }
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return;   // a retained "online" says nothing about now; heartbeats will
  it->second.offline = false;
  it->second.heard_ms = std::max(it->second.heard_ms, now_ms);
}

std::string LiveNodes::status_message(const Topics& topics, const std::string& topic, const std::string& payload,
                                      uint64_t now_ms) {
  const std::string sample = topics.node_status("+");   // <p>/node/+/status
  const size_t plus = sample.find('+');
  const std::string head = sample.substr(0, plus), tail = sample.substr(plus + 1);
  if (topic.size() <= head.size() + tail.size() || topic.compare(0, head.size(), head) != 0 ||
      topic.compare(topic.size() - tail.size(), tail.size(), tail) != 0)
    return "";
  const std::string id = topic.substr(head.size(), topic.size() - head.size() - tail.size());
  if (id.find('/') != std::string::npos) return "";
  status(id, payload != "offline", now_ms);
  return id;
}

bool LiveNodes::alive(const std::string& node_id, uint64_t now_ms) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = nodes_.find(node_id);
  return it == nodes_.end() ? !node_id.empty() : fresh(it->second, now_ms);
}

std::string LiveNodes::route(const std::string& model, int stage, int shard, uint64_t now_ms, bool always) {
  std::lock_guard<std::mutex> lk(mu_);
  bool trouble = always;
  Node* best = nullptr;
  double best_delay = 0;
  for (auto& [id, n] : nodes_) {
    if (!n.known_role || n.model != model || n.stage != stage || n.shard != shard) continue;
    if (!fresh(n, now_ms)) {
      trouble = true;
      continue;
    }
    // Since its heartbeat the node has worked its queue down at its own speed.
    const double ms = n.ms_per_frame > 0 ? n.ms_per_frame : 1.0;
    const double depth = std::max(0.0, n.depth - static_cast<double>(now_ms - n.heard_ms) / ms) + n.sent_since;
    const double delay = (depth + 1) * ms;
    if (!best || delay < best_delay) best = &n, best_delay = delay;
  }
  if (!trouble || !best) return "";
  best->sent_since += 1;
  for (auto& [id, n] : nodes_)
    if (&n == best) return id;
  return "";
}

bool LiveNodes::none_serves(const std::string& model, int stage, int shard, uint64_t now_ms) const {
  if (now_ms <= since_ms_ + stale_ms_) return false;
  std::lock_guard<std::mutex> lk(mu_);
  return std::none_of(nodes_.begin(), nodes_.end(), [&](const auto& e) {
    const Node& n = e.second;
    return n.known_role && n.model == model && n.stage == stage && n.shard == shard;
  });
}

int LiveNodes::live_count(const std::string& model, int stage, int shard, uint64_t now_ms) const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int>(std::count_if(nodes_.begin(), nodes_.end(), [&](const auto& e) {
    const Node& n = e.second;
    return n.known_role && n.model == model && n.stage == stage && n.shard == shard && fresh(n, now_ms);
  }));
}

}  // namespace dnn
