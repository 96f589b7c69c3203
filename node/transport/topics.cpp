#include "transport/topics.h"

#include "core/error.h"

namespace dnn {

void check_topic_name(const std::string& name, const std::string& what) {
  if (name.empty()) throw Error(what + " must not be empty");
  if (name.find_first_of("/+#$ ") != std::string::npos)
    throw Error(what + " '" + name + "' must not contain '/', '+', '#', '$' or spaces (it is an MQTT topic level)");
}

Topics::Topics(std::string prefix) : prefix_(std::move(prefix)) {
  if (prefix_.empty() || prefix_.find_first_of("+#$ ") != std::string::npos || prefix_.front() == '/' ||
      prefix_.back() == '/')
    throw Error("topic prefix '" + prefix_ + "' must be non-empty, without wildcards, '$', spaces or outer '/'");
}

std::string Topics::stage_in(const std::string& model, int stage) const {
  return prefix_ + "/" + model + "/s" + std::to_string(stage) + "/in";
}
std::string Topics::shard_in(const std::string& model, int stage, int shard) const {
  return prefix_ + "/" + model + "/s" + std::to_string(stage) + "/shard" + std::to_string(shard) + "/in";
}
std::string Topics::share(const std::string& group_suffix, const std::string& topic) const {
  std::string group = prefix_;
  for (char& c : group)
    if (c == '/') c = '-';
  return "$share/" + group + "-" + group_suffix + "/" + topic;
}
std::string Topics::stage_share(const std::string& model, int stage) const {
  return share(model + "-s" + std::to_string(stage), stage_in(model, stage));
}
std::string Topics::shard_share(const std::string& model, int stage, int shard) const {
  return share(model + "-s" + std::to_string(stage) + "-shard" + std::to_string(shard), shard_in(model, stage, shard));
}
std::string Topics::topology(const std::string& model) const { return prefix_ + "/" + model + "/topology"; }
std::string Topics::frames(const std::string& model, const std::string& sensor) const {
  return prefix_ + "/" + model + "/frames/" + sensor;
}
std::string Topics::frames_share(const std::string& model) const { return share(model + "-frames", frames(model, "+")); }
std::string Topics::results(const std::string& model, const std::string& sensor) const {
  return prefix_ + "/" + model + "/results/" + sensor;
}

std::string Topics::node_in(const std::string& id) const { return prefix_ + "/node/" + id + "/in"; }
std::string Topics::node_work(const std::string& id) const { return prefix_ + "/node/" + id + "/work"; }
std::string Topics::node_status(const std::string& id) const { return prefix_ + "/node/" + id + "/status"; }
std::string Topics::node_state(const std::string& id) const { return prefix_ + "/node/" + id + "/state"; }
std::string Topics::client_result(const std::string& client_id) const {
  return prefix_ + "/client/" + client_id + "/result";
}

std::string Topics::hello(const std::string& id) const { return prefix_ + "/ctl/hello/" + id; }
std::string Topics::heartbeat(const std::string& id) const { return prefix_ + "/ctl/heartbeat/" + id; }
std::string Topics::assign(const std::string& id) const { return prefix_ + "/ctl/assign/" + id; }
std::string Topics::error() const { return prefix_ + "/ctl/error"; }
std::string Topics::control_all() const { return prefix_ + "/ctl/#"; }

}  // namespace dnn
