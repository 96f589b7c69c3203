// Sends a request on to wherever it goes next, shared by the node runtime and the infer client:
//   - the next stage's input topic (its replicas share it),
//   - each shard's topic of a sharded next stage — then this dispatcher is the one place the
//     partials meet: it names its own direct topic as join_topic, joins them on its join thread and
//     sends the joined output on in turn,
//   - or the request's reply_to after the last stage.
// Failures go to reply_to as an ErrorReport (and to <prefix>/ctl/error for monitors).
#pragma once
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "swarm/join_table.h"
#include "transport/bounded_queue.h"
#include "transport/messages.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"

namespace dnn {

class Dispatcher {
 public:
  // `layout`: the model's stages and their shard counts; `self_id`: the node or client id whose
  // direct topic receives partials (it must subscribe Topics::node_in(self_id) and pass what
  // arrives there to post_partial()).
  Dispatcher(MqttClient& client, const Topics& topics, Topology layout, std::string self_id, size_t join_capacity);
  ~Dispatcher();   // stops the join thread
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // `msg` holds the inputs of stage `next` (== number of stages: the final result). Blocks while the
  // MQTT outbox is full: not for the MQTT callback thread.
  void forward(TensorMessage msg, int next);

  // A partial that arrived on the direct topic. Never blocks (drops with a log line when the join
  // queue is full; the join then expires and the request is reported failed).
  void post_partial(TensorMessage partial);

  // ErrorReport to reply_to (when known) and to ctl/error. Never blocks.
  void report_error(const std::string& request_id, const std::string& reply_to, const std::string& message);

  // Called with every finished request before it goes to reply_to, on the forwarding thread (may
  // block): the node answers camera frames with labelled JSON from here. Set before the first forward.
  void on_result(std::function<void(const TensorMessage&)> fn) { on_result_ = std::move(fn); }

  const Topology& layout() const { return layout_; }
  std::string direct_topic() const { return topics_.node_in(self_id_); }
  uint64_t joins_completed() const { return joins_completed_; }

 private:
  void join_loop();

  MqttClient& client_;
  Topics topics_;
  Topology layout_;
  std::string self_id_;
  std::mutex table_mu_;   // forward() (any thread) opens joins, the join thread completes them
  JoinTable table_;
  BoundedQueue<TensorMessage> partials_;
  std::atomic<uint64_t> joins_completed_{0};
  std::function<void(const TensorMessage&)> on_result_;
  std::thread join_thread_;
};

}  // namespace dnn
