// The swarm's client: sends inference requests to a model served by `dnnswarm node`s and collects
// the results. `dnnswarm infer` and the local swarm launcher both drive the swarm through it.
//
//   InferClient c({.broker = url, .model = "lenet5"});   // waits for the model's topology
//   std::future<InferResult> f = c.submit({{"", x}});     // blocks while `window` are in flight
//   InferResult r = f.get();                              // outputs, or error / timed out
//
// Requests are numbered "<client id>/<sequence>". Each is answered exactly once: by its result, by
// the first ErrorReport about it, or by a timeout at its deadline (+ a grace period); later
// arrivals for it are counted as duplicates (or late, after its timeout) and dropped.
//
// Delivery (docs/protocol.md, "Delivery"): the client keeps each request until it is answered.
// Nodes report on the client's direct topic when they accept a request and when they have sent it
// on; the client re-sends it (same id, next attempt, the budget left) when nobody accepted it within
// ack_timeout_ms, when its publish reached no subscriber, when the node holding it falls silent
// (offline, or no heartbeat for stale_ms), or when a stage finished and the next did not take it.
// A re-send goes straight to a live replica. Nothing here blocks past timeout_ms, broker or not.
#pragma once
#include <atomic>
#include <condition_variable>
#include <future>
#include <deque>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "swarm/dispatcher.h"
#include "swarm/live_nodes.h"
#include "transport/messages.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"

namespace dnn {

struct ClientOptions {
  BrokerConnection broker;      // URL(s), login, TLS
  std::string client_id;        // empty: "client-<pid>-<random>"
  std::string prefix = Topics::kDefaultPrefix;
  std::string model;
  std::string reply_to;         // empty: <prefix>/client/<id>/result
  int window = 32;              // requests in flight at most
  int timeout_ms = 10000;       // per request, from submit(), its budget
  int topology_timeout_ms = 5000;   // the larger of the two bounds the connect
  int ack_timeout_ms = 1000;    // no word from the next hop for this long: re-send
  int stale_ms = 1500;          // a node silent this long is gone (nodes heartbeat every 500 ms)
  int max_attempts = 5;         // sends of one request at most
  size_t max_message_mb = 128;
};

struct InferResult {
  uint64_t sequence = 0;
  std::string request_id;
  std::vector<NamedTensor> outputs;
  std::string error;            // non-empty: failed or timed out
  bool timed_out = false;
  int attempts = 1;             // sends it took
  double latency_ms = 0;        // submit() call (before waiting for room in the window) to result
  std::vector<Hop> hops;
  bool ok() const { return error.empty(); }
};

class InferClient {
 public:
  // Connects and waits for the model's retained topology; throws Error ("unknown model ...") when
  // no node has published one within topology_timeout_ms.
  explicit InferClient(ClientOptions opts);
  ~InferClient();   // pending requests complete as failed ("client closed")
  InferClient(const InferClient&) = delete;
  InferClient& operator=(const InferClient&) = delete;

  // Sends one request (the tensors the first stage takes; a single tensor needs no name). Blocks
  // while `window` requests are in flight, at most timeout_ms: then the result is a timeout.
  std::future<InferResult> submit(std::vector<NamedTensor> inputs);

  // Waits until nothing is in flight (or `timeout`); true when drained.
  bool drain(std::chrono::milliseconds timeout);

  const std::string& id() const { return opts_.client_id; }
  const Topology& topology() const { return topology_; }
  int in_flight() const;
  uint64_t duplicates() const { return duplicates_; }   // answers to a request answered already
  uint64_t late() const { return late_; }               // answers to a request timed out already
  uint64_t resends() const { return resends_; }

 private:
  struct Pending {
    uint64_t sequence = 0;
    std::chrono::steady_clock::time_point submitted;
    uint64_t deadline_ms = 0;   // steady_ms()
    std::promise<InferResult> promise;
    TensorMessage request;      // kept for re-sends (its tensors share the caller's storage)
    // The current attempt's progress: the furthest stage heard from, and its shards' holders.
    uint32_t attempt = 0;
    uint64_t sent_ms = 0, last_word_ms = 0;
    int stage = -1;
    std::map<int, std::pair<std::string, bool>> holders;   // shard -> (node, done)
    bool undelivered = false;
    int undelivered_stage = 0;
  };
  void on_message(Inbound&& in);
  void on_progress(const Progress& p);
  void complete(const std::string& request_id, InferResult r);
  // Why `p` must be sent again now, or "" (mu_ held).
  std::string resend_reason(const Pending& p, uint64_t now) const;
  void reaper_loop();

  ClientOptions opts_;
  Topics topics_;
  Topology topology_;
  DecodeLimits limits_;
  mutable std::mutex mu_;     // pending_, topology_, the window
  std::mutex callback_mu_;    // held by on_message; the destructor takes it to know none is running
  std::condition_variable window_cv_, topology_cv_;
  bool have_topology_ = false;
  std::map<std::string, Pending> pending_;
  uint64_t next_sequence_ = 0;
  std::atomic<uint64_t> duplicates_{0}, late_{0}, resends_{0};
  std::set<std::string> timed_out_ids_;     // bounded by kRememberTimedOut, oldest first out:
  std::deque<std::string> timed_out_order_;
  LiveNodes live_;
  std::atomic<bool> closing_{false};
  std::thread reaper_;
  std::unique_ptr<MqttClient> client_;
  std::unique_ptr<Dispatcher> dispatcher_;   // for a sharded first stage: the client joins it
};

}  // namespace dnn
