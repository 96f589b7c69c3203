// Home Assistant discovery payloads, checked against the keys and types Home Assistant documents for
// each component (home-assistant.io: integrations/sensor.mqtt, binary_sensor.mqtt, image.mqtt, and
// mqtt "Discovery": device, origin, availability). Home Assistant itself cannot be installed here (it
// is on PyPI only), so its documented schema is encoded below as tables: every required key present,
// every key known to its component, every value of the documented type, and every topic one the node
// really publishes.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "integrations/homeassistant.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

using nlohmann::json;

enum class T { String, Int, Number, Bool, List, Object, Topic, Template, NullOrString };

struct Key {
  T type;
  bool required = false;
};
using Schema = std::map<std::string, Key>;

// Keys every MQTT entity takes (Home Assistant's MQTT entity common schema and availability).
Schema entity_common() {
  return {{"availability", {T::List}},        {"availability_mode", {T::String}},
          {"availability_template", {T::Template}}, {"availability_topic", {T::Topic}},
          {"payload_available", {T::String}}, {"payload_not_available", {T::String}},
          {"device", {T::Object}},            {"origin", {T::Object}},
          {"enabled_by_default", {T::Bool}},  {"encoding", {T::String}},
          {"entity_category", {T::String}},   {"entity_picture", {T::String}},
          {"icon", {T::String}},              {"json_attributes_template", {T::Template}},
          {"json_attributes_topic", {T::Topic}}, {"name", {T::NullOrString}},
          {"object_id", {T::String}},         {"default_entity_id", {T::String}},
          {"unique_id", {T::String}},         {"qos", {T::Int}},
          {"platform", {T::String}}};
}

Schema with(Schema base, const Schema& more) {
  for (const auto& kv : more) base[kv.first] = kv.second;
  return base;
}

const std::map<std::string, Schema>& components() {
  static const std::map<std::string, Schema> c = {
      {"sensor", with(entity_common(), {{"state_topic", {T::Topic, true}},
                                        {"device_class", {T::String}},
                                        {"expire_after", {T::Int}},
                                        {"force_update", {T::Bool}},
                                        {"last_reset_value_template", {T::Template}},
                                        {"options", {T::List}},
                                        {"suggested_display_precision", {T::Int}},
                                        {"state_class", {T::String}},
                                        {"unit_of_measurement", {T::String}},
                                        {"value_template", {T::Template}}})},
      {"binary_sensor", with(entity_common(), {{"state_topic", {T::Topic, true}},
                                               {"device_class", {T::String}},
                                               {"expire_after", {T::Int}},
                                               {"force_update", {T::Bool}},
                                               {"off_delay", {T::Int}},
                                               {"payload_on", {T::String}},
                                               {"payload_off", {T::String}},
                                               {"value_template", {T::Template}}})},
      {"image", with(entity_common(), {{"content_type", {T::String}},
                                       {"image_encoding", {T::String}},
                                       {"image_topic", {T::Topic}},
                                       {"url_template", {T::Template}},
                                       {"url_topic", {T::Topic}}})},
  };
  return c;
}

const Schema kDevice = {{"identifiers", {T::List}},   {"connections", {T::List}},   {"configuration_url", {T::String}},
                        {"hw_version", {T::String}},  {"manufacturer", {T::String}}, {"model", {T::String}},
                        {"model_id", {T::String}},    {"name", {T::String}},         {"serial_number", {T::String}},
                        {"suggested_area", {T::String}}, {"sw_version", {T::String}}, {"via_device", {T::String}}};
const Schema kOrigin = {{"name", {T::String, true}}, {"sw_version", {T::String}}, {"support_url", {T::String}}};
const Schema kAvailability = {{"topic", {T::Topic, true}},
                              {"payload_available", {T::String}},
                              {"payload_not_available", {T::String}},
                              {"value_template", {T::Template}}};

bool has_type(const json& v, T t) {
  switch (t) {
    case T::String: return v.is_string();
    case T::Int: return v.is_number_integer();
    case T::Number: return v.is_number();
    case T::Bool: return v.is_boolean();
    case T::List: return v.is_array();
    case T::Object: return v.is_object();
    case T::Topic: {   // a topic to subscribe to: non-empty, wildcards only as whole levels
      if (!v.is_string() || v.get<std::string>().empty()) return false;
      return std::regex_match(v.get<std::string>(), std::regex(R"(^([^+#/]*|\+)(/([^+#/]*|\+))*(/#)?$)"));
    }
    case T::Template: return v.is_string() && v.get<std::string>().find("{{") != std::string::npos;
    case T::NullOrString: return v.is_null() || v.is_string();
  }
  return false;
}

// Every problem of `obj` against `schema`, as readable lines.
std::vector<std::string> check(const json& obj, const Schema& schema, const std::string& where) {
  std::vector<std::string> errors;
  if (!obj.is_object()) return {where + ": not an object"};
  for (const auto& [key, k] : schema)
    if (k.required && !obj.contains(key)) errors.push_back(where + ": lacks required key '" + key + "'");
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    auto k = schema.find(it.key());
    if (k == schema.end())
      errors.push_back(where + ": unknown key '" + it.key() + "'");
    else if (!has_type(it.value(), k->second.type))
      errors.push_back(where + ": '" + it.key() + "' has the wrong type: " + it.value().dump());
  }
  return errors;
}

// Units Home Assistant accepts for the device classes used here (sensor device classes table).
const std::map<std::string, std::set<std::string>> kUnits = {
    {"duration", {"d", "h", "min", "s", "ms", "µs"}},
    {"data_size", {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB", "KiB", "MiB",
                   "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}}};

// Checks one discovery message fully; returns its component.
std::string check_message(const HaMessage& m, const HaSettings& ha, const std::string& device_id) {
  SCOPED_TRACE(m.topic);
  const std::regex topic_re("^" + ha.discovery_prefix + "/(sensor|binary_sensor|image)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$");
  std::smatch parts;
  EXPECT_TRUE(std::regex_match(m.topic, parts, topic_re)) << "topic " << m.topic;
  if (parts.empty()) return "";
  const std::string component = parts[1];
  EXPECT_EQ(parts[2], device_id);
  const json c = json::parse(m.payload);
  std::vector<std::string> errors = check(c, components().at(component), component);
  EXPECT_EQ(c.value("unique_id", ""), parts[3].str()) << "object id must be the unique_id";
  if (c.contains("device")) {
    auto e = check(c["device"], kDevice, "device");
    errors.insert(errors.end(), e.begin(), e.end());
    EXPECT_TRUE(c["device"].contains("identifiers") || c["device"].contains("connections"));
    EXPECT_EQ(c["device"]["identifiers"], json::array({device_id}));
  } else {
    errors.push_back("no device block");
  }
  if (c.contains("origin")) {
    auto e = check(c["origin"], kOrigin, "origin");
    errors.insert(errors.end(), e.begin(), e.end());
  } else {
    errors.push_back("no origin block");
  }
  for (const auto& a : c.value("availability", json::array())) {
    auto e = check(a, kAvailability, "availability");
    errors.insert(errors.end(), e.begin(), e.end());
  }
  EXPECT_FALSE(c.contains("availability") && c.contains("availability_topic")) << "documented as exclusive";
  if (component == "image") EXPECT_EQ(c.contains("image_topic") + c.contains("url_topic"), 1) << "exactly one of them";
  if (c.contains("availability_mode"))
    EXPECT_TRUE(c["availability_mode"] == "all" || c["availability_mode"] == "any" || c["availability_mode"] == "latest");
  if (c.contains("entity_category")) EXPECT_TRUE(c["entity_category"] == "diagnostic" || c["entity_category"] == "config");
  if (c.contains("state_class"))
    EXPECT_TRUE(c["state_class"] == "measurement" || c["state_class"] == "total" || c["state_class"] == "total_increasing");
  if (component == "sensor" && c.contains("device_class")) {
    const std::string dc = c["device_class"];
    if (!kUnits.count(dc))
      ADD_FAILURE() << "device class not in the table: " << dc;
    else
      EXPECT_TRUE(kUnits.at(dc).count(c.value("unit_of_measurement", ""))) << c["unit_of_measurement"];
  }
  if (component == "binary_sensor" && c.contains("device_class")) ADD_FAILURE() << "unexpected binary_sensor device class";
  for (const auto& e : errors) ADD_FAILURE() << e;
  return component;
}

ResultSpec digits_spec() {
  return parse_result_spec(json::parse(R"({"labels": "models/lenet5/labels.txt", "detect": ["7", "1"],
                                           "off_delay_s": 15, "image": "image/png"})"),
                           test::source(""), "test");
}

TEST(HomeAssistant, NodeDeviceMatchesTheDocumentedSchemaAndTheNodesTopics) {
  HaSettings ha;
  const Topics topics("dnnswarm");
  const HaNode node{"pi-07", "lenet5", "shard", 2, "fc1", 1};
  const auto msgs = ha_node_discovery(ha, topics, node);
  ASSERT_EQ(msgs.size(), 5u);
  std::set<std::string> names, uids;
  for (const auto& m : msgs) {
    EXPECT_EQ(check_message(m, ha, "dnnswarm_node_pi-07"), "sensor");
    const json c = json::parse(m.payload);
    EXPECT_EQ(c["state_topic"], topics.node_state("pi-07"));
    ASSERT_EQ(c["availability"].size(), 1u);
    EXPECT_EQ(c["availability"][0]["topic"], topics.node_status("pi-07"));
    EXPECT_EQ(c["availability"][0]["payload_available"], "online");
    EXPECT_EQ(c["availability"][0]["payload_not_available"], "offline");
    names.insert(c["name"]);
    uids.insert(c["unique_id"]);
  }
  EXPECT_EQ(names, (std::set<std::string>{"Role", "Frames per second", "Latency", "Queue depth", "Memory"}));
  EXPECT_EQ(uids.size(), msgs.size());
}

TEST(HomeAssistant, StreamDeviceMatchesTheDocumentedSchemaAndTheResultTopics) {
  HaSettings ha;
  ha.discovery_prefix = "ha";
  const Topics topics("home/dnn");
  const auto msgs = ha_stream_discovery(ha, topics, "lenet5", "door", digits_spec());
  const std::string dev = ha_id("home/dnn") + "_lenet5_door";   // '/' in the prefix: sanitized + hash
  EXPECT_TRUE(std::regex_match(dev, std::regex("^home_dnn_[0-9a-f]{8}_lenet5_door$"))) << dev;
  std::map<std::string, json> by_name;
  for (const auto& m : msgs) {
    check_message(m, ha, dev);
    const json c = json::parse(m.payload);
    by_name[c["name"]] = c;
  }
  ASSERT_EQ(by_name.size(), 5u);
  const std::string results = topics.results("lenet5", "door");
  const json& p = by_name.at("Last prediction");
  EXPECT_EQ(p["state_topic"], results);
  EXPECT_EQ(p["json_attributes_topic"], results);
  EXPECT_EQ(by_name.at("Score")["state_topic"], results);
  const json& seven = by_name.at("7 detected");
  EXPECT_EQ(seven["state_topic"], results);
  EXPECT_EQ(seven["off_delay"], 15);
  EXPECT_EQ(seven["value_template"], "{{ 'ON' if value_json.label == '7' else '' }}");
  EXPECT_EQ(seven["unique_id"], dev + "_detected_7");
  EXPECT_TRUE(by_name.count("1 detected"));
  const json& frame = by_name.at("Last frame");
  EXPECT_EQ(frame["image_topic"], topics.frames("lenet5", "door"));
  EXPECT_EQ(frame["content_type"], "image/png");
}

TEST(HomeAssistant, WithoutOffDelayEveryFrameSaysOnOrOffAndNoImageUnlessAsked) {
  ResultSpec s = digits_spec();
  s.off_delay_s = 0;
  s.image_content_type.clear();
  const auto msgs = ha_stream_discovery(HaSettings{}, Topics(), "lenet5", "door", s);
  EXPECT_EQ(msgs.size(), 4u);
  for (const auto& m : msgs) {
    const json c = json::parse(m.payload);
    if (m.topic.find("/binary_sensor/") == std::string::npos) continue;
    EXPECT_FALSE(c.contains("off_delay"));
    EXPECT_NE(c["value_template"].get<std::string>().find("else 'OFF'"), std::string::npos);
  }
}

TEST(HomeAssistant, IdsAreSanitizedAndStayDistinct) {
  EXPECT_EQ(ha_id("cam_1-a"), "cam_1-a");
  const std::string dotted = ha_id("cam.1");
  EXPECT_TRUE(std::regex_match(dotted, std::regex("^cam_1_[0-9a-f]{8}$"))) << dotted;
  EXPECT_NE(dotted, ha_id("cam_1"));
  EXPECT_NE(ha_id("cam.1"), ha_id("cam:1"));
  EXPECT_TRUE(std::regex_match(ha_id("Küche"), std::regex("^[a-zA-Z0-9_-]+$")));
  // Labels with quotes (ImageNet's "jack-o'-lantern") stay valid Jinja string literals.
  EXPECT_EQ(jinja_string("jack-o'-lantern"), "'jack-o\\'-lantern'");
  EXPECT_EQ(jinja_string("a\\b"), "'a\\\\b'");
}

TEST(HomeAssistant, DeviceFilterCoversEveryConfigOfTheDevice) {
  HaSettings ha;
  const Topics topics;
  const std::string dev = ha_stream_device_id(topics, "lenet5", "door");
  EXPECT_EQ(ha_device_filter(ha, dev), "homeassistant/+/" + dev + "/+/config");
  for (const auto& m : ha_stream_discovery(ha, topics, "lenet5", "door", digits_spec()))
    EXPECT_TRUE(std::regex_match(m.topic, std::regex("^homeassistant/[^/]+/" + dev + "/[^/]+/config$"))) << m.topic;
  EXPECT_EQ(ha_status_topic(ha), "homeassistant/status");
  EXPECT_THROW(check_ha_prefix("home/#"), Error);
  EXPECT_THROW(check_ha_prefix(""), Error);
  EXPECT_NO_THROW(check_ha_prefix("my/ha"));
}

}  // namespace
}  // namespace dnn
