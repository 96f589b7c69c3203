// The answer to a camera's frame: when a finished request carries a sensor name, the node that
// finishes it publishes the labelled JSON result (integrations/result.h) to
// <p>/<model>/results/<sensor> and, when the frame came with an MQTT v5 Response Topic, to that
// topic with the frame's Correlation Data. Requests without a sensor (dnnswarm infer) are left to
// their reply_to as before.
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "integrations/result.h"
#include "transport/messages.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"

namespace dnn {

class ResultPublisher {
 public:
  // `on_sensor` is told each (model, sensor) answered, e.g. to announce the stream to Home Assistant.
  using SensorHook = std::function<void(const std::string& model, const std::string& sensor)>;
  ResultPublisher(MqttClient& client, const Topics& topics, std::string node_id, ResultSpec spec,
                  SensorHook on_sensor = nullptr);

  // A finished request (the model's output in result.tensors). Blocks while the MQTT outbox is full:
  // for the worker or join thread, not the MQTT callback. A result that cannot be scored (wrong
  // output size, NaN) is answered with {"request_id", "sensor", "error"} on the same topics.
  void publish(const TensorMessage& result);

  uint64_t published() const { return published_; }
  uint64_t failed() const { return failed_; }

 private:
  void send(const TensorMessage& result, const std::string& json);

  MqttClient& client_;
  Topics topics_;
  std::string node_id_;
  ResultSpec spec_;
  SensorHook on_sensor_;
  std::atomic<uint64_t> published_{0}, failed_{0};
};

// A Response Topic a frame may name: a valid topic to publish to (no wildcards, not empty, at most
// 65,535 bytes as MQTT allows).
bool valid_response_topic(const std::string& topic);
// A sensor name is one topic level: 1 to 128 bytes, no '/', '+', '#', '$'.
bool valid_sensor_name(const std::string& sensor);

}  // namespace dnn
