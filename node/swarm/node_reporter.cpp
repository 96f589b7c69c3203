#include "swarm/node_reporter.h"

namespace dnn {

NodeReporter::NodeReporter(MqttClient& client, const Topics& topics, ReporterOptions opts, HaNode node,
                           ResultSpec spec, std::function<NodeState()> state)
    : client_(client),
      topics_(topics),
      opts_(std::move(opts)),
      node_(std::move(node)),
      spec_(std::move(spec)),
      state_(std::move(state)) {
  if (opts_.discovery) check_ha_prefix(opts_.ha.discovery_prefix);
}

std::vector<std::string> NodeReporter::filters() const {
  if (!opts_.discovery) return {};
  return {ha_status_topic(opts_.ha)};
}

bool NodeReporter::handle(const Inbound& in) {
  if (!opts_.discovery || in.topic != ha_status_topic(opts_.ha)) return false;
  if (in.payload && *in.payload == "online") {
    std::lock_guard<std::mutex> lk(mu_);
    std::uniform_int_distribution<int64_t> delay(0, std::max<int64_t>(0, opts_.max_announce_delay.count()));
    const auto at = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay(rng_));
    announce_at_ = std::min(announce_at_, at);
  }
  return true;
}

void NodeReporter::on_connected() {
  std::lock_guard<std::mutex> lk(mu_);
  announce_at_ = std::chrono::steady_clock::now();
  next_state_ = std::chrono::steady_clock::time_point::min();
}

void NodeReporter::saw_sensor(const std::string& model, const std::string& sensor) {
  if (!opts_.discovery) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (sensors_.count({model, sensor})) return;
  if (sensors_.size() >= opts_.max_sensors) {
    if (!sensors_full_logged_)
      log_line(node_.id, "answers more than " + std::to_string(opts_.max_sensors) +
                             " sensor streams: later ones get no Home Assistant entities from this node");
    sensors_full_logged_ = true;
    return;
  }
  sensors_.insert({model, sensor});
  for (auto& m : ha_stream_discovery(opts_.ha, topics_, model, sensor, spec_)) outbox_.push_back(std::move(m));
}

void NodeReporter::queue_all() {
  outbox_.clear();   // a full announcement supersedes what was still waiting
  for (auto& m : ha_node_discovery(opts_.ha, topics_, node_)) outbox_.push_back(std::move(m));
  for (const auto& [model, sensor] : sensors_)
    for (auto& m : ha_stream_discovery(opts_.ha, topics_, model, sensor, spec_)) outbox_.push_back(std::move(m));
  ++announcements_;
}

void NodeReporter::tick() {
  if (!client_.connected()) return;
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(mu_);
  if (opts_.discovery && now >= announce_at_) {
    announce_at_ = std::chrono::steady_clock::time_point::max();
    queue_all();
  }
  while (!outbox_.empty() && client_.try_publish(outbox_.front().topic, outbox_.front().payload, true))
    outbox_.pop_front();
  if (now < next_state_) return;
  next_state_ = now + opts_.state_interval;
  const double seconds = std::chrono::duration<double>(now - last_state_).count();
  lk.unlock();
  NodeState s = state_();
  s.frames_per_s = frames_per_second(last_processed_, s.processed, seconds);
  s.uptime_s = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(now - started_).count());
  last_processed_ = s.processed;
  last_state_ = now;
  client_.try_publish(topics_.node_state(node_.id), node_state_json(s).dump(), true);
}

size_t NodeReporter::sensors_known() const {
  std::lock_guard<std::mutex> lk(mu_);
  return sensors_.size();
}

}  // namespace dnn
