#include "swarm/dispatcher.h"

namespace dnn {

Dispatcher::Dispatcher(MqttClient& client, const Topics& topics, Topology layout, std::string self_id,
                       size_t join_capacity, LiveNodes* live, bool never_block)
    : client_(client),
      topics_(topics),
      layout_(std::move(layout)),
      self_id_(std::move(self_id)),
      live_(live),
      never_block_(never_block),
      table_(join_capacity),
      // Every open join may receive all its partials at once.
      partials_(join_capacity * 4 + 16) {
  join_thread_ = std::thread([this] { join_loop(); });
}

Dispatcher::~Dispatcher() {
  partials_.close();
  join_thread_.join();
}

bool Dispatcher::send(const std::string& topic, const TensorMessage& msg) {
  PublishProps props;
  props.expiry_s = ((msg.budget_ms ? msg.budget_ms : kDefaultBudgetMs) + 999) / 1000;
  if (never_block_) return client_.try_publish(topic, encode(msg), props);
  return client_.publish(topic, encode(msg), props);
}

std::string Dispatcher::request_topic(const TensorMessage& msg, int stage, int shard) {
  const bool sharded = layout_.shard_counts[stage] > 1;
  // A re-send goes to a replica known to be alive; a first send too while any replica is silent.
  const std::string peer = live_ ? live_->route(msg.model, stage, shard, steady_ms(), msg.attempt > 0) : "";
  if (!peer.empty()) return topics_.node_work(peer);
  return sharded ? topics_.shard_in(msg.model, stage, shard) : topics_.stage_in(msg.model, stage);
}

bool Dispatcher::forward(TensorMessage msg, int next) {
  const int stages = static_cast<int>(layout_.shard_counts.size());
  msg.stage = next;
  msg.shard_index = 0;
  msg.shard_count = 1;
  msg.join_topic.clear();
  msg.sent_us = unix_us();
  if (next >= stages) {
    if (on_result_) on_result_(msg);
    if (msg.reply_to.empty()) return true;   // nobody asked for the result
    return send(msg.reply_to, msg);
  }
  const int shards = layout_.shard_counts[next];
  if (shards == 1) return send_request(msg, next, 0);
  bool opened;
  {
    std::lock_guard<std::mutex> lk(table_mu_);
    opened = table_.expect(msg.request_id, next, shards, steady_ms(), msg.budget_ms, msg.reply_to);
  }
  if (!opened) {
    report_error(msg.request_id, msg.reply_to,
                 self_id_ + ": cannot join stage " + std::to_string(next) + ": too many joins open");
    return true;
  }
  msg.shard_count = shards;
  msg.join_topic = direct_topic();
  bool sent = true;
  for (int k = 0; k < shards; ++k) {
    msg.shard_index = k;
    sent = send_request(msg, next, k) && sent;
  }
  return sent;
}

void Dispatcher::report_progress(const TensorMessage& msg, bool done) {
  if (msg.ack_topic.empty()) return;
  Progress p{msg.request_id, self_id_, msg.stage, msg.shard_index, msg.attempt, done, false};
  // Lost progress costs a needless re-send at worst: no log line.
  client_.try_publish_control(msg.ack_topic, encode(p));
}

bool Dispatcher::send_request(const TensorMessage& msg, int stage, int shard) {
  if (live_ && live_->none_serves(msg.model, stage, shard, steady_ms())) {
    if (!msg.ack_topic.empty()) {
      Progress p{msg.request_id, self_id_, stage, shard, msg.attempt, false, true};
      client_.try_publish_control(msg.ack_topic, encode(p));
    } else {
      report_error(msg.request_id, msg.reply_to,
                   self_id_ + ": no node serves stage " + std::to_string(stage) +
                       (layout_.shard_counts[stage] > 1 ? " shard " + std::to_string(shard) : ""));
      return true;
    }
  }
  // Sent even so: a node back a moment ago may take it before its first heartbeat.
  return send(request_topic(msg, stage, shard), msg);
}

void Dispatcher::post_partial(TensorMessage partial) {
  const std::string id = partial.request_id;
  if (!partials_.try_push(std::move(partial))) log_line(self_id_, "join queue full: dropped a partial of '" + id + "'");
}

void Dispatcher::report_error(const std::string& request_id, const std::string& reply_to, const std::string& message) {
  log_line(self_id_, "request '" + request_id + "' failed: " + message);
  const std::string payload = encode(ErrorReport{request_id, self_id_, message});
  // The control lane: a full outbox of tensors must not swallow the refusal.
  bool sent = client_.try_publish_control(topics_.error(), payload);
  if (!reply_to.empty()) sent = client_.try_publish_control(reply_to, payload) && sent;
  if (!sent) log_line(self_id_, "outbox full: the error report of '" + request_id + "' was not sent");
}

void Dispatcher::join_loop() {
  while (!partials_.closed() || partials_.size() > 0) {
    auto partial = partials_.pop_for(std::chrono::milliseconds(100));
    std::vector<JoinTable::Expired> expired;
    std::optional<std::vector<TensorMessage>> complete;
    std::string reply_to;
    {
      std::lock_guard<std::mutex> lk(table_mu_);
      expired = table_.expire(steady_ms());
      if (partial) {
        reply_to = partial->reply_to;
        try {
          complete = table_.add(std::move(*partial));
        } catch (const MessageError& e) {
          log_line(self_id_, std::string("dropped: ") + e.what());
        }
      }
    }
    for (const auto& e : expired)
      report_error(e.request_id, e.reply_to,
                   self_id_ + ": deadline passed with " + std::to_string(e.received) + " of " + std::to_string(e.count) +
                       " shard partials of stage " + std::to_string(e.stage));
    if (!complete) continue;
    const std::string id = complete->front().request_id;
    const int stage = complete->front().stage;
    try {
      TensorMessage joined = join_partials(std::move(*complete));
      ++joins_completed_;
      forward(std::move(joined), stage + 1);
    } catch (const Error& e) {
      report_error(id, reply_to, self_id_ + ": " + e.what());
    }
  }
}

}  // namespace dnn
