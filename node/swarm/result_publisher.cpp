#include "swarm/result_publisher.h"

namespace dnn {

bool valid_response_topic(const std::string& t) {
  return !t.empty() && t.size() <= 65535 && t.find_first_of("+#") == std::string::npos &&
         t.find('\0') == std::string::npos;
}

bool valid_sensor_name(const std::string& s) {
  return !s.empty() && s.size() <= 128 && s.find_first_of("/+#$") == std::string::npos &&
         s.find('\0') == std::string::npos;
}

ResultPublisher::ResultPublisher(MqttClient& client, const Topics& topics, std::string node_id, ResultSpec spec,
                                 SensorHook on_sensor)
    : client_(client), topics_(topics), node_id_(std::move(node_id)), spec_(std::move(spec)), on_sensor_(std::move(on_sensor)) {}

void ResultPublisher::publish(const TensorMessage& m) {
  if (m.sensor.empty()) return;
  if (!valid_sensor_name(m.sensor)) {
    ++failed_;
    log_line(node_id_, "request '" + m.request_id + "' names an invalid sensor; no result published");
    return;
  }
  std::string json;
  try {
    if (m.tensors.size() != 1)
      throw ShapeError("the model has " + std::to_string(m.tensors.size()) + " outputs; a labelled result needs one");
    const Classification c = classify(m.tensors[0].tensor, spec_);
    json = result_json(m, c, unix_us()).dump();
    ++published_;
  } catch (const Error& e) {
    ++failed_;
    const std::string what = node_id_ + ": cannot label the result of '" + m.request_id + "': " + e.what();
    log_line(node_id_, what);
    json = nlohmann::ordered_json{{"request_id", m.request_id}, {"model", m.model}, {"sensor", m.sensor}, {"error", what}}
               .dump();
    client_.try_publish(topics_.error(), encode(ErrorReport{m.request_id, node_id_, what}));
  }
  send(m, json);
  if (on_sensor_) on_sensor_(m.model, m.sensor);
}

void ResultPublisher::send(const TensorMessage& m, const std::string& json) {
  client_.publish(topics_.results(m.model, m.sensor), json, PublishProps{"", "application/json"});
  if (m.response_topic.empty()) return;
  if (!valid_response_topic(m.response_topic)) {
    log_line(node_id_, "request '" + m.request_id + "' names an invalid response topic; answered on the results topic only");
    return;
  }
  client_.publish(m.response_topic, json, PublishProps{m.correlation_data, "application/json"});
}

}  // namespace dnn
