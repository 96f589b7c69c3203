// Sends a request on to wherever it goes next, shared by the node runtime and the infer client:
//   - the next stage's input topic (its replicas share it),
//   - each shard's topic of a sharded next stage — then this dispatcher is the one place the
//     partials meet: it names its own direct topic as join_topic, joins them on its join thread and
//     sends the joined output on in turn,
//   - or the request's reply_to after the last stage.
// Failures go to reply_to as an ErrorReport (and to <prefix>/ctl/error for monitors).
// Delivery (docs/protocol.md, "Delivery"): every publish of a request carries its remaining budget
// (also as the MQTT Message Expiry Interval, so a broker queue does not keep it past its use); with
// LiveNodes, requests go around a silent replica, and a request for a stage whose nodes all went
// offline is
// reported to the requester's ack topic ("undelivered": it re-sends shortly, then gives up with an
// explicit error) or failed when it has no ack topic. (Mosquitto's PUBACK says "no matching
// subscribers", reason 16, but Paho C++ 1.2 reports 0 on the token: checked.)
#pragma once
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "swarm/join_table.h"
#include "swarm/live_nodes.h"
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
  // `live` (may be null): where replicas stand, to route around silent ones. `never_block`: forward()
  // gives up instead of waiting for outbox room (a client, whose caller has a timeout).
  Dispatcher(MqttClient& client, const Topics& topics, Topology layout, std::string self_id, size_t join_capacity,
             LiveNodes* live = nullptr, bool never_block = false);
  ~Dispatcher();   // stops the join thread
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // `msg` holds the inputs of stage `next` (== number of stages: the final result), and its budget
  // left (budget_ms; 0 = kDefaultBudgetMs). Blocks while the MQTT outbox is full unless never_block:
  // not for the MQTT callback thread. False when never_block and the outbox had no room.
  bool forward(TensorMessage msg, int next);

  // Progress to the request's ack_topic (when it has one): accepted, or done (sent on). Never blocks.
  void report_progress(const TensorMessage& msg, bool done);

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
  bool send(const std::string& topic, const TensorMessage& msg);
  // The topic for (stage, shard): the shared one, or a live replica's work topic (see LiveNodes).
  std::string request_topic(const TensorMessage& msg, int stage, int shard);
  // Sends msg to (stage, shard), first telling the requester when no live node serves it.
  bool send_request(const TensorMessage& msg, int stage, int shard);

  MqttClient& client_;
  Topics topics_;
  Topology layout_;
  std::string self_id_;
  LiveNodes* live_;
  bool never_block_;
  std::mutex table_mu_;   // forward() (any thread) opens joins, the join thread completes them
  JoinTable table_;
  BoundedQueue<TensorMessage> partials_;
  std::atomic<uint64_t> joins_completed_{0};
  std::function<void(const TensorMessage&)> on_result_;
  std::thread join_thread_;
};

}  // namespace dnn
