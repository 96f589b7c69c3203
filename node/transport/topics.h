// The swarm's MQTT topic namespace, in one place (docs/protocol.md lists every topic and payload).
// Everything lives under a configurable prefix (default "dnnswarm"):
//
//   <p>/<model>/s<stage>/in              stage input; replicas subscribe $share/<p>-<model>-s<stage>/...
//   <p>/<model>/s<stage>/shard<k>/in     shard k's input; replicas share $share/<p>-<model>-s<stage>-shard<k>/...
//   <p>/<model>/topology                 retained Topology: stages and their shard counts
//   <p>/node/<id>/in                     a node's (or client's) direct topic: shard partials to join
//   <p>/node/<id>/work                   requests a busy replica passes to this less loaded one
//   <p>/node/<id>/status                 retained "online"; "offline" as the will / on shutdown
//   <p>/node/<id>/state                  retained JSON: role, frames/s, latency, queue depth, memory
//   <p>/client/<id>/result               default reply_to: results and Errors of client <id>
//   <p>/<model>/frames/<sensor>          camera frames (JPEG/PNG bytes or a TensorMessage); the first
//                                        stage's replicas share $share/<p>-<model>-frames/<p>/<model>/frames/+
//   <p>/<model>/results/<sensor>         JSON results of a sensor's frames
//   <p>/ctl/hello/<id>, <p>/ctl/heartbeat/<id>, <p>/ctl/assign/<id>, <p>/ctl/error
#pragma once
#include <string>

namespace dnn {

class Topics {
 public:
  static constexpr const char* kDefaultPrefix = "dnnswarm";
  // Throws Error when the prefix is empty or holds wildcards.
  explicit Topics(std::string prefix = kDefaultPrefix);

  const std::string& prefix() const { return prefix_; }

  std::string stage_in(const std::string& model, int stage) const;
  std::string shard_in(const std::string& model, int stage, int shard) const;
  // The shared-subscription filters replicas use for the two topics above.
  std::string stage_share(const std::string& model, int stage) const;
  std::string shard_share(const std::string& model, int stage, int shard) const;
  std::string topology(const std::string& model) const;
  // Frames from cameras and sensors, and their JSON results. sensor "+" gives the filter for all.
  std::string frames(const std::string& model, const std::string& sensor) const;
  std::string frames_share(const std::string& model) const;   // every sensor's frames, shared
  std::string results(const std::string& model, const std::string& sensor) const;

  std::string node_in(const std::string& id) const;
  std::string node_work(const std::string& id) const;
  std::string node_status(const std::string& id) const;
  std::string node_state(const std::string& id) const;
  std::string client_result(const std::string& client_id) const;

  std::string hello(const std::string& id) const;
  std::string heartbeat(const std::string& id) const;   // id "+" gives the filter for all nodes
  std::string assign(const std::string& id) const;
  std::string error() const;
  std::string control_all() const;   // <p>/ctl/# for monitors

 private:
  // "$share/<prefix with '/' as '-'>-<suffix>/<topic>"
  std::string share(const std::string& group_suffix, const std::string& topic) const;
  std::string prefix_;
};

// Model names, node and client ids become topic levels: non-empty, no '/', '+', '#', '$'. Throws
// Error naming `what` otherwise.
void check_topic_name(const std::string& name, const std::string& what);

}  // namespace dnn
