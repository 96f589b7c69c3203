// Camera frames into the swarm. The first stage's replicas (of a plan whose first stage is not
// sharded) share every sensor's frames topic, <p>/<model>/frames/+, plus the camera topics the
// node's config maps to a sensor (e.g. Frigate's frigate/porch/person/snapshot), as shared
// subscriptions too. A frame is raw JPEG/PNG bytes or a TensorMessage (docs/protocol.md, "Frames
// and results").
//
//   MQTT callback ──admit(): size check only──▶ node's intake queue ──▶ worker: request():
//                                                                      decode + preprocess → stage 0
//
// A frame becomes a request like any other: request id "<sensor>/<node id>-<seq>", the sensor, the
// MQTT v5 Response Topic and Correlation Data it came with, a deadline of now + the frame budget.
// A refused frame (too large, corrupt, truncated, too many pixels, not an image) is reported on
// <p>/ctl/error naming the sensor and the reason, and as JSON on its Response Topic if it gave one;
// it is counted, and the node serves on.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "swarm/plan.h"
#include "transport/messages.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"
#include "vision/preprocess.h"

namespace dnn {

struct FrameOptions {
  // Existing camera topics mapped to a sensor: "FILTER=SENSOR". FILTER may hold MQTT wildcards;
  // SENSOR "+" takes the sensor name from the topic level the filter's first '+' matched.
  std::vector<std::string> topics;
  size_t max_bytes = ImageLimits{}.max_bytes;     // an encoded frame (and a TensorMessage frame)
  uint64_t max_pixels = ImageLimits{}.max_pixels;
  int budget_ms = 5000;                            // deadline after arrival; 0 = none
};

struct FrameMapping {
  std::string filter, sensor;   // sensor "+": from the level the filter's first '+' matched
};
// Parses "FILTER=SENSOR"; throws Error naming the mapping when it is malformed.
FrameMapping parse_frame_mapping(const std::string& text);
// MQTT topic matching ('+' one level, '#' the rest).
bool topic_matches(const std::string& filter, const std::string& topic);

// One frame as it arrived, waiting in the node's intake queue.
struct Frame {
  std::string sensor, response_topic, correlation_data, request_id;
  std::shared_ptr<const std::string> payload;
  uint64_t received_ms = 0;
};

class FrameIntake {
 public:
  // `input`: the model's input (first stage's executor input). Preprocessing is the plan's "input"
  // resolved against it; throws Error when the plan declares one that does not fit, or when frame
  // topics are mapped on a node that cannot take frames (a sharded first stage).
  FrameIntake(FrameOptions opts, const Topics& topics, const Plan& plan, std::string node_id, ValueInfo input);

  // Logs what it serves; `client` carries refusals from now on.
  void start(MqttClient& client);
  std::vector<std::string> filters() const;     // shared subscriptions to make
  std::string sensor_of(const std::string& topic) const;   // "" = not a frame topic

  // MQTT callback thread: checks the size only. Nothing when refused (reported, counted).
  std::shared_ptr<Frame> admit(Inbound&& in, const std::string& sensor);
  // Worker thread: the request for stage 0, decoded and preprocessed. Nothing when refused.
  std::optional<TensorMessage> request(const Frame& f);
  // Reports and counts a refusal. Never blocks.
  void refuse(const Frame& f, const std::string& why);

  uint64_t accepted() const { return accepted_; }
  uint64_t refused() const { return refused_; }

 private:
  FrameOptions opts_;
  Topics topics_;
  std::string model_, node_id_;
  ValueInfo input_;
  std::optional<Preprocess> preprocess_;   // none: the model's input is no image (tensor frames only)
  std::string no_image_reason_;
  std::vector<FrameMapping> mappings_;
  MqttClient* client_ = nullptr;
  std::atomic<uint64_t> seq_{0}, accepted_{0}, refused_{0};
};

// The first stage's frame intake, or nullptr for a node that takes no frames (later stages, and the
// shards of a sharded first stage, which may not map frame topics: Error).
std::unique_ptr<FrameIntake> make_frame_intake(const FrameOptions& opts, const Topics& topics, const Plan& plan,
                                               const std::string& node_id, int stage, bool sharded,
                                               const ValueInfo& input);

}  // namespace dnn
