#include "swarm/dispatcher.h"

namespace dnn {

Dispatcher::Dispatcher(MqttClient& client, const Topics& topics, Topology layout, std::string self_id,
                       size_t join_capacity)
    : client_(client),
      topics_(topics),
      layout_(std::move(layout)),
      self_id_(std::move(self_id)),
      table_(join_capacity),
      // Every open join may receive all its partials at once.
      partials_(join_capacity * 4 + 16) {
  join_thread_ = std::thread([this] { join_loop(); });
}

Dispatcher::~Dispatcher() {
  partials_.close();
  join_thread_.join();
}

void Dispatcher::forward(TensorMessage msg, int next) {
  const int stages = static_cast<int>(layout_.shard_counts.size());
  msg.stage = next;
  msg.shard_index = 0;
  msg.shard_count = 1;
  msg.join_topic.clear();
  msg.sent_us = unix_us();
  if (next >= stages) {
    if (on_result_) on_result_(msg);
    if (msg.reply_to.empty()) return;   // nobody asked for the result
    client_.publish(msg.reply_to, encode(msg));
    return;
  }
  const int shards = layout_.shard_counts[next];
  if (shards == 1) {
    client_.publish(topics_.stage_in(msg.model, next), encode(msg));
    return;
  }
  bool opened;
  {
    std::lock_guard<std::mutex> lk(table_mu_);
    opened = table_.expect(msg.request_id, next, shards, msg.deadline_ms, msg.reply_to);
  }
  if (!opened) {
    report_error(msg.request_id, msg.reply_to,
                 self_id_ + ": cannot join stage " + std::to_string(next) + ": too many joins open (or a duplicate request id)");
    return;
  }
  msg.shard_count = shards;
  msg.join_topic = direct_topic();
  for (int k = 0; k < shards; ++k) {
    msg.shard_index = k;
    client_.publish(topics_.shard_in(msg.model, next, k), encode(msg));
  }
}

void Dispatcher::post_partial(TensorMessage partial) {
  const std::string id = partial.request_id;
  if (!partials_.try_push(std::move(partial))) log_line(self_id_, "join queue full: dropped a partial of '" + id + "'");
}

void Dispatcher::report_error(const std::string& request_id, const std::string& reply_to, const std::string& message) {
  log_line(self_id_, "request '" + request_id + "' failed: " + message);
  const std::string payload = encode(ErrorReport{request_id, self_id_, message});
  bool sent = client_.try_publish(topics_.error(), payload);
  if (!reply_to.empty()) sent = client_.try_publish(reply_to, payload) && sent;
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
      expired = table_.expire(unix_ms());
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
