// A node's retained state, <p>/node/<id>/state (docs/protocol.md): what a dashboard or Home
// Assistant shows of a device. Published every few seconds by the node; its availability stays on
// the status topic (online/offline).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace dnn {

struct NodeState {
  std::string node_id, model;
  std::string role;          // "stage" or "shard"
  int stage = 0;
  std::string stage_name;
  int shard = -1;            // -1 for a stage that is not sharded
  double frames_per_s = 0;   // over the last reporting period
  double latency_ms = 0;     // moving average of compute time per frame
  int queue_depth = 0, queue_capacity = 0;
  double rss_mb = 0;         // resident memory
  uint64_t processed = 0, failed = 0, refused = 0, expired = 0;
  uint64_t uptime_s = 0;
};

nlohmann::ordered_json node_state_json(const NodeState& s);

// Frames per second between two readings of a processed-frames counter.
double frames_per_second(uint64_t processed_before, uint64_t processed_now, double seconds);

}  // namespace dnn
