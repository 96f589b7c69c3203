// The local emulated swarm behind `dnnswarm swarm`: a private Mosquitto on a free port, every role
// of a plan as its own `dnnswarm node` process (each optionally inside an emulated device, see
// devices.h), frames driven through the InferClient, and everything torn down at the end — also
// on Ctrl-C. A node that dies is reported on stderr and started again, and the run goes on (the
// client re-sends what it held); the result counts restarts.
//
//   run_local_swarm(opts, &stop)
//     1. load + validate the plan against its model   (a bad plan fails before anything starts)
//     2. one Device per role; then the broker, listening on every address a device can reach
//     3. start the nodes; wait for each one's retained "online" on <prefix>/node/<id>/status
//     4. submit the frames (window of requests in flight), count correct answers and lost frames
//     5. stop nodes and broker, remove cgroups/namespaces; return the figures
// With external_broker, step 2 starts no broker; with serve, step 4 waits for `stop` instead.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "swarm/devices.h"
#include "transport/connection.h"

namespace dnn {

struct SwarmOptions {
  std::string plan_path;            // empty: deploy/lenet5-swarm.json of the install
  std::string input_path;           // frames: .npy [N, ...]; each row is one request (cycled)
  std::string labels_path;          // int64 .npy [N]: count top-1 correct answers (optional)
  int64_t frames = 0;               // 0: every row of the input once
  DeviceLimits device;              // for every node; a stage's cpu_quota/memory_mb hints win ...
  bool cpu_flag_wins = false;       // ... unless these say device.cpu_quota / device.memory_mb were
  bool memory_flag_wins = false;    //     given explicitly (command-line flags beat the plan's defaults)
  std::string broker_config;        // empty: broker-config/mosquitto.conf of the install
  std::string node_binary;          // empty: this executable
  std::vector<std::string> node_args;   // extra flags for every `dnnswarm node`
  int window = 32;                  // requests in flight
  int timeout_ms = 30000;           // per request
  double ready_timeout_s = 120;     // for all nodes to come online
  bool progress = true;             // progress on stderr
  bool details = false;             // per-node figures in the result
  std::string log_dir;              // empty: /tmp/dnnswarm-<pid>, removed at the end unless keep_logs
  bool keep_logs = false;
  // Another broker instead of a private Mosquitto (--broker): the nodes and the launcher connect to
  // it with these settings; the password reaches the nodes through their environment, never argv.
  bool external_broker = false;
  BrokerConnection broker;
  // Folder of <node id>.password files (`dnnswarm acl --out-dir`): each node then logs in as its id.
  std::string credentials_dir;
  // Send no frames: keep the nodes serving until `stop`, after one line on stdout saying where
  // frames go and results come out.
  bool serve = false;
};

struct NodeReport {
  std::string id, stage;
  int shard = 0, replica = 0;
  double cpu_quota = 0;
  int64_t memory_limit_mb = 0;
  int64_t weight_bytes = 0;         // of its slice of the model
  int64_t peak_rss_bytes = -1;      // measured just before it was stopped
  int restarts = 0;                 // times it died and was started again
  std::string stats_json;           // the line the node printed when it stopped ({"node":..,"processed":..})
};

struct SwarmResult {
  int64_t frames = 0, answered = 0, correct = -1, lost = 0;   // correct = -1 without labels
  double seconds = 0, images_per_s = 0, latency_p50_ms = 0, latency_p99_ms = 0;
  // Where a request's time goes, mean over answered frames: computing in the nodes, waiting in
  // their queues, and the rest — in transit (serialization, broker, network, client).
  double compute_ms = 0, queue_ms = 0, transit_ms = 0, transit_p50_ms = 0;
  int nodes = 0;
  int restarts = 0;                 // of all nodes
  std::string model, plan_path;
  std::vector<NodeReport> node_reports;
};

// Runs the whole thing. `stop` (set from a signal handler) ends it early: the result then covers
// the frames answered so far. Throws Error on a bad plan, a node that keeps dying (with the reason
// and the end of its log), or a broker that does not come up or dies — after tearing down.
SwarmResult run_local_swarm(const SwarmOptions& opts, const std::atomic<bool>* stop = nullptr);

// One JSON line: {"frames":…, "correct":…, "accuracy":…, "images_per_s":…, "lost":…, "nodes":…, …}
std::string swarm_result_json(const SwarmResult& r, bool details);

// The folder holding deploy/, models/ and broker-config/: $DNNSWARM_HOME, else the first of the
// executable's folder and its parents (or <prefix>/share/dnnswarm) that has deploy/lenet5-swarm.json.
std::string install_dir();

}  // namespace dnn
