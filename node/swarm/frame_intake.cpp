#include "swarm/frame_intake.h"

#include <cstring>

#include <nlohmann/json.hpp>

namespace dnn {

FrameMapping parse_frame_mapping(const std::string& text) {
  const size_t eq = text.rfind('=');
  const std::string what = "frame topic mapping '" + text + "'";
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw Error(what + ": expected TOPIC-FILTER=SENSOR, e.g. frigate/porch/person/snapshot=porch");
  FrameMapping m{text.substr(0, eq), text.substr(eq + 1)};
  if (m.filter.rfind("$", 0) == 0) throw Error(what + ": the filter may not start with '$' (it is shared already)");
  if (m.sensor == "+") {
    if (m.filter.find('+') == std::string::npos)
      throw Error(what + ": sensor '+' takes the level of the filter's first '+', but the filter has none");
  } else {
    check_topic_name(m.sensor, what + ": sensor name");
  }
  return m;
}

bool topic_matches(const std::string& filter, const std::string& topic) {
  size_t f = 0, t = 0;
  while (true) {
    const size_t fe = filter.find('/', f), te = topic.find('/', t);
    const std::string level = filter.substr(f, fe - f);
    if (level == "#") return true;
    if (level != "+" && level != topic.substr(t, te - t)) return false;
    if (fe == std::string::npos || te == std::string::npos) return fe == te;
    f = fe + 1, t = te + 1;
  }
}

namespace {

// The topic level the filter's first '+' matched.
std::string plus_level(const std::string& filter, const std::string& topic) {
  size_t f = 0, t = 0;
  while (f <= filter.size() && t <= topic.size()) {
    const size_t fe = filter.find('/', f), te = topic.find('/', t);
    if (filter.compare(f, fe - f, "+") == 0) return topic.substr(t, te == std::string::npos ? std::string::npos : te - t);
    if (fe == std::string::npos || te == std::string::npos) break;
    f = fe + 1, t = te + 1;
  }
  return "";
}

bool is_tensor_message(const std::string& p) { return p.size() >= 8 && std::memcmp(p.data() + 4, "DNSW", 4) == 0; }

}  // namespace

FrameIntake::FrameIntake(FrameOptions opts, const Topics& topics, const Plan& plan, std::string node_id, ValueInfo input)
    : opts_(std::move(opts)), topics_(topics), model_(plan.model), node_id_(std::move(node_id)), input_(std::move(input)) {
  for (const auto& t : opts_.topics) mappings_.push_back(parse_frame_mapping(t));
  try {
    preprocess_ = resolve_preprocess(plan.input, input_.shape);
  } catch (const Error& e) {
    if (!plan.input.empty()) throw Error("plan for '" + model_ + "': " + e.what());
    no_image_reason_ = e.what();   // tensor frames still work
  }
}

void FrameIntake::start(MqttClient& client) {
  client_ = &client;
  std::string mapped;
  for (const auto& m : mappings_) mapped += ", " + m.filter + " as " + (m.sensor == "+" ? "its '+' level" : m.sensor);
  log_line(node_id_, "frames on " + topics_.frames(model_, "+") + mapped + "; images: " +
                         (preprocess_ ? preprocess_->describe() : "refused (" + no_image_reason_ + ")"));
}

std::vector<std::string> FrameIntake::filters() const {
  std::vector<std::string> f = {topics_.frames_share(model_)};
  std::string group = topics_.prefix();
  for (char& c : group)
    if (c == '/') c = '-';
  for (const auto& m : mappings_) f.push_back("$share/" + group + "-" + model_ + "-frames/" + m.filter);
  return f;
}

std::string FrameIntake::sensor_of(const std::string& topic) const {
  const std::string own = topics_.frames(model_, "");
  if (topic.size() > own.size() && topic.compare(0, own.size(), own) == 0 && topic.find('/', own.size()) == std::string::npos)
    return topic.substr(own.size());
  for (const auto& m : mappings_)
    if (topic_matches(m.filter, topic)) {
      const std::string sensor = m.sensor == "+" ? plus_level(m.filter, topic) : m.sensor;
      return sensor.empty() ? "unnamed" : sensor;
    }
  return "";
}

std::shared_ptr<Frame> FrameIntake::admit(Inbound&& in, const std::string& sensor) {
  auto f = std::make_shared<Frame>();
  f->sensor = sensor;
  f->response_topic = std::move(in.response_topic);
  f->correlation_data = std::move(in.correlation_data);
  f->request_id = sensor + "/" + node_id_ + "-" + std::to_string(++seq_);
  f->received_ms = unix_ms();
  const size_t size = in.payload ? in.payload->size() : 0;
  if (size > opts_.max_bytes) {
    refuse(*f, "frame of " + std::to_string(size) + " bytes is over the limit of " + std::to_string(opts_.max_bytes) +
                   " bytes");
    return nullptr;
  }
  f->payload = std::move(in.payload);
  return f;
}

std::optional<TensorMessage> FrameIntake::request(const Frame& f) {
  static const std::string kEmpty;
  const std::string& payload = f.payload ? *f.payload : kEmpty;
  TensorMessage msg;
  try {
    if (is_tensor_message(payload)) {
      DecodeLimits limits;
      limits.max_message_bytes = opts_.max_bytes;
      Message decoded = decode_message(f.payload, limits);
      auto* m = std::get_if<TensorMessage>(&decoded);
      if (!m) throw Error("a control message, not a request");
      if (m->model != model_ || m->stage != 0)
        throw Error("a request for model '" + m->model + "' stage " + std::to_string(m->stage) + ", frames go to '" +
                    model_ + "' stage 0");
      msg = std::move(*m);
    } else {
      if (!preprocess_) throw Error("images cannot feed this model: " + no_image_reason_);
      ImageLimits limits{opts_.max_bytes, opts_.max_pixels};
      msg.tensors.push_back({input_.name, image_to_tensor(payload.data(), payload.size(), limits, *preprocess_)});
      msg.request_id = f.request_id;
      msg.model = model_;
    }
  } catch (const Error& e) {
    refuse(f, e.what());
    return std::nullopt;
  }
  if (msg.sensor.empty()) msg.sensor = f.sensor;
  if (msg.response_topic.empty()) msg.response_topic = f.response_topic, msg.correlation_data = f.correlation_data;
  if (msg.deadline_ms == 0 && opts_.budget_ms > 0) msg.deadline_ms = f.received_ms + opts_.budget_ms;
  ++accepted_;
  return msg;
}

void FrameIntake::refuse(const Frame& f, const std::string& why) {
  ++refused_;
  const std::string what = "frame from sensor '" + f.sensor + "' refused: " + why;
  log_line(node_id_, what);
  const std::string message = node_id_ + ": " + what;
  if (!client_) return;
  bool sent = client_->try_publish(topics_.error(), encode(ErrorReport{f.request_id, node_id_, message}));
  if (!f.response_topic.empty()) {
    const nlohmann::json j = {{"request_id", f.request_id}, {"sensor", f.sensor}, {"error", message}};
    sent = client_->try_publish(f.response_topic, j.dump(), PublishProps{f.correlation_data, "application/json"}) && sent;
  }
  if (!sent) log_line(node_id_, "outbox full: the refusal of '" + f.request_id + "' was not sent");
}

std::unique_ptr<FrameIntake> make_frame_intake(const FrameOptions& opts, const Topics& topics, const Plan& plan,
                                               const std::string& node_id, int stage, bool sharded,
                                               const ValueInfo& input) {
  if (stage != 0) return nullptr;
  if (sharded) {
    if (!opts.topics.empty())
      throw Error("frame topics are mapped, but the first stage of '" + plan.model +
                  "' is sharded and takes no frames: put the first layers in a stage of their own");
    return nullptr;
  }
  return std::make_unique<FrameIntake>(opts, topics, plan, node_id, input);
}

}  // namespace dnn
