#include "swarm/node_runtime.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/memory_stats.h"
#include "engine/model.h"
#include "format/shard.h"

namespace dnn {

namespace {

int find_stage(const Plan& plan, const std::string& stage) {
  if (!stage.empty() && std::all_of(stage.begin(), stage.end(), [](unsigned char c) { return std::isdigit(c); })) {
    const int i = std::stoi(stage);
    if (i < static_cast<int>(plan.stages.size())) return i;
    throw Error("plan for '" + plan.model + "' has " + std::to_string(plan.stages.size()) + " stages, there is no stage " +
                stage);
  }
  const StageSpec& s = plan.stage(stage);   // throws, naming the plan's stages
  return static_cast<int>(&s - plan.stages.data());
}

uint64_t constant_bytes(const Graph& g) {
  uint64_t n = 0;
  for (const auto& c : g.constants) n += c.second.bytes();
  return n;
}

// The weight bytes the slice will hold, from constant shapes alone: a shard keeps its share of the
// split layer's constants.
uint64_t slice_weight_bytes(const Graph& model, const LoadSpec& spec) {
  std::set<std::string> used;
  for (size_t i = spec.node_begin; i < spec.node_end; ++i)
    for (const auto& in : model.nodes[i].inputs)
      if (model.is_constant(in)) used.insert(in);
  double bytes = 0;
  for (const auto& name : used) bytes += static_cast<double>(model.constants.at(name).bytes());
  if (spec.shard) bytes *= static_cast<double>(shard_ranges(model, *spec.shard).at(spec.shard->index).size()) /
                           static_cast<double>(split_extent(model, *spec.shard));
  return static_cast<uint64_t>(bytes);
}

}  // namespace

Topology plan_topology(const Plan& plan) {
  Topology t;
  t.model = plan.model;
  for (const auto& s : plan.stages) t.shard_counts.push_back(s.sharded() ? s.shards : 1);
  return t;
}

int64_t node_memory_limit_mb(const NodeConfig& cfg, const StageSpec& stage) {
  return cfg.memory_limit_mb > 0 ? cfg.memory_limit_mb : stage.memory_limit_mb;
}

size_t node_buffer_cache_bytes(const NodeConfig& cfg, const StageSpec& stage) {
  if (cfg.buffer_cache_mb >= 0) return static_cast<size_t>(cfg.buffer_cache_mb) << 20;
  return node_memory_limit_mb(cfg, stage) > 0 ? 0 : ExecOptions{}.buffer_cache_bytes;
}

NodeSlice load_node_slice(const Plan& plan, const Graph& model, const NodeConfig& cfg) {
  validate_plan(plan, model);   // covers the model, shard nodes alone in their stages, ...
  NodeSlice slice;
  slice.stage_index = find_stage(plan, cfg.stage);
  slice.stage = plan.stages[slice.stage_index];
  const StageSpec& s = slice.stage;
  const std::string role = "stage '" + s.name + "'" + (s.sharded() ? " shard " + std::to_string(cfg.shard) : "");
  if (cfg.shard < 0 || cfg.shard >= (s.sharded() ? s.shards : 1))
    throw Error(role + ": no such shard; stage '" + s.name + "' has " + std::to_string(s.sharded() ? s.shards : 1));

  LoadSpec spec;
  spec.node_begin = s.node_begin;
  spec.node_end = s.node_end;
  if (s.sharded()) {
    spec.shard = s.shard(cfg.shard);
    slice.join_attrs = fused_activation(model.nodes[s.node_begin]);
  }
  const int64_t limit_mb = node_memory_limit_mb(cfg, s);
  const uint64_t weights = slice_weight_bytes(model, spec);
  if (limit_mb > 0 && weights + kNodeOverheadBytes > static_cast<uint64_t>(limit_mb) << 20)
    throw Error(role + " of model '" + plan.model + "' does not fit the memory limit: its weights take " +
                std::to_string(weights >> 20) + " MB plus " + std::to_string(kNodeOverheadBytes >> 20) +
                " MB for the runtime, the limit is " + std::to_string(limit_mb) +
                " MB; give the stage more shards or stages");

  const bool structure_only =
      std::any_of(model.constants.begin(), model.constants.end(), [](const auto& c) { return c.second.raw() == nullptr; });
  slice.graph = structure_only ? load_model(plan.model_path, spec) : slice_graph(model, spec);
  slice.weight_bytes = constant_bytes(slice.graph);
  return slice;
}

NodeRuntime::NodeRuntime(NodeConfig cfg, const Plan& plan, NodeSlice slice)
    : cfg_(std::move(cfg)),
      model_(plan.model),
      topics_(cfg_.prefix),
      layout_(plan_topology(plan)),
      slice_(std::move(slice)),
      is_shard_(slice_.stage.sharded()),
      replicas_(slice_.stage.replicas),
      intake_(static_cast<size_t>(std::max(1, cfg_.queue))),
      live_(3 * static_cast<uint64_t>(std::max(1, cfg_.heartbeat_ms))),
      result_spec_(plan.output.value_or(ResultSpec{})) {
  check_topic_name(cfg_.node_id, "node id");
  check_topic_name(model_, "model name");
  const int s = slice_.stage_index;
  input_topic_ = is_shard_ ? topics_.shard_in(model_, s, cfg_.shard) : topics_.stage_in(model_, s);
  input_filter_ = is_shard_ ? topics_.shard_share(model_, s, cfg_.shard) : topics_.stage_share(model_, s);
  limits_.max_message_bytes = cfg_.max_message_mb << 20;
  node_count_ = slice_.graph.nodes.size();
  // Moved, not copied: the executor drops each weight once its layer has packed it.
  ExecOptions exec{cfg_.threads};
  exec.buffer_cache_bytes = node_buffer_cache_bytes(cfg_, slice_.stage);
  executor_ = std::make_unique<Executor>(std::move(slice_.graph), exec);
  frames_ = make_frame_intake(cfg_.frames, topics_, plan, cfg_.node_id, s, is_shard_, executor_->inputs().at(0));
}

NodeRuntime::~NodeRuntime() { stop(); }

NodeInfo NodeRuntime::info() const {
  NodeInfo i;
  i.node_id = cfg_.node_id;
  i.model = model_;
  i.role = is_shard_ ? NodeRole::Shard : NodeRole::Stage;
  i.stage = slice_.stage_index;
  i.shard_index = cfg_.shard;
  i.shard_count = is_shard_ ? slice_.stage.shards : 1;
  i.caps.cores = static_cast<int>(std::thread::hardware_concurrency());
  i.caps.threads = cfg_.threads;
  i.caps.memory_limit_bytes = static_cast<uint64_t>(std::max<int64_t>(0, cfg_.memory_limit_mb)) << 20;
  i.caps.weight_bytes = slice_.weight_bytes;
  i.caps.ms_per_frame = ms_per_frame_;
  return i;
}

void NodeRuntime::announce() {
  client_->try_publish(topics_.hello(cfg_.node_id), encode(Hello{info()}));
  client_->try_publish(topics_.topology(model_), encode(layout_), true);
}

void NodeRuntime::start() {
  MqttOptions mo;
  mo.broker = cfg_.broker;
  mo.client_id = cfg_.node_id;
  mo.status_topic = topics_.node_status(cfg_.node_id);
  client_ = std::make_unique<MqttClient>(mo, [this](Inbound&& in) { on_message(std::move(in)); });
  dispatcher_ = std::make_unique<Dispatcher>(*client_, topics_, layout_, cfg_.node_id, cfg_.join_capacity, &live_);
  start_reporting();
  running_ = true;
  worker_ = std::thread([this] { worker_loop(); });
  // Every node hears every heartbeat and status: senders steer requests around silent replicas, and
  // anyone may send a re-sent request straight to this node's work topic.
  std::vector<std::string> filters = {input_filter_, topics_.node_in(cfg_.node_id), topics_.node_work(cfg_.node_id),
                                      topics_.heartbeat("+"), topics_.node_status("+")};
  if (frames_) frames_->start(*client_);
  for (const auto& f : frames_ ? frames_->filters() : std::vector<std::string>{}) filters.push_back(f);
  for (const auto& f : reporter_->filters()) filters.push_back(f);
  // Known before connecting, the subscriptions are made by the connected handler ahead of the
  // retained "online": a node shown online receives its input. After connecting they are made once
  // more, waiting for each SUBACK, before the Hello. Reconnects resubscribe and announce again.
  for (const auto& f : filters) client_->subscribe(f);
  client_->connect();
  for (const auto& f : filters) client_->subscribe(f);
  client_->on_connected([this] {
    announce();
    reporter_->on_connected();
  });
  announce();
  reporter_->on_connected();
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
  log_line(cfg_.node_id, "serving " + model_ + " stage " + std::to_string(slice_.stage_index) + " ('" +
                             slice_.stage.name + "')" + (is_shard_ ? " shard " + std::to_string(cfg_.shard) : "") +
                             " on " + input_filter_ + ", " + std::to_string(node_count_) + " nodes, " +
                             std::to_string(slice_.weight_bytes >> 10) + " KB of weights, " +
                             std::to_string(node_buffer_cache_bytes(cfg_, slice_.stage) >> 20) +
                             " MB of activation cache");
}

void NodeRuntime::stop() {
  {
    std::lock_guard<std::mutex> lk(callback_mu_);
    if (!running_) return;
    running_ = false;   // from here on on_message returns at once
  }
  intake_.close();   // the worker finishes the request in hand and leaves the rest
  if (heartbeat_.joinable()) heartbeat_.join();
  client_->flush(std::chrono::milliseconds(2000));
  client_->close();   // a worker waiting for outbox room (broker gone) gives up
  if (worker_.joinable()) worker_.join();
  dispatcher_.reset();
  client_.reset();   // first: its connected handler calls the reporter
  results_.reset();
  reporter_.reset();
}

NodeRuntime::Stats NodeRuntime::stats() const {
  return {processed_, handed_off_, refused_, expired_, failed_, static_cast<int>(intake_.size()), ms_per_frame_,
          frames_ ? frames_->accepted() : 0, frames_ ? frames_->refused() : 0};
}

void NodeRuntime::on_message(Inbound&& in) {
  std::lock_guard<std::mutex> lk(callback_mu_);
  if (!running_) return;
  if (reporter_->handle(in)) return;   // Home Assistant's status, not a request
  const uint64_t received_us = unix_us();
  if (const std::string sensor = frames_ ? frames_->sensor_of(in.topic) : ""; !sensor.empty()) {
    auto frame = frames_->admit(std::move(in), sensor);   // sized here, decoded on the worker
    if (frame && !intake_.try_push({{}, received_us, 0, frame}))
      frames_->refuse(*frame, "overloaded, its intake queue of " + std::to_string(intake_.capacity()) + " is full");
    return;
  }
  const std::string gone = live_.status_message(topics_, in.topic, *in.payload, steady_ms());
  if (!gone.empty()) {
    if (*in.payload == "offline") peers_.erase(gone);   // a dead peer gets no more handoffs
    return;
  }
  Message decoded;
  try {
    decoded = decode_message(in.payload, limits_);
  } catch (const MessageError& e) {
    log_line(cfg_.node_id, "dropped a message on " + in.topic + ": " + e.what());
    if (!e.reply_to.empty()) dispatcher_->report_error(e.request_id, e.reply_to, cfg_.node_id + ": " + e.what());
    return;
  }
  if (auto* hb = std::get_if<Heartbeat>(&decoded)) {
    live_.heard(*hb, steady_ms());
    on_peer_heartbeat(*hb);
    return;
  }
  auto* msg = std::get_if<TensorMessage>(&decoded);
  if (!msg) return;
  if (in.topic == topics_.node_in(cfg_.node_id)) {
    dispatcher_->post_partial(std::move(*msg));
    return;
  }
  if (in.topic != input_topic_ && in.topic != topics_.node_work(cfg_.node_id)) return;
  if (msg->model != model_ || msg->stage != slice_.stage_index || (is_shard_ && msg->shard_index != cfg_.shard)) {
    dispatcher_->report_error(msg->request_id, msg->reply_to,
                              cfg_.node_id + ": got a request for model '" + msg->model + "' stage " +
                                  std::to_string(msg->stage) + " shard " + std::to_string(msg->shard_index) +
                                  ", but serves '" + model_ + "' stage " + std::to_string(slice_.stage_index) +
                                  " shard " + std::to_string(cfg_.shard));
    return;
  }
  // Busy: a peer that will finish it sooner takes it (once; a passed request stays where it lands).
  if (in.topic == input_topic_ && msg->handoffs == 0) {
    const std::string peer = faster_peer();
    if (!peer.empty()) {
      ++msg->handoffs;
      if (client_->try_publish(topics_.node_work(peer), encode(*msg))) {
        ++handed_off_;
        return;
      }
      --msg->handoffs;
    }
  }
  // The time left, on this node's own clock from here on: no two devices' clocks are compared.
  const uint64_t budget = budget_of(*msg);
  dispatcher_->report_progress(*msg, false);
  const std::string id = msg->request_id, reply_to = msg->reply_to;
  if (!intake_.try_push({std::move(*msg), received_us, steady_ms() + budget})) {
    ++refused_;
    dispatcher_->report_error(id, reply_to,
                              cfg_.node_id + ": overloaded, its intake queue of " + std::to_string(intake_.capacity()) +
                                  " requests is full");
  }
}

void NodeRuntime::on_peer_heartbeat(const Heartbeat& hb) {
  const NodeInfo& p = hb.info;
  if (p.node_id == cfg_.node_id || p.model != model_ || p.stage != slice_.stage_index || p.shard_index != cfg_.shard)
    return;
  peers_[p.node_id] = {p.caps.ms_per_frame, static_cast<double>(hb.queue_depth), 0, std::chrono::steady_clock::now()};
}

std::string NodeRuntime::faster_peer() {
  const double waiting = static_cast<double>(intake_.size());
  if (peers_.empty() || waiting < cfg_.handoff_depth) return "";
  const double my_ms = ms_per_frame_ > 0 ? ms_per_frame_.load() : 1.0;
  const auto now = std::chrono::steady_clock::now();
  const auto stale = std::chrono::milliseconds(3 * cfg_.heartbeat_ms);
  std::string best;
  double best_delay = (waiting + 1) * my_ms;   // when a new arrival would finish here
  for (auto& [id, peer] : peers_) {
    if (now - peer.updated > stale) continue;   // gone quiet: maybe gone
    const double ms = peer.ms_per_frame > 0 ? peer.ms_per_frame : my_ms;
    // Since its heartbeat the peer has worked its queue down at its own speed.
    const double since = std::chrono::duration<double, std::milli>(now - peer.updated).count();
    const double depth = std::max(0.0, peer.depth - since / ms) + peer.sent_since;
    const double delay = (depth + 1) * ms;
    if (delay < best_delay) best_delay = delay, best = id;
  }
  // Count what we send until its next heartbeat says better. Sending does not make the peer fresh:
  // a peer that stops heartbeating stops getting handoffs.
  if (!best.empty()) peers_[best].sent_since += 1;
  return best;
}

uint64_t NodeRuntime::budget_of(const TensorMessage& msg) {
  if (msg.budget_ms != 0) return msg.budget_ms;
  const uint64_t now = unix_ms();
  return msg.deadline_ms == 0 ? kDefaultBudgetMs : msg.deadline_ms > now ? msg.deadline_ms - now : 0;
}

void NodeRuntime::worker_loop() {
  while (running_) {
    auto work = intake_.pop_for(std::chrono::milliseconds(100));
    if (!work) continue;
    if (work->frame) {
      auto request = frames_->request(*work->frame);   // refusals are reported there
      if (!request) continue;
      work->msg = std::move(*request);
      work->deadline_ms = steady_ms() + budget_of(work->msg);
    }
    const std::string id = work->msg.request_id, reply_to = work->msg.reply_to;
    try {
      process(*work);
    } catch (const std::exception& e) {
      ++failed_;
      dispatcher_->report_error(id, reply_to, cfg_.node_id + ": " + e.what());
    }
  }
}

void NodeRuntime::process(Work& w) {
  TensorMessage& msg = w.msg;
  const std::string where = cfg_.node_id + " (stage " + std::to_string(slice_.stage_index) + ")";
  if (steady_ms() > w.deadline_ms) {
    ++expired_;
    dispatcher_->report_error(msg.request_id, msg.reply_to, where + ": deadline passed before it was computed");
    return;
  }
  // Inputs by value name; a single tensor feeds a single-input slice whatever its name (clients
  // need not know the model's input name).
  const auto& want = executor_->inputs();
  std::vector<Tensor> inputs;
  if (want.size() == 1 && msg.tensors.size() == 1) {
    inputs.push_back(msg.tensors[0].tensor);
  } else {
    for (const auto& v : want) {
      auto it = std::find_if(msg.tensors.begin(), msg.tensors.end(), [&](const NamedTensor& t) { return t.name == v.name; });
      if (it == msg.tensors.end()) throw ShapeError(where + ": the request lacks input '" + v.name + "'");
      inputs.push_back(it->tensor);
    }
  }
  Hop hop{cfg_.node_id, slice_.stage_index, is_shard_ ? cfg_.shard : -1, w.received_us, unix_us(), 0};
  std::vector<Tensor> outputs = executor_->run(inputs);
  inputs.clear();
  if (cfg_.min_frame_ms > 0) {
    const uint64_t until = hop.started_us + static_cast<uint64_t>(cfg_.min_frame_ms * 1000);
    const uint64_t now = unix_us();
    if (now < until) std::this_thread::sleep_for(std::chrono::microseconds(until - now));
  }
  hop.finished_us = unix_us();
  const float ms = (hop.finished_us - hop.started_us) / 1000.0f;
  ms_per_frame_ = ms_per_frame_ == 0 ? ms : 0.9f * ms_per_frame_ + 0.1f * ms;

  msg.tensors.clear();   // releases the input payload
  for (size_t i = 0; i < outputs.size(); ++i) msg.tensors.push_back({executor_->outputs()[i], std::move(outputs[i])});
  msg.hops.push_back(hop);
  ++processed_;
  // Sent on even when its time ran out meanwhile: the next stage reports that, and a result is
  // still worth more to its requester than an error.
  const uint64_t now = steady_ms();
  msg.budget_ms = static_cast<uint32_t>(now < w.deadline_ms ? w.deadline_ms - now : 1);
  TensorMessage done;   // what the requester needs to hear that this hop is over
  done.request_id = msg.request_id;
  done.stage = slice_.stage_index;
  done.shard_index = is_shard_ ? cfg_.shard : 0;
  done.attempt = msg.attempt;
  done.ack_topic = msg.ack_topic;
  if (!is_shard_) {
    dispatcher_->forward(std::move(msg), slice_.stage_index + 1);
    dispatcher_->report_progress(done, true);
    return;
  }
  if (msg.join_topic.empty()) throw Error(where + ": a shard request without a join topic");
  msg.stage = slice_.stage_index;
  msg.shard_index = cfg_.shard;
  msg.shard_count = slice_.stage.shards;
  msg.join_axis = static_cast<JoinAxis>(slice_.stage.shard_axis);   // same values as SplitAxis
  msg.join_attrs = slice_.join_attrs;
  msg.sent_us = unix_us();
  const std::string topic = msg.join_topic;
  client_->publish(topic, encode(msg));
  dispatcher_->report_progress(done, true);
}

void NodeRuntime::heartbeat_loop() {
  auto next = std::chrono::steady_clock::now();
  while (running_) {
    if (std::chrono::steady_clock::now() >= next) {
      Heartbeat hb;
      hb.info = info();
      hb.queue_depth = static_cast<int>(intake_.size());
      hb.queue_capacity = static_cast<int>(intake_.capacity());
      hb.processed = processed_;
      hb.handed_off = handed_off_;
      if (client_->connected()) client_->try_publish(topics_.heartbeat(cfg_.node_id), encode(hb));
      next += std::chrono::milliseconds(cfg_.heartbeat_ms);
    }
    reporter_->tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---- Reporting: state topic, Home Assistant, results of camera frames ----

void NodeRuntime::start_reporting() {
  ReporterOptions ro;
  ro.discovery = cfg_.ha_discovery;
  ro.ha.discovery_prefix = cfg_.ha_prefix;
  ro.state_interval = std::chrono::milliseconds(std::max(100, cfg_.state_interval_ms));
  HaNode ha{cfg_.node_id, model_, is_shard_ ? "shard" : "stage", slice_.stage_index, slice_.stage.name,
            is_shard_ ? cfg_.shard : -1};
  reporter_ = std::make_unique<NodeReporter>(*client_, topics_, ro, ha, result_spec_, [this] { return state(); });
  // Whichever node finishes a request (the last stage, or the joiner of a sharded last stage)
  // answers its frame and makes its stream known to Home Assistant.
  results_ = std::make_unique<ResultPublisher>(*client_, topics_, cfg_.node_id, result_spec_,
                                               [this](const std::string& model, const std::string& sensor) {
                                                 reporter_->saw_sensor(model, sensor);
                                               });
  dispatcher_->on_result([this](const TensorMessage& m) { results_->publish(m); });
}

NodeState NodeRuntime::state() const {
  NodeState s;
  s.node_id = cfg_.node_id;
  s.model = model_;
  s.role = is_shard_ ? "shard" : "stage";
  s.stage = slice_.stage_index;
  s.stage_name = slice_.stage.name;
  s.shard = is_shard_ ? cfg_.shard : -1;
  s.latency_ms = ms_per_frame_;
  s.queue_depth = static_cast<int>(intake_.size());
  s.queue_capacity = static_cast<int>(intake_.capacity());
  s.rss_mb = static_cast<double>(current_rss_bytes()) / 1e6;
  s.processed = processed_;
  s.failed = failed_;
  s.refused = refused_;
  s.expired = expired_;
  return s;
}

}  // namespace dnn
