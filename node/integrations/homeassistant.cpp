#include "integrations/homeassistant.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dnn {

using nlohmann::ordered_json;

namespace {

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

uint32_t fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

ordered_json origin(const HaSettings& ha) { return {{"name", "dnnswarm"}, {"sw_version", ha.sw_version}}; }

// One entity's config: its unique_id (also the object id of its topic), the device and the origin.
struct Entity {
  std::string component;   // sensor, binary_sensor, image
  std::string key;         // unique within the device
  ordered_json config;
};

std::vector<HaMessage> to_messages(const HaSettings& ha, const std::string& device_id, const ordered_json& device,
                                   std::vector<Entity> entities) {
  std::vector<HaMessage> out;
  for (auto& e : entities) {
    const std::string uid = device_id + "_" + e.key;
    ordered_json c = std::move(e.config);
    c["unique_id"] = uid;
    c["device"] = device;
    c["origin"] = origin(ha);
    out.push_back({ha.discovery_prefix + "/" + e.component + "/" + device_id + "/" + uid + "/config", c.dump()});
  }
  return out;
}

}  // namespace

std::string ha_id(const std::string& s) {
  std::string out = s;
  bool changed = out.empty();
  for (char& c : out)
    if (!id_char(c)) c = '_', changed = true;
  if (!changed) return out;
  char hash[10];
  std::snprintf(hash, sizeof hash, "%08x", fnv1a(s));
  return out + "_" + hash;
}

std::string ha_node_device_id(const Topics& topics, const std::string& node_id) {
  return ha_id(topics.prefix()) + "_node_" + ha_id(node_id);
}

std::string ha_stream_device_id(const Topics& topics, const std::string& model, const std::string& sensor) {
  return ha_id(topics.prefix()) + "_" + ha_id(model) + "_" + ha_id(sensor);
}

std::string ha_device_filter(const HaSettings& ha, const std::string& device_id) {
  return ha.discovery_prefix + "/+/" + device_id + "/+/config";
}

std::string ha_status_topic(const HaSettings& ha) { return ha.discovery_prefix + "/status"; }

void check_ha_prefix(const std::string& prefix) {
  if (prefix.empty() || prefix.find_first_of("+#$ ") != std::string::npos || prefix.front() == '/' ||
      prefix.back() == '/')
    throw Error("Home Assistant discovery prefix '" + prefix +
                "' must be non-empty, without wildcards, '$', spaces or outer '/'");
}

std::string jinja_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

std::vector<HaMessage> ha_node_discovery(const HaSettings& ha, const Topics& topics, const HaNode& n) {
  const std::string device_id = ha_node_device_id(topics, n.id);
  const std::string state = topics.node_state(n.id);
  std::string model = n.model + " " + n.role + " " + n.stage_name;
  if (n.shard >= 0) model += " shard " + std::to_string(n.shard);
  const ordered_json device = {{"identifiers", {device_id}},
                               {"name", "dnnswarm node " + n.id},
                               {"manufacturer", "dnnswarm"},
                               {"model", model},
                               {"sw_version", ha.sw_version}};
  // Available while the node's retained status (birth, and "offline" as its will) says so.
  const ordered_json availability = ordered_json::array(
      {{{"topic", topics.node_status(n.id)}, {"payload_available", "online"}, {"payload_not_available", "offline"}}});
  const auto measure = [&](const std::string& name, const std::string& field) {
    return ordered_json{{"name", name},
                        {"state_topic", state},
                        {"value_template", "{{ value_json." + field + " }}"},
                        {"state_class", "measurement"},
                        {"availability", availability}};
  };
  ordered_json role = {{"name", "Role"},
                       {"state_topic", state},
                       {"value_template", "{{ value_json.role }}"},
                       {"json_attributes_topic", state},
                       {"json_attributes_template",
                        "{{ {'model': value_json.model, 'stage': value_json.stage, 'stage_name': value_json.stage_name, "
                        "'shard': value_json.shard} | tojson }}"},
                       {"entity_category", "diagnostic"},
                       {"icon", "mdi:graph-outline"},
                       {"availability", availability}};
  ordered_json fps = measure("Frames per second", "frames_per_s");
  fps["unit_of_measurement"] = "frames/s";
  fps["icon"] = "mdi:speedometer";
  ordered_json latency = measure("Latency", "latency_ms");
  latency["device_class"] = "duration";
  latency["unit_of_measurement"] = "ms";
  ordered_json queue = measure("Queue depth", "queue_depth");
  queue["icon"] = "mdi:tray-full";
  ordered_json memory = measure("Memory", "rss_mb");
  memory["device_class"] = "data_size";
  memory["unit_of_measurement"] = "MB";
  memory["entity_category"] = "diagnostic";
  return to_messages(ha, device_id, device,
                     {{"sensor", "role", role},
                      {"sensor", "frames_per_s", fps},
                      {"sensor", "latency", latency},
                      {"sensor", "queue_depth", queue},
                      {"sensor", "memory", memory}});
}

std::vector<HaMessage> ha_stream_discovery(const HaSettings& ha, const Topics& topics, const std::string& model,
                                           const std::string& sensor, const ResultSpec& spec) {
  const std::string device_id = ha_stream_device_id(topics, model, sensor);
  const std::string results = topics.results(model, sensor);
  const ordered_json device = {{"identifiers", {device_id}},
                               {"name", sensor},
                               {"manufacturer", "dnnswarm"},
                               {"model", model + " predictions"},
                               {"sw_version", ha.sw_version}};
  std::vector<Entity> entities;
  // The whole result JSON (score, top k, timings) becomes the prediction's attributes.
  entities.push_back({"sensor", "prediction",
                      {{"name", "Last prediction"},
                       {"state_topic", results},
                       {"value_template", "{{ value_json.label if value_json.detected else 'none' }}"},
                       {"json_attributes_topic", results},
                       {"icon", "mdi:label-outline"}}});
  entities.push_back({"sensor", "score",
                      {{"name", "Score"},
                       {"state_topic", results},
                       {"value_template", "{{ value_json.score }}"},
                       {"state_class", "measurement"},
                       {"icon", "mdi:percent-outline"}}});
  for (const auto& label : spec.detect) {
    // With an off delay the sensor turns on with a detection and off once no frame has detected the
    // label for that long (an empty template result is ignored by Home Assistant); without one,
    // every frame says on or off.
    const auto at = std::find(spec.labels.begin(), spec.labels.end(), label);
    const std::string key = "detected_" + (at != spec.labels.end() ? std::to_string(at - spec.labels.begin()) : ha_id(label));
    ordered_json c = {{"name", label + " detected"},
                      {"state_topic", results},
                      {"value_template", "{{ 'ON' if value_json.label == " + jinja_string(label) + " else '" +
                                             (spec.off_delay_s > 0 ? "" : "OFF") + "' }}"},
                      {"payload_on", "ON"},
                      {"payload_off", "OFF"}};
    if (spec.off_delay_s > 0) c["off_delay"] = spec.off_delay_s;
    entities.push_back({"binary_sensor", key, c});
  }
  if (!spec.image_content_type.empty())
    entities.push_back({"image", "frame",
                        {{"name", "Last frame"},
                         {"image_topic", topics.frames(model, sensor)},
                         {"content_type", spec.image_content_type}}});
  return to_messages(ha, device_id, device, std::move(entities));
}

}  // namespace dnn
