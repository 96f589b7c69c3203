#include "swarm/local_swarm.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "engine/model.h"
#include "swarm/acl.h"
#include "swarm/client.h"
#include "swarm/plan.h"
#include "transport/loopback.h"
#include "transport/mqtt_client.h"
#include "transport/topics.h"

namespace dnn {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string install_dir() {
  if (const char* home = std::getenv("DNNSWARM_HOME")) return home;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // build/dnnswarm in a checkout, or <prefix>/bin/dnnswarm with data in <prefix>/share/dnnswarm.
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      for (const fs::path& cand : {dir, dir / "share" / "dnnswarm"})
        if (fs::exists(cand / "deploy" / "lenet5-swarm.json")) return cand.string();
    }
  }
  throw Error("cannot find dnnswarm's data (deploy/, models/, broker-config/) near " + exe.string() +
              "; set DNNSWARM_HOME to the folder that holds them");
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last `n` lines of a log, indented, for error messages.
std::string log_tail(const std::string& path, size_t n = 6) {
  std::istringstream ss(read_text(path));
  std::deque<std::string> lines;
  for (std::string line; std::getline(ss, line);) {
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "\n    " + l;
  return out.empty() ? " (it logged nothing)" : out;
}

// The project's broker config with its listeners replaced: one per address devices use, on `port`.
void write_broker_config(const std::string& base, const std::string& out_path, int port,
                         const std::vector<std::string>& addresses) {
  std::ifstream in(base);
  if (!in) throw IoError("cannot read broker config '" + base + "'");
  std::ofstream out(out_path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("listener ", 0) != 0) out << line << "\n";
  for (const auto& a : addresses) out << "listener " << port << " " << a << "\n";
  if (!out) throw IoError("cannot write " + out_path);
}

int64_t argmax(const Tensor& t) {
  const float* p = t.f32();
  return std::max_element(p, p + t.numel()) - p;
}

// Row i of a batch [N, ...] as a [1, ...] view.
Tensor frame(const Tensor& batch, int64_t i) {
  Shape s = batch.shape();
  const int64_t row = batch.numel() / s[0];
  s[0] = 1;
  return Tensor::wrap(s, DType::f32, const_cast<float*>(batch.f32()) + i * row, nullptr);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// Bytes of weights role (stage, shard k) loads: the constants its nodes use, and for a shard its
// rows/channels/columns of the split layer's weight and bias.
int64_t role_weight_bytes(const Graph& g, const StageSpec& stage, int k) {
  std::set<std::string> seen;
  int64_t bytes = 0;
  double fraction = 1;
  if (stage.sharded()) {
    const auto ranges = shard_ranges(g, stage.shard(0));
    fraction = static_cast<double>(ranges[k].size()) / split_extent(g, stage.shard(0));
  }
  for (size_t i = stage.node_begin; i < stage.node_end; ++i)
    for (const auto& v : g.nodes[i].inputs)
      if (g.is_constant(v) && seen.insert(v).second) bytes += static_cast<int64_t>(g.constants.at(v).bytes() * fraction);
  return bytes;
}

// One node of the plan and the device it runs in.
struct Role {
  NodeReport report;
  Device* device = nullptr;
  std::string log;
  std::vector<std::string> argv;   // to start it again
};

// A node that dies is started again, this many times per node at most (a node that cannot run at
// all ends the run instead of looping).
constexpr int kMaxRestarts = 5;

class Swarm {
 public:
  Swarm(const SwarmOptions& opts, const std::atomic<bool>* stop) : opts_(opts), stop_(stop) {}

  SwarmResult run() {
    const std::string home = opts_.plan_path.empty() || opts_.broker_config.empty() ? install_dir() : "";
    plan_path_ = fs::absolute(opts_.plan_path.empty() ? home + "/deploy/lenet5-swarm.json" : opts_.plan_path).string();
    const std::string broker_config = opts_.broker_config.empty() ? home + "/broker-config/mosquitto.conf" : opts_.broker_config;
    std::string input = opts_.input_path, labels = opts_.labels_path;
    if (opts_.plan_path.empty() && input.empty()) {   // the default demo: LeNet-5 on the held-out digits
      input = home + "/models/lenet5/test_inputs_all.npy";
      if (labels.empty()) labels = home + "/models/lenet5/test_labels_all.npy";
    }
    if (input.empty() && !opts_.serve) throw Error("swarm: --input is required with --plan (frames to send, .npy [N, ...])");
    if (opts_.external_broker && opts_.device.netns)
      throw Error("swarm: --netns needs the local broker (devices in their own namespaces reach only it)");

    // A bad plan or input fails here, before any process starts.
    Plan plan = read_plan(plan_path_);
    const Graph structure = load_model_structure(plan.model_path);
    resolve_plan(plan, structure);
    validate_plan(plan, structure);
    const Tensor inputs = opts_.serve ? Tensor() : read_npy(input);
    if (!opts_.serve && (inputs.dtype() != DType::f32 || inputs.rank() < 2 || inputs.dim(0) < 1))
      throw ShapeError(input + ": expected float32 frames [N, ...], got " + to_string(inputs.shape()));
    Tensor label_tensor;
    if (!labels.empty() && !opts_.serve) {
      label_tensor = read_npy(labels);
      if (label_tensor.dtype() != DType::i64 || label_tensor.numel() != inputs.dim(0))
        throw ShapeError(labels + ": expected " + std::to_string(inputs.dim(0)) + " int64 labels, got " +
                         to_string(label_tensor.shape()));
    }

    make_log_dir();
    DeviceSet devices;
    create_roles(plan, structure, devices);
    if (!opts_.external_broker) start_broker(devices, broker_config);
    start_nodes();
    wait_until_online();

    SwarmResult r = opts_.serve ? serve(plan) : drive(plan, inputs, label_tensor);
    r.plan_path = plan_path_;
    stop_nodes_and_collect(r);
    return r;
  }

  ~Swarm() {
    // Only the default folder is ours to delete; a --log-dir the user named stays.
    if (!opts_.keep_logs && opts_.log_dir.empty() && !log_dir_.empty()) {
      std::error_code ec;
      fs::remove_all(log_dir_, ec);
    } else if (!log_dir_.empty()) {
      std::cerr << "swarm: logs kept in " << log_dir_ << "\n";
    }
  }

 private:
  bool stopping() const { return stop_ && stop_->load(); }

  void make_log_dir() {
    log_dir_ = opts_.log_dir.empty() ? "/tmp/dnnswarm-" + std::to_string(::getpid()) : opts_.log_dir;
    fs::create_directories(log_dir_);
    ::chmod(log_dir_.c_str(), 0755);   // mosquitto drops to its own user after reading its config
  }

  void create_roles(const Plan& plan, const Graph& structure, DeviceSet& devices) {
    for (const auto& stage : plan.stages)
      for (int k = 0; k < stage.shards; ++k)
        for (int r = 0; r < stage.replicas; ++r) {
          Role role;
          role.report.stage = stage.name;
          role.report.shard = k;
          role.report.replica = r;
          role.report.weight_bytes = role_weight_bytes(structure, stage, k);
          role.report.id = plan_node_id(stage, k, r);   // the logins `dnnswarm acl` writes
          DeviceLimits lim = opts_.device;
          if (stage.cpu_quota_of(r) > 0 && !opts_.cpu_flag_wins) lim.cpu_quota = stage.cpu_quota_of(r);
          if (stage.memory_limit_mb > 0 && !opts_.memory_flag_wins) lim.memory_mb = stage.memory_limit_mb;
          role.device = &devices.add(role.report.id, lim);
          role.report.cpu_quota = role.device->limits().cpu_quota;
          role.report.memory_limit_mb = role.device->limits().memory_mb;
          role.log = log_dir_ + "/" + role.report.id + ".log";
          roles_.push_back(std::move(role));
        }
    if (!opts_.external_broker) broker_ = &devices.add("broker", DeviceLimits{});
  }

  // The broker the launcher's own clients use.
  BrokerConnection launcher_broker() const {
    return opts_.external_broker ? opts_.broker : BrokerConnection("tcp://127.0.0.1:" + std::to_string(port_));
  }

  // The connection flags of `dnnswarm node` for a node on the external broker. The password goes
  // through a file (credentials_dir) or the environment, which children inherit.
  std::vector<std::string> external_broker_args(const std::string& node_id) const {
    const BrokerConnection& b = opts_.broker;
    std::vector<std::string> args;
    for (const auto& url : b.urls) args.insert(args.end(), {"--broker", url});
    if (!opts_.credentials_dir.empty())
      args.insert(args.end(), {"--username", node_id, "--password-file", opts_.credentials_dir + "/" + node_id + ".password"});
    else if (!b.username.empty())
      args.insert(args.end(), {"--username", b.username});
    for (const auto& [flag, value] : {std::pair<const char*, std::string>{"--cafile", b.cafile}, {"--cert", b.cert}, {"--key", b.key}})
      if (!value.empty()) args.insert(args.end(), {flag, value});
    if (b.insecure) args.push_back("--insecure");
    return args;
  }

  // --serve: says where frames go, then keeps the nodes serving until stopped.
  SwarmResult serve(const Plan& plan) {
    const Topics topics;
    std::cout << "swarm: serving model '" << plan.model << "' with " << roles_.size() << " nodes on "
              << launcher_broker().describe() << ": frames go to " << topics.frames(plan.model, "<sensor>")
              << ", results come out on " << topics.results(plan.model, "<sensor>") << " (Ctrl-C stops)" << std::endl;
    while (!stopping()) {
      check_processes();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    SwarmResult r;
    r.model = plan.model;
    r.nodes = static_cast<int>(roles_.size());
    return r;
  }

  void start_broker(DeviceSet& devices, const std::string& base_config) {
    port_ = free_loopback_port();
    const std::string conf = log_dir_ + "/mosquitto.conf";
    write_broker_config(base_config, conf, port_, devices.host_addresses());
    broker_log_ = log_dir_ + "/mosquitto.log";
    broker_->start({"/usr/sbin/mosquitto", "-c", conf}, broker_log_);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!loopback_port_accepts(port_)) {
      int status = 0;
      if (broker_->poll_exit(&status))
        throw Error("the broker (/usr/sbin/mosquitto) " + broker_->describe_exit(status) + ":" + log_tail(broker_log_));
      if (Clock::now() > deadline) throw Error("the broker did not accept connections within 10 s:" + log_tail(broker_log_));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void start_nodes() {
    // DNNSWARM_NODE_BINARY: what to start instead of this executable (an emulator wrapper, when
    // this one runs under qemu-user and cannot exec itself).
    const char* env_binary = std::getenv("DNNSWARM_NODE_BINARY");
    const std::string binary = !opts_.node_binary.empty() ? opts_.node_binary
                               : env_binary && *env_binary ? env_binary
                                                           : fs::read_symlink("/proc/self/exe").string();
    if (opts_.external_broker && opts_.credentials_dir.empty() && !opts_.broker.password.empty())
      ::setenv(kPasswordEnv, opts_.broker.password.c_str(), 1);
    for (auto& role : roles_) {
      const std::string broker = "tcp://" + role.device->host_address() + ":" + std::to_string(port_);
      std::vector<std::string> argv = {binary,       "node",       "--broker", broker,        "--plan",
                                       plan_path_,   "--stage",    role.report.stage, "--shard",
                                       std::to_string(role.report.shard), "--id", role.report.id,
                                       "--threads",  "1"};
      if (opts_.external_broker) {
        const auto flags = external_broker_args(role.report.id);
        argv.erase(argv.begin() + 2, argv.begin() + 4);   // the local "--broker URL"
        argv.insert(argv.end(), flags.begin(), flags.end());
      }
      if (role.report.memory_limit_mb > 0) {
        argv.push_back("--memory-limit");
        argv.push_back(std::to_string(role.report.memory_limit_mb));
      }
      argv.insert(argv.end(), opts_.node_args.begin(), opts_.node_args.end());
      role.argv = argv;
      role.device->start(argv, role.log);
    }
  }

  // A node that has ended is reported and started again (its peers and the clients' re-sends carry
  // its requests meanwhile); one that keeps dying, or the broker ending, ends the run (throws).
  void check_processes() {
    for (auto& role : roles_) {
      int status = 0;
      if (!role.device->poll_exit(&status)) continue;
      const std::string how = role.device->describe_exit(status);
      if (role.report.restarts >= kMaxRestarts)
        throw Error("node '" + role.report.id + "' " + how + " after " + std::to_string(kMaxRestarts) +
                    " restarts:" + log_tail(role.log));
      ++role.report.restarts;
      std::fprintf(stderr, "swarm: node '%s' %s; restarting it (restart %d)\n", role.report.id.c_str(), how.c_str(),
                   role.report.restarts);
      role.device->start(role.argv, role.log);
    }
    int status = 0;
    if (broker_ && broker_->poll_exit(&status))
      throw Error("the broker " + broker_->describe_exit(status) + ":" + log_tail(broker_log_));
  }

  void wait_until_online() {
    Topics topics;
    std::mutex mu;
    std::set<std::string> online;
    std::map<std::string, std::string> id_of_topic;
    for (const auto& role : roles_) id_of_topic[topics.node_status(role.report.id)] = role.report.id;
    MqttOptions mo;
    mo.broker = launcher_broker();
    mo.client_id = "swarm-launcher-" + std::to_string(::getpid());
    MqttClient watcher(mo, [&](Inbound&& in) {
      std::lock_guard<std::mutex> lock(mu);
      if (*in.payload == "online") online.insert(id_of_topic[in.topic]);
      else online.erase(id_of_topic[in.topic]);
    });
    watcher.connect();
    for (const auto& [topic, id] : id_of_topic) watcher.subscribe(topic);
    const auto t0 = Clock::now();
    size_t shown = static_cast<size_t>(-1);
    for (;;) {
      check_processes();
      if (stopping()) throw Error("interrupted while the nodes were starting");
      size_t n;
      {
        std::lock_guard<std::mutex> lock(mu);
        n = online.size();
      }
      if (opts_.progress && n != shown) {
        std::fprintf(stderr, "swarm: %zu/%zu nodes online\n", n, roles_.size());
        shown = n;
      }
      if (n == roles_.size()) return;
      if (std::chrono::duration<double>(Clock::now() - t0).count() > opts_.ready_timeout_s) {
        std::string missing;
        for (const auto& role : roles_)
          if (!online.count(role.report.id)) missing += " " + role.report.id;
        throw Error("nodes not online after " + std::to_string(static_cast<int>(opts_.ready_timeout_s)) + " s:" + missing);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  SwarmResult drive(const Plan& plan, const Tensor& inputs, const Tensor& labels) {
    SwarmResult r;
    r.model = plan.model;
    r.nodes = static_cast<int>(roles_.size());
    r.frames = opts_.frames > 0 ? opts_.frames : inputs.dim(0);
    ClientOptions co;
    co.broker = launcher_broker();
    co.client_id = opts_.broker.username;   // with an ACL, a client's id is its login; else a fresh one
    co.model = plan.model;
    co.window = opts_.window;
    co.timeout_ms = opts_.timeout_ms;
    InferClient client(co);

    std::deque<std::pair<int64_t, std::future<InferResult>>> pending;
    std::vector<double> latencies, transits;
    int64_t correct = 0;
    // Takes the answered frames off the front; with `wait`, all of them, checking meanwhile that
    // every node still runs (a dead node would otherwise show only as timeouts, much later).
    auto collect = [&](bool wait) {
      while (!pending.empty()) {
        if (pending.front().second.wait_for(std::chrono::milliseconds(wait ? 200 : 0)) != std::future_status::ready) {
          if (!wait) return;
          check_processes();
          continue;
        }
        const int64_t i = pending.front().first;
        const InferResult res = pending.front().second.get();
        pending.pop_front();
        if (!res.ok() || res.outputs.empty()) {
          if (lost_reported_++ < 3) std::fprintf(stderr, "swarm: frame %lld lost: %s\n", (long long)i, res.error.c_str());
          continue;
        }
        ++r.answered;
        latencies.push_back(res.latency_ms);
        double compute = 0, queue = 0;
        for (const auto& h : res.hops) {
          compute += (h.finished_us - h.started_us) / 1000.0;
          queue += (h.started_us - h.received_us) / 1000.0;
        }
        r.compute_ms += compute;
        r.queue_ms += queue;
        r.transit_ms += res.latency_ms - compute - queue;
        transits.push_back(res.latency_ms - compute - queue);
        if (!labels.empty() && argmax(res.outputs[0].tensor) == labels.i64()[i % labels.numel()]) ++correct;
      }
    };
    const auto t0 = Clock::now();
    auto last_progress = t0;
    int64_t sent = 0;
    for (; sent < r.frames && !stopping(); ++sent) {
      pending.emplace_back(sent, client.submit({{"", frame(inputs, sent % inputs.dim(0))}}));
      collect(false);
      check_processes();
      if (opts_.progress && Clock::now() - last_progress > std::chrono::milliseconds(500)) {
        last_progress = Clock::now();
        const double s = std::chrono::duration<double>(last_progress - t0).count();
        std::fprintf(stderr, "swarm: %lld/%lld frames answered, %.1f images/s\n", (long long)r.answered,
                     (long long)r.frames, r.answered / s);
      }
    }
    collect(true);
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (stopping()) r.frames = sent;   // interrupted: report what was sent
    r.lost = r.frames - r.answered;
    r.correct = labels.empty() ? -1 : correct;
    r.images_per_s = r.seconds > 0 ? r.answered / r.seconds : 0;
    if (r.answered > 0) {
      r.compute_ms /= r.answered;
      r.queue_ms /= r.answered;
      r.transit_ms /= r.answered;
    }
    r.transit_p50_ms = percentile(transits, 0.5);
    r.latency_p50_ms = percentile(latencies, 0.5);
    r.latency_p99_ms = percentile(latencies, 0.99);
    return r;
  }

  void stop_nodes_and_collect(SwarmResult& r) {
    std::vector<Device*> nodes;
    for (auto& role : roles_) {
      role.report.peak_rss_bytes = role.device->peak_rss_bytes();
      nodes.push_back(role.device);
    }
    // Nodes first, while the broker still takes their "offline"; each prints its counters on exit.
    const std::vector<int> statuses = DeviceSet::stop_together(nodes, 5.0);
    if (broker_) broker_->stop(2.0);
    for (size_t i = 0; i < roles_.size(); ++i) {
      Role& role = roles_[i];
      if (!(WIFEXITED(statuses[i]) && WEXITSTATUS(statuses[i]) == 0))
        std::fprintf(stderr, "swarm: warning: node '%s' %s when stopped\n", role.report.id.c_str(),
                     role.device->describe_exit(statuses[i]).c_str());
      std::istringstream ss(read_text(role.log));
      for (std::string line; std::getline(ss, line);)
        if (line.rfind("{\"node\":", 0) == 0) role.report.stats_json = line;
      r.restarts += role.report.restarts;
      r.node_reports.push_back(role.report);
    }
  }

  const SwarmOptions& opts_;
  const std::atomic<bool>* stop_;
  std::string plan_path_, log_dir_, broker_log_;
  int port_ = 0;
  std::vector<Role> roles_;
  Device* broker_ = nullptr;
  int lost_reported_ = 0;
};

}  // namespace

SwarmResult run_local_swarm(const SwarmOptions& opts, const std::atomic<bool>* stop) {
  Swarm swarm(opts, stop);
  return swarm.run();
}

std::string swarm_result_json(const SwarmResult& r, bool details) {
  using json = nlohmann::ordered_json;
  json j;
  j["frames"] = r.frames;
  j["correct"] = r.correct < 0 ? json(nullptr) : json(r.correct);
  j["accuracy"] = r.correct < 0 || r.frames == 0 ? json(nullptr) : json(static_cast<double>(r.correct) / r.frames);
  j["images_per_s"] = std::round(r.images_per_s * 100) / 100;
  j["lost"] = r.lost;
  j["nodes"] = r.nodes;
  j["restarts"] = r.restarts;
  j["model"] = r.model;
  j["seconds"] = std::round(r.seconds * 1000) / 1000;
  j["latency_ms_p50"] = std::round(r.latency_p50_ms * 100) / 100;
  j["latency_ms_p99"] = std::round(r.latency_p99_ms * 100) / 100;
  if (details) {
    j["compute_ms"] = std::round(r.compute_ms * 100) / 100;
    j["queue_ms"] = std::round(r.queue_ms * 100) / 100;
    j["transit_ms"] = std::round(r.transit_ms * 100) / 100;
    j["transit_ms_p50"] = std::round(r.transit_p50_ms * 1000) / 1000;
    json nodes = json::array();
    for (const auto& n : r.node_reports) {
      json e = {{"id", n.id}, {"stage", n.stage}, {"shard", n.shard}, {"replica", n.replica}, {"restarts", n.restarts}};
      if (n.cpu_quota > 0) e["cpu_quota"] = n.cpu_quota;
      if (n.memory_limit_mb > 0) e["memory_mb"] = n.memory_limit_mb;
      e["weight_mb"] = std::round(n.weight_bytes / 1048576.0 * 10) / 10;
      e["peak_rss_mb"] = n.peak_rss_bytes < 0 ? json(nullptr) : json(std::round(n.peak_rss_bytes / 1048576.0 * 10) / 10);
      const json stats = json::parse(n.stats_json, nullptr, false);
      if (!stats.is_discarded())
        for (auto it = stats.begin(); it != stats.end(); ++it)
          if (it.key() != "node") e[it.key()] = it.value();
      nodes.push_back(std::move(e));
    }
    j["per_node"] = std::move(nodes);
  }
  return j.dump();
}

}  // namespace dnn
