#include "swarm/client.h"

#include <unistd.h>

#include <random>
#include <sstream>

namespace dnn {

namespace {
constexpr uint64_t kTimeoutGraceMs = 500;   // nodes report expiry themselves; this covers lost reports
constexpr size_t kRememberTimedOut = 4096;  // ids of timed-out requests kept to tell late answers apart
// No node serves the next stage: wait 200 ms before trying again, then 400, then 800 (2.2 s over 5
// attempts: about what nodes take to come back after a broker restart).
constexpr uint64_t kUndeliveredBackoffMs = 200;
uint64_t undelivered_backoff_ms(uint32_t attempt) { return kUndeliveredBackoffMs << std::min<uint32_t>(attempt, 2); }

std::string default_client_id() {
  std::random_device rd;
  std::ostringstream s;
  s << "client-" << getpid() << "-" << std::hex << (rd() & 0xffffff);
  return s.str();
}
}  // namespace

InferClient::InferClient(ClientOptions opts)
    : opts_(std::move(opts)), topics_(opts_.prefix), live_(static_cast<uint64_t>(std::max(1, opts_.stale_ms))) {
  if (opts_.client_id.empty()) opts_.client_id = default_client_id();
  check_topic_name(opts_.client_id, "client id");
  check_topic_name(opts_.model, "model name");
  if (opts_.reply_to.empty()) opts_.reply_to = topics_.client_result(opts_.client_id);
  if (opts_.window < 1) throw Error("the in-flight window must be at least 1");
  limits_.max_message_bytes = opts_.max_message_mb << 20;

  MqttOptions mo;
  mo.broker = opts_.broker;
  mo.client_id = opts_.client_id;
  mo.connect_timeout = std::chrono::milliseconds(std::max(opts_.timeout_ms, opts_.topology_timeout_ms));
  client_ = std::make_unique<MqttClient>(mo, [this](Inbound&& in) { on_message(std::move(in)); });
  client_->connect();
  client_->subscribe(opts_.reply_to);
  client_->subscribe(topics_.node_in(opts_.client_id));   // partials to join, and Progress
  client_->subscribe(topics_.heartbeat("+"));
  client_->subscribe(topics_.node_status("+"));
  client_->subscribe(topics_.topology(opts_.model));

  std::unique_lock<std::mutex> lk(mu_);
  if (!topology_cv_.wait_for(lk, std::chrono::milliseconds(opts_.topology_timeout_ms), [&] { return have_topology_; }))
    throw Error("unknown model '" + opts_.model + "': no node serving it has announced " +
                topics_.topology(opts_.model) + " on " + opts_.broker.describe() + " (waited " +
                std::to_string(opts_.topology_timeout_ms) + " ms)");
  dispatcher_ = std::make_unique<Dispatcher>(*client_, topics_, topology_, opts_.client_id,
                                             static_cast<size_t>(opts_.window) * 2, &live_, true);
  lk.unlock();
  reaper_ = std::thread([this] { reaper_loop(); });
}

InferClient::~InferClient() {
  closing_ = true;
  window_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  {
    std::lock_guard<std::mutex> lk(callback_mu_);   // no callback is running past this point
  }
  std::map<std::string, Pending> left;
  {
    std::lock_guard<std::mutex> lk(mu_);
    left.swap(pending_);
  }
  for (auto& [id, p] : left) {
    InferResult r;
    r.sequence = p.sequence;
    r.request_id = id;
    r.error = "client closed before the result arrived";
    p.promise.set_value(std::move(r));
  }
  dispatcher_.reset();
  client_.reset();
}

int InferClient::in_flight() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int>(pending_.size());
}

bool InferClient::drain(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return window_cv_.wait_for(lk, timeout, [&] { return pending_.empty(); });
}

std::future<InferResult> InferClient::submit(std::vector<NamedTensor> inputs) {
  const auto submitted = std::chrono::steady_clock::now();
  TensorMessage msg;
  std::future<InferResult> fut;
  {
    std::unique_lock<std::mutex> lk(mu_);
    const bool room = window_cv_.wait_until(lk, submitted + std::chrono::milliseconds(opts_.timeout_ms), [&] {
      return closing_ || static_cast<int>(pending_.size()) < opts_.window;
    });
    if (closing_) throw Error("client is closing");
    const uint64_t seq = next_sequence_++;
    msg.request_id = opts_.client_id + "/" + std::to_string(seq);
    if (!room) {   // the swarm (or the broker) kept every slot busy for the whole timeout
      std::promise<InferResult> failed;
      InferResult r;
      r.sequence = seq;
      r.request_id = msg.request_id;
      r.timed_out = true;
      r.attempts = 0;
      r.error = "timed out after " + std::to_string(opts_.timeout_ms) + " ms waiting for room in the window";
      r.latency_ms = opts_.timeout_ms;
      failed.set_value(std::move(r));
      return failed.get_future();
    }
    msg.budget_ms = static_cast<uint32_t>(opts_.timeout_ms);
    msg.deadline_ms = unix_ms() + static_cast<uint64_t>(opts_.timeout_ms);   // for readers; nodes use the budget
    msg.model = opts_.model;
    msg.tensors = std::move(inputs);
    msg.reply_to = opts_.reply_to;
    msg.ack_topic = topics_.node_in(opts_.client_id);
    Pending p;
    p.sequence = seq;
    p.submitted = submitted;
    p.sent_ms = p.last_word_ms = steady_ms();
    p.deadline_ms = p.sent_ms + static_cast<uint64_t>(opts_.timeout_ms);
    p.request = msg;
    fut = p.promise.get_future();
    pending_.emplace(msg.request_id, std::move(p));
  }
  // Not sent (the outbox is full while the broker is away): the reaper re-sends it.
  dispatcher_->forward(std::move(msg), 0);
  return fut;
}

void InferClient::complete(const std::string& request_id, InferResult r) {
  std::promise<InferResult> promise;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) {
      // Answered already (or timed out): "exactly once" means dropping this one.
      if (!r.timed_out) (timed_out_ids_.count(request_id) ? late_ : duplicates_)++;
      return;
    }
    r.sequence = it->second.sequence;
    r.request_id = request_id;
    r.attempts = static_cast<int>(it->second.attempt) + 1;
    r.latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - it->second.submitted).count();
    if (r.timed_out) {
      timed_out_ids_.insert(request_id);
      timed_out_order_.push_back(request_id);
      if (timed_out_order_.size() > kRememberTimedOut) {
        timed_out_ids_.erase(timed_out_order_.front());
        timed_out_order_.pop_front();
      }
    }
    promise = std::move(it->second.promise);
    pending_.erase(it);
  }
  window_cv_.notify_all();
  promise.set_value(std::move(r));
}

void InferClient::on_progress(const Progress& p) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = pending_.find(p.request_id);
  if (it == pending_.end() || p.attempt != it->second.attempt) return;   // answered, or an earlier send
  Pending& q = it->second;
  const uint64_t now = steady_ms();
  if (p.undelivered) {
    q.undelivered = true;
    q.undelivered_stage = p.stage;
    return;
  }
  if (p.stage < q.stage) return;   // an earlier hop speaking late
  if (p.stage > q.stage) {
    q.stage = p.stage;
    q.holders.clear();
  }
  auto& h = q.holders[p.shard_index];
  if (h.first.empty() || !h.second) h = {p.node_id, p.done};
  q.last_word_ms = now;
}

std::string InferClient::resend_reason(const Pending& p, uint64_t now) const {
  const uint64_t ack = static_cast<uint64_t>(opts_.ack_timeout_ms);
  if (p.undelivered)
    return now - p.sent_ms >= undelivered_backoff_ms(p.attempt) ? "no node served its next stage" : "";
  if (p.stage < 0) return now - p.sent_ms > ack ? "no node accepted it" : "";
  for (const auto& [shard, h] : p.holders)
    if (!h.second && !live_.alive(h.first, now)) return "node " + h.first + " holding it fell silent";
  if (now - p.last_word_ms <= ack) return "";
  const int count = p.stage < static_cast<int>(topology_.shard_counts.size()) ? topology_.shard_counts[p.stage] : 1;
  if (static_cast<int>(p.holders.size()) < count) return "a shard of stage " + std::to_string(p.stage) + " never took it";
  for (const auto& [shard, h] : p.holders)
    if (!h.second) return "";   // still being computed by a live node
  return "stage " + std::to_string(p.stage + 1) + " never took it";
}

void InferClient::on_message(Inbound&& in) {
  std::lock_guard<std::mutex> cb(callback_mu_);
  if (closing_) return;
  if (!live_.status_message(topics_, in.topic, *in.payload, steady_ms()).empty()) return;
  Message decoded;
  try {
    decoded = decode_message(in.payload, limits_);
  } catch (const MessageError& e) {
    log_line(opts_.client_id, "dropped a message on " + in.topic + ": " + e.what());
    return;
  }
  if (auto* hb = std::get_if<Heartbeat>(&decoded)) {
    live_.heard(*hb, steady_ms());
    return;
  }
  if (auto* p = std::get_if<Progress>(&decoded)) {
    on_progress(*p);
    return;
  }
  if (auto* t = std::get_if<Topology>(&decoded)) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!have_topology_ && t->model == opts_.model && !t->shard_counts.empty()) {
      topology_ = *t;
      have_topology_ = true;
      topology_cv_.notify_all();
    }
    return;
  }
  if (auto* e = std::get_if<ErrorReport>(&decoded)) {
    InferResult r;
    r.error = e->message.empty() ? "failed at node " + e->node_id : e->message;
    complete(e->request_id, std::move(r));
    return;
  }
  auto* msg = std::get_if<TensorMessage>(&decoded);
  if (!msg) return;
  if (in.topic == topics_.node_in(opts_.client_id)) {
    if (dispatcher_) dispatcher_->post_partial(std::move(*msg));
    return;
  }
  InferResult r;
  r.error = msg->error;
  r.outputs = std::move(msg->tensors);
  r.hops = std::move(msg->hops);
  complete(msg->request_id, std::move(r));
}

void InferClient::reaper_loop() {
  while (!closing_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<std::string> late;
    std::vector<std::pair<std::string, std::string>> refused;   // id, why
    std::vector<TensorMessage> again;
    {
      std::lock_guard<std::mutex> lk(mu_);
      const uint64_t now = steady_ms();
      for (auto& [id, p] : pending_) {
        if (p.deadline_ms + kTimeoutGraceMs < now) {
          late.push_back(id);
          continue;
        }
        if (static_cast<int>(p.attempt) + 1 >= opts_.max_attempts) {
          // Out of attempts and still nobody subscribed: say so now rather than time out.
          if (p.undelivered && now - p.sent_ms >= undelivered_backoff_ms(p.attempt))
            refused.emplace_back(id, "no node serves stage " + std::to_string(p.undelivered_stage) + " of '" +
                                         opts_.model + "' (all its nodes went offline; " + std::to_string(p.attempt + 1) +
                                         " attempts)");
          continue;
        }
        if (now >= p.deadline_ms) continue;
        const std::string why = resend_reason(p, now);
        if (why.empty()) continue;
        ++p.attempt;
        p.sent_ms = p.last_word_ms = now;
        p.stage = -1;
        p.holders.clear();
        p.undelivered = false;
        TensorMessage m = p.request;
        m.attempt = p.attempt;
        m.budget_ms = static_cast<uint32_t>(p.deadline_ms - now);
        again.push_back(std::move(m));
        if (resends_++ < 20) log_line(opts_.client_id, "re-sending " + id + " (attempt " + std::to_string(p.attempt + 1) + "): " + why);
      }
    }
    for (auto& m : again) dispatcher_->forward(std::move(m), 0);
    for (auto& [id, why] : refused) {
      InferResult r;
      r.error = why;
      complete(id, std::move(r));
    }
    for (const auto& id : late) {
      InferResult r;
      r.timed_out = true;
      r.error = "timed out after " + std::to_string(opts_.timeout_ms) + " ms";
      complete(id, std::move(r));
    }
  }
}

}  // namespace dnn
