// Home Assistant MQTT discovery payloads for the swarm (docs/homeassistant.md): what appears in Home
// Assistant without any YAML. Pure functions; the node publishes what they return, retained, QoS 1.
//
//   <ha prefix>/<component>/<device id>/<object id>/config      object id = the entity's unique_id
//
// Two kinds of device:
//   - a node (device id "<p>_node_<node id>"): role, frames/s, latency, queue depth, memory, read
//     from the node's retained state topic; available while its status topic says "online";
//   - a sensor stream (device id "<p>_<model>_<sensor>"): the last prediction (attributes: score,
//     top k, timings: the whole result JSON), its score, a "<label> detected" binary sensor per label
//     the plan's "detect" names, and optionally the last frame as an image entity.
// Every device id level sits under <ha prefix>/+/<device id>/+/config, so removing a device is
// clearing what that filter holds (ha_device_filter).
#pragma once
#include <string>
#include <vector>

#include "integrations/result.h"
#include "transport/topics.h"

namespace dnn {

struct HaSettings {
  std::string discovery_prefix = "homeassistant";   // as in Home Assistant's MQTT settings
  std::string sw_version = "0.1.0";
};

// One retained publish; an empty payload removes the entity.
struct HaMessage {
  std::string topic, payload;
};

// Home Assistant accepts only [a-zA-Z0-9_-] in ids: other characters become '_', and then a hash
// of the original is appended, so "cam.1" and "cam_1" stay two ids.
std::string ha_id(const std::string& s);
std::string ha_node_device_id(const Topics& topics, const std::string& node_id);
std::string ha_stream_device_id(const Topics& topics, const std::string& model, const std::string& sensor);
// "<ha prefix>/+/<device id>/+/config": every config of one device.
std::string ha_device_filter(const HaSettings& ha, const std::string& device_id);
// Where Home Assistant says "online" when it (re)starts.
std::string ha_status_topic(const HaSettings& ha);
// The discovery prefix must be a valid topic without wildcards; throws Error otherwise.
void check_ha_prefix(const std::string& prefix);

struct HaNode {
  std::string id, model;
  std::string role;   // "stage" or "shard"
  int stage = 0;
  std::string stage_name;
  int shard = -1;
};

std::vector<HaMessage> ha_node_discovery(const HaSettings& ha, const Topics& topics, const HaNode& node);
std::vector<HaMessage> ha_stream_discovery(const HaSettings& ha, const Topics& topics, const std::string& model,
                                           const std::string& sensor, const ResultSpec& spec);

// `s` as a Jinja string literal, for value templates that compare with a label.
std::string jinja_string(const std::string& s);

}  // namespace dnn
