// One role of a plan, served over MQTT: `dnnswarm node` is a thin CLI around this class.
//
//   MQTT callback thread ──verify──▶ intake queue (bounded) ──▶ worker thread: Executor on the slice
//        │   (never blocks)                                           │
//        └─ partials on the direct topic ─▶ Dispatcher join thread    └─▶ Dispatcher::forward / join topic
//
// Load follows speed. Mosquitto deals shared-subscription messages round-robin, blind to load, so a
// replica regulates its intake itself: every node hears its peers' heartbeats (same stage and shard:
// ms per frame, queue depth) and, when it has `handoff_depth` requests waiting and a peer is
// expected to finish a new request sooner, passes the arrival to that peer's work topic instead of
// queueing it. Between heartbeats a peer's queue is estimated from what was sent to it and its speed.
// A passed request is never passed again. A replica twice as fast thus serves about twice the
// frames, and nobody idles while another has a backlog. (Leaving the share group while busy, the
// other way, loses requests: Mosquitto drops a message published while a group has no member, which
// happens whenever every replica is busy at once.)
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "core/graph.h"
#include "engine/executor.h"
#include "swarm/dispatcher.h"
#include "swarm/frame_intake.h"
#include "swarm/node_reporter.h"
#include "swarm/plan.h"
#include "swarm/result_publisher.h"
#include "transport/messages.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"

namespace dnn {

struct NodeConfig {
  BrokerConnection broker;      // URL(s), login, TLS
  std::string node_id;
  std::string prefix = Topics::kDefaultPrefix;
  std::string stage;            // stage name or index in the plan
  int shard = 0;                // which shard of a sharded stage
  int threads = 1;              // kernel threads
  int queue = 64;               // intake capacity; beyond it requests fail with "overloaded"
  int handoff_depth = 2;        // waiting requests from which arrivals may go to a faster peer
  int64_t memory_limit_mb = 0;  // refuse a slice whose weights + runtime exceed it; 0 = no limit
  int heartbeat_ms = 500;      // also how fresh peers' load figures are; 3 missed = silent
  size_t join_capacity = 256;   // open joins (requests this node sent to a sharded next stage)
  size_t max_message_mb = 128;  // larger messages are refused (broker-config allows 128 MB)
  double min_frame_ms = 0;      // pad every frame to this time: emulates a slower device in tests
  // Freed activation buffers kept for the next frame (ExecOptions::buffer_cache_bytes), in MB;
  // -1 = automatic, see node_buffer_cache_bytes().
  int64_t buffer_cache_mb = -1;
  FrameOptions frames;          // camera frames, taken by the first stage (swarm/frame_intake.h)
  // Home Assistant discovery (docs/homeassistant.md) and the retained state topic's period.
  bool ha_discovery = true;
  std::string ha_prefix = "homeassistant";
  int state_interval_ms = 5000;
};

// The part of a model one role computes, loaded and checked.
struct NodeSlice {
  int stage_index = 0;
  StageSpec stage;
  Graph graph;                 // the slice: its inputs/outputs are named as in the full model
  Attrs join_attrs;            // for a shard: the activation the joiner applies after a sum
  uint64_t weight_bytes = 0;
};

// The slice `cfg` asks for. `model` is the full model, or a structure from load_model_structure() (swarm/plan.h)
// — then the slice's weights are read from plan.model_path, and only those bytes. Throws Error with a
// clear message, before reading any weights, when the plan does not cover the model, the stage or
// shard does not exist, or the slice does not fit the memory limit (cfg.memory_limit_mb, else the
// stage's memory_mb in the plan): its weights + kNodeOverheadBytes.
NodeSlice load_node_slice(const Plan& plan, const Graph& model, const NodeConfig& cfg);

// The memory limit a node keeps to: cfg.memory_limit_mb, else its stage's memory_mb; 0 = none.
int64_t node_memory_limit_mb(const NodeConfig& cfg, const StageSpec& stage);

// What the node's Executor keeps of freed activations: cfg.buffer_cache_mb when set; else nothing on
// a device with a memory limit, where the slice must run in its weights + kNodeOverheadBytes (VGG16's
// first stage: the process 17 MB, the live activations 26 MB, Winograd's weights 13 MB more than the
// slice's; a cache of its 46 MB of activations took it to 88 MB against 68), else the Executor's default.
size_t node_buffer_cache_bytes(const NodeConfig& cfg, const StageSpec& stage);

// The Topology clients need to address a plan.
Topology plan_topology(const Plan& plan);

class NodeRuntime {
 public:
  NodeRuntime(NodeConfig cfg, const Plan& plan, NodeSlice slice);
  ~NodeRuntime();   // stop()
  NodeRuntime(const NodeRuntime&) = delete;
  NodeRuntime& operator=(const NodeRuntime&) = delete;

  // Connects, subscribes and starts the worker; throws Error when the broker is unreachable.
  void start();
  void stop();

  struct Stats {
    uint64_t processed = 0, handed_off = 0, refused = 0, expired = 0, failed = 0;
    int queue_depth = 0;
    float ms_per_frame = 0;   // moving average of compute time
    uint64_t frames_accepted = 0, frames_refused = 0;
  };
  Stats stats() const;
  const std::string& id() const { return cfg_.node_id; }

 private:
  struct Work {
    TensorMessage msg;
    uint64_t received_us = 0;
    uint64_t deadline_ms = 0;   // steady_ms() when its budget runs out
    std::shared_ptr<Frame> frame = nullptr;   // a camera frame, turned into msg on the worker
  };
  void on_message(Inbound&& in);
  void on_peer_heartbeat(const Heartbeat& hb);
  // A peer expected to finish one more request sooner than this node, or "" (Paho thread only).
  std::string faster_peer();
  void worker_loop();
  // The time a request has left, in ms: its budget, else its wall-clock deadline (a sender that
  // gave no budget), else the default.
  static uint64_t budget_of(const TensorMessage& msg);
  void process(Work& w);
  void heartbeat_loop();
  NodeInfo info() const;
  void announce();   // Hello + retained Topology, after every connect
  void start_reporting();    // the state topic, Home Assistant discovery, JSON results of frames
  NodeState state() const;   // for the retained state topic

  NodeConfig cfg_;
  std::string model_;
  Topics topics_;
  Topology layout_;
  NodeSlice slice_;
  bool is_shard_;
  int replicas_;
  std::string input_topic_, input_filter_;
  DecodeLimits limits_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<FrameIntake> frames_;   // first stage only
  size_t node_count_ = 0;  // of the slice (its graph is moved into the executor)
  BoundedQueue<Work> intake_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> processed_{0}, handed_off_{0}, refused_{0}, expired_{0}, failed_{0};
  std::atomic<float> ms_per_frame_{0};
  struct Peer {
    float ms_per_frame = 0;
    double depth = 0;        // waiting requests at its last heartbeat
    double sent_since = 0;   // requests passed to it since
    std::chrono::steady_clock::time_point updated;   // its last heartbeat: only a heartbeat renews it
  };
  std::map<std::string, Peer> peers_;   // same stage and shard; touched on the Paho thread only
  LiveNodes live_;   // every node of the swarm, for routing around silent ones
  std::mutex callback_mu_;   // held by on_message; stop() takes it to know no callback is running
  std::thread worker_, heartbeat_;
  // Declared last: destroyed first, so no callback runs into a destroyed member.
  std::unique_ptr<MqttClient> client_;
  std::unique_ptr<Dispatcher> dispatcher_;
  ResultSpec result_spec_;
  std::unique_ptr<NodeReporter> reporter_;       // state topic, Home Assistant discovery
  std::unique_ptr<ResultPublisher> results_;     // JSON answers to camera frames
};

}  // namespace dnn
