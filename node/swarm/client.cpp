#include "swarm/client.h"

#include <unistd.h>

#include <random>
#include <sstream>

namespace dnn {

namespace {
constexpr uint64_t kTimeoutGraceMs = 500;   // nodes report expiry themselves; this covers lost reports

std::string default_client_id() {
  std::random_device rd;
  std::ostringstream s;
  s << "client-" << getpid() << "-" << std::hex << (rd() & 0xffffff);
  return s.str();
}
}  // namespace

InferClient::InferClient(ClientOptions opts) : opts_(std::move(opts)), topics_(opts_.prefix) {
  if (opts_.client_id.empty()) opts_.client_id = default_client_id();
  check_topic_name(opts_.client_id, "client id");
  check_topic_name(opts_.model, "model name");
  if (opts_.reply_to.empty()) opts_.reply_to = topics_.client_result(opts_.client_id);
  if (opts_.window < 1) throw Error("the in-flight window must be at least 1");
  limits_.max_message_bytes = opts_.max_message_mb << 20;

  MqttOptions mo;
  mo.broker = opts_.broker;
  mo.client_id = opts_.client_id;
  client_ = std::make_unique<MqttClient>(mo, [this](Inbound&& in) { on_message(std::move(in)); });
  client_->connect();
  client_->subscribe(opts_.reply_to);
  client_->subscribe(topics_.node_in(opts_.client_id));
  client_->subscribe(topics_.topology(opts_.model));

  std::unique_lock<std::mutex> lk(mu_);
  if (!topology_cv_.wait_for(lk, std::chrono::milliseconds(opts_.topology_timeout_ms), [&] { return have_topology_; }))
    throw Error("unknown model '" + opts_.model + "': no node serving it has announced " +
                topics_.topology(opts_.model) + " on " + opts_.broker.describe() + " (waited " +
                std::to_string(opts_.topology_timeout_ms) + " ms)");
  dispatcher_ = std::make_unique<Dispatcher>(*client_, topics_, topology_, opts_.client_id,
                                             static_cast<size_t>(opts_.window) * 2);
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
  TensorMessage msg;
  std::future<InferResult> fut;
  {
    std::unique_lock<std::mutex> lk(mu_);
    window_cv_.wait(lk, [&] { return closing_ || static_cast<int>(pending_.size()) < opts_.window; });
    if (closing_) throw Error("client is closing");
    const uint64_t seq = next_sequence_++;
    msg.request_id = opts_.client_id + "/" + std::to_string(seq);
    msg.deadline_ms = unix_ms() + static_cast<uint64_t>(opts_.timeout_ms);
    Pending p{seq, std::chrono::steady_clock::now(), msg.deadline_ms, {}};
    fut = p.promise.get_future();
    pending_.emplace(msg.request_id, std::move(p));
  }
  msg.model = opts_.model;
  msg.tensors = std::move(inputs);
  msg.reply_to = opts_.reply_to;
  dispatcher_->forward(std::move(msg), 0);
  return fut;
}

void InferClient::complete(const std::string& request_id, InferResult r) {
  std::promise<InferResult> promise;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) {
      ++duplicates_;   // answered already (or timed out): "exactly once" means dropping this one
      return;
    }
    r.sequence = it->second.sequence;
    r.request_id = request_id;
    r.latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - it->second.submitted).count();
    promise = std::move(it->second.promise);
    pending_.erase(it);
  }
  window_cv_.notify_all();
  promise.set_value(std::move(r));
}

void InferClient::on_message(Inbound&& in) {
  std::lock_guard<std::mutex> cb(callback_mu_);
  if (closing_) return;
  Message decoded;
  try {
    decoded = decode_message(in.payload, limits_);
  } catch (const MessageError& e) {
    log_line(opts_.client_id, "dropped a message on " + in.topic + ": " + e.what());
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
    {
      std::lock_guard<std::mutex> lk(mu_);
      const uint64_t now = unix_ms();
      for (const auto& [id, p] : pending_)
        if (p.deadline_ms + kTimeoutGraceMs < now) late.push_back(id);
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
