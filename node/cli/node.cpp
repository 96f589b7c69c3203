// dnnswarm node: serves one role (stage, shard, replica) of a deployment plan over MQTT until
// SIGINT/SIGTERM. Options come from flags and, optionally, a config file of the same keys
// (key = value lines); flags win. The wire protocol is in docs/protocol.md.
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <thread>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli/common.h"
#include "core/error.h"
#include "swarm/node_runtime.h"
#include "swarm/plan.h"

namespace dnn::cli {

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

int cmd_node(int argc, char** argv) {
  NodeConfig cfg;
  BrokerFlags broker;
  std::string plan_path, config_path, model_name;
  po::options_description opts("options (also accepted as key = value lines in --config)");
  opts.add_options()
      ("config,c", po::value(&config_path), "config file with any of these options")
      ("plan,p", po::value(&plan_path), "deployment plan (JSON, docs/plans.md) [required]")
      ("stage,s", po::value(&cfg.stage), "stage of the plan to serve: its name or index [required]")
      ("shard,k", po::value(&cfg.shard)->default_value(0), "shard of a sharded stage")
      ("id", po::value(&cfg.node_id), "node id, unique on the broker: MQTT client id and topic level [required]")
      ("model,m", po::value(&model_name), "model name expected in the plan (refuse to start on another)")
      ("threads,t", po::value(&cfg.threads)->default_value(1), "kernel threads")
      ("queue,q", po::value(&cfg.queue)->default_value(cfg.queue),
       "intake queue capacity; requests beyond it are refused with an error")
      ("handoff-depth", po::value(&cfg.handoff_depth)->default_value(cfg.handoff_depth),
       "requests waiting from which a replica passes arrivals to a peer expected to finish them sooner")
      ("memory-limit", po::value(&cfg.memory_limit_mb)->default_value(0),
       "MB this device has: refuse a slice whose weights + 64 MB runtime exceed it (0 = the stage's memory_mb in the plan, if any)")
      ("heartbeat-ms", po::value(&cfg.heartbeat_ms)->default_value(cfg.heartbeat_ms), "heartbeat period (peers balance load on these figures)")
      ("prefix", po::value(&cfg.prefix)->default_value(cfg.prefix), "MQTT topic prefix")
      ("join-capacity", po::value(&cfg.join_capacity)->default_value(cfg.join_capacity),
       "shard joins this node may have open at once")
      ("max-message-mb", po::value(&cfg.max_message_mb)->default_value(cfg.max_message_mb),
       "largest message accepted")
      ("buffer-cache-mb", po::value(&cfg.buffer_cache_mb)->default_value(cfg.buffer_cache_mb),
       "MB of freed activations kept for the next frame (faster, more memory); -1 = none with a memory limit, else 64")
      ("min-frame-ms", po::value(&cfg.min_frame_ms)->default_value(0),
       "pad each frame to this many ms (emulates a slower device; 0 = off)")
      ("frame-topic", po::value(&cfg.frames.topics)->composing(),
       "an existing camera topic as FILTER=SENSOR (SENSOR '+': the level the filter's '+' matched); repeatable")
      ("frame-budget-ms", po::value(&cfg.frames.budget_ms)->default_value(cfg.frames.budget_ms),
       "a camera frame's deadline after arrival (0 = none)")
      ("max-frame-bytes", po::value(&cfg.frames.max_bytes)->default_value(cfg.frames.max_bytes),
       "largest camera frame accepted")
      ("max-frame-pixels", po::value(&cfg.frames.max_pixels)->default_value(cfg.frames.max_pixels),
       "largest image accepted, width x height from its header")
      ("ha-discovery", po::value(&cfg.ha_discovery)->default_value(cfg.ha_discovery),
       "announce this node and the sensor streams it answers to Home Assistant (true/false)")
      ("ha-prefix", po::value(&cfg.ha_prefix)->default_value(cfg.ha_prefix),
       "Home Assistant's MQTT discovery prefix (as set in its MQTT integration)")
      ("state-interval-ms", po::value(&cfg.state_interval_ms)->default_value(cfg.state_interval_ms),
       "period of the node's retained state (<prefix>/node/<id>/state: frames/s, latency, queue, memory)");
  add_broker_options(opts, broker);
  po::variables_map vm;
  if (!parse(argc, argv, "--plan P --stage S --id ID [--shard K] [--broker URL] [options]", opts, vm)) return 0;
  // For tests only: the node's wall clock moved by this many ms, as on a device without a real-time
  // clock. No deadline depends on it (budgets are measured locally).
  if (const char* offset = std::getenv("DNNSWARM_TEST_CLOCK_OFFSET_MS")) set_clock_offset_ms(std::atoll(offset));
  if (!config_path.empty()) {
    po::store(po::parse_config_file<char>(config_path.c_str(), opts), vm);
    po::notify(vm);
  }
  for (const char* key : {"plan", "stage", "id"})
    if (!vm.count(key)) throw po::required_option(key);
  cfg.broker = resolve_broker(broker);

  Plan plan = read_plan(plan_path);
  if (!model_name.empty() && model_name != plan.model)
    throw Error("unknown model '" + model_name + "': plan " + plan_path + " serves '" + plan.model + "'");
  // The plan is checked against the model's structure (a .dnns header: no weights); then only the
  // slice's bytes are read.
  Graph structure = load_model_structure(plan.model_path);
  resolve_plan(plan, structure);
  NodeSlice slice = load_node_slice(plan, structure, cfg);
  structure = Graph();
#ifdef __GLIBC__
  // On a device with a memory limit, large allocations (message payloads: 3.2 MB per frame out of
  // VGG16's first stage, copied on the way) get their own mapping, returned when freed. glibc's
  // default raises this threshold after the first such free and then keeps them in its heap:
  // measured 10 MB more peak RSS. Fresh pages cost about 0.6 ms per MB.
  if (node_memory_limit_mb(cfg, slice.stage) > 0) mallopt(M_MMAP_THRESHOLD, 128 << 10);
#endif

  NodeRuntime node(cfg, plan, std::move(slice));
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  node.start();
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto st = node.stats();
  node.stop();
  std::printf("{\"node\":\"%s\",\"processed\":%llu,\"handed_off\":%llu,\"refused\":%llu,\"expired\":%llu,\"failed\":%llu,\"ms_per_frame\":%.1f,\"frames_accepted\":%llu,\"frames_refused\":%llu}\n",
              cfg.node_id.c_str(), (unsigned long long)st.processed, (unsigned long long)st.handed_off,
              (unsigned long long)st.refused, (unsigned long long)st.expired, (unsigned long long)st.failed, st.ms_per_frame,
              (unsigned long long)st.frames_accepted, (unsigned long long)st.frames_refused);
  return 0;
}

}  // namespace dnn::cli
