#include "integrations/node_state.h"

#include <cmath>

namespace dnn {

nlohmann::ordered_json node_state_json(const NodeState& s) {
  const auto r = [](double x, double unit) { return std::round(x / unit) * unit; };
  nlohmann::ordered_json j;
  j["node"] = s.node_id;
  j["model"] = s.model;
  j["role"] = s.role;
  j["stage"] = s.stage;
  j["stage_name"] = s.stage_name;
  j["shard"] = s.shard;
  j["frames_per_s"] = r(s.frames_per_s, 0.01);
  j["latency_ms"] = r(s.latency_ms, 0.001);
  j["queue_depth"] = s.queue_depth;
  j["queue_capacity"] = s.queue_capacity;
  j["rss_mb"] = r(s.rss_mb, 0.1);
  j["processed"] = s.processed;
  j["failed"] = s.failed;
  j["refused"] = s.refused;
  j["expired"] = s.expired;
  j["uptime_s"] = s.uptime_s;
  return j;
}

double frames_per_second(uint64_t before, uint64_t now, double seconds) {
  if (seconds <= 0 || now < before) return 0;
  return static_cast<double>(now - before) / seconds;
}

}  // namespace dnn
