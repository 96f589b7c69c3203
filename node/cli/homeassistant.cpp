// dnnswarm homeassistant: removes a decommissioned node's or sensor stream's entities from Home
// Assistant. Every discovery config of a device sits under <ha prefix>/+/<device id>/+/config
// (integrations/homeassistant.h): the command reads what the broker retains there and publishes an
// empty retained message to each, which makes Home Assistant delete the entity. For a node it also
// clears the node's retained status and state.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "integrations/homeassistant.h"
#include "transport/mqtt_client.h"

namespace dnn::cli {

int cmd_homeassistant(int argc, char** argv) {
  BrokerFlags broker;
  std::string prefix = Topics::kDefaultPrefix;
  HaSettings ha;
  std::vector<std::string> nodes, sensors;
  int wait_ms = 1000;
  po::options_description opts("options");
  opts.add_options()
      ("prefix", po::value(&prefix)->default_value(prefix), "MQTT topic prefix of the swarm")
      ("ha-prefix", po::value(&ha.discovery_prefix)->default_value(ha.discovery_prefix),
       "Home Assistant's MQTT discovery prefix")
      ("remove-node", po::value(&nodes)->composing(), "remove node ID's device (and its retained status and state); repeatable")
      ("remove-sensor", po::value(&sensors)->composing(), "remove the device of sensor stream MODEL/SENSOR; repeatable")
      ("wait-ms", po::value(&wait_ms)->default_value(wait_ms), "how long to collect the retained configs");
  add_broker_options(opts, broker);
  po::variables_map vm;
  if (!parse(argc, argv, "--remove-node ID | --remove-sensor MODEL/SENSOR [--broker URL] [options]", opts, vm)) return 0;
  if (nodes.empty() && sensors.empty()) throw Error("nothing to do: give --remove-node ID or --remove-sensor MODEL/SENSOR");
  check_ha_prefix(ha.discovery_prefix);
  const Topics topics(prefix);

  std::vector<std::string> filters;
  std::set<std::string> clear;   // retained topics to empty
  for (const auto& id : nodes) {
    check_topic_name(id, "node id");
    filters.push_back(ha_device_filter(ha, ha_node_device_id(topics, id)));
    clear.insert(topics.node_status(id));
    clear.insert(topics.node_state(id));
  }
  for (const auto& ms : sensors) {
    const auto slash = ms.find('/');
    if (slash == std::string::npos) throw Error("--remove-sensor '" + ms + "': expected MODEL/SENSOR");
    const std::string model = ms.substr(0, slash), sensor = ms.substr(slash + 1);
    check_topic_name(model, "model name");
    check_topic_name(sensor, "sensor name");
    filters.push_back(ha_device_filter(ha, ha_stream_device_id(topics, model, sensor)));
  }

  std::mutex mu;
  std::set<std::string> found;
  MqttOptions mo;
  mo.broker = resolve_broker(broker);
  mo.client_id = "dnnswarm-ha-" + std::to_string(::getpid());
  MqttClient client(mo, [&](Inbound&& in) {
    if (!in.payload || in.payload->empty()) return;
    std::lock_guard<std::mutex> lk(mu);
    if (found.size() < 100000) found.insert(in.topic);
  });
  client.connect();
  for (const auto& f : filters) client.subscribe(f);
  // The broker sends retained messages right after each SUBACK.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::max(0, wait_ms)));
  for (const auto& f : filters) client.unsubscribe(f);
  {
    std::lock_guard<std::mutex> lk(mu);
    clear.insert(found.begin(), found.end());
  }
  for (const auto& t : clear) client.publish(t, "", true);
  if (!client.flush(std::chrono::milliseconds(10000))) throw Error("the broker did not take the removals within 10 s");
  nlohmann::ordered_json out = {{"configs_removed", found.size()}, {"topics_cleared", clear.size()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace dnn::cli
