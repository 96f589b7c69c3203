#include "swarm/plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/operators.h"
#include "engine/model.h"
#include "format/dnns.h"
#include "engine/graph_stats.h"

namespace dnn {

using nlohmann::json;
namespace fs = std::filesystem;

double StageSpec::cpu_quota_of(int replica) const {
  if (replica >= 0 && replica < static_cast<int>(replica_cpu_quota.size())) return replica_cpu_quota[replica];
  return cpu_quota;
}

ShardSpec StageSpec::shard(int index) const {
  ShardSpec s;
  s.node = shard_node;
  s.axis = shard_axis;
  s.index = index;
  s.count = shards;
  return s;
}

int Plan::roles() const {
  int n = 0;
  for (const auto& s : stages) n += s.roles();
  return n;
}

const StageSpec& Plan::stage(const std::string& name) const {
  std::string known;
  for (const auto& s : stages) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw Error("plan for '" + model + "' has no stage '" + name + "' (stages: " + known + ")");
}

const char* plan_split_name(SplitAxis a) {
  switch (a) {
    case SplitAxis::OutputRows: return "rows";
    case SplitAxis::OutputChannels: return "channels";
    case SplitAxis::InputColumns: return "columns";
  }
  return "?";
}

// The short plan names, or format's long ones ("output-rows", ...).
SplitAxis parse_plan_split(const std::string& s) {
  for (SplitAxis a : {SplitAxis::OutputRows, SplitAxis::OutputChannels, SplitAxis::InputColumns})
    if (s == plan_split_name(a) || s == to_string(a)) return a;
  throw ModelError("unknown split '" + s + "' (expected rows, channels or columns)");
}

// ---- Reading ----

namespace {

// Node names from exporters ("/features/Conv_0") become stage names by replacing what topics can't hold.
std::string topic_safe(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) c = '_';
  while (!s.empty() && s.front() == '_') s.erase(s.begin());
  return s.empty() ? "model" : s;
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// Typed access to one JSON object that reports the plan, the place and the key on any mistake,
// and rejects keys it was not asked about (a typo like "replica" must not be silently ignored).
class Fields {
 public:
  Fields(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {
    if (!obj.is_object()) fail("expected a JSON object");
  }
  bool has(const std::string& k) {
    seen_.insert(k);
    return obj_.contains(k);
  }
  const json& get(const std::string& k) {
    if (!has(k)) fail("missing key '" + k + "'");
    return obj_.at(k);
  }
  std::string str(const std::string& k) {
    const json& v = get(k);
    if (!v.is_string()) fail("'" + k + "' must be a string");
    return v.get<std::string>();
  }
  int64_t integer(const std::string& k, int64_t min) {
    const json& v = get(k);
    if (!v.is_number_integer() || v.get<int64_t>() < min)
      fail("'" + k + "' must be an integer >= " + std::to_string(min));
    return v.get<int64_t>();
  }
  double number(const json& v, const std::string& k) {
    if (!v.is_number() || v.get<double>() < 0) fail("'" + k + "' must be a number >= 0");
    return v.get<double>();
  }
  void no_unknown_keys() {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!seen_.count(it.key())) fail("unknown key '" + it.key() + "'");
  }
  [[noreturn]] void fail(const std::string& msg) const { throw ModelError(where_ + ": " + msg); }

 private:
  const json& obj_;
  std::string where_;
  std::set<std::string> seen_;
};

StageSpec parse_stage(const json& j, const std::string& where) {
  Fields f(j, where);
  StageSpec s;
  s.name = f.str("name");
  if (!valid_name(s.name)) f.fail("stage name '" + s.name + "' may only use letters, digits, '_' and '-'");
  if (f.has("begin") || f.has("end")) {
    if (f.has("from") || f.has("to")) f.fail("give the range either as begin/end or as from/to, not both");
    s.node_begin = static_cast<size_t>(f.integer("begin", 0));
    s.node_end = static_cast<size_t>(f.integer("end", 0));
    if (s.node_end <= s.node_begin) f.fail("empty range: end must be greater than begin");
  } else if (f.has("from") || f.has("to")) {
    s.from_node = f.str("from");
    s.to_node = f.str("to");
  }
  if (f.has("replicas")) s.replicas = static_cast<int>(f.integer("replicas", 1));
  if (f.has("shard")) {
    Fields sh(f.get("shard"), where + ": shard");
    s.shard_node = sh.str("node");
    s.shards = static_cast<int>(sh.integer("count", 2));
    if (sh.has("split")) {
      try {
        s.shard_axis = parse_plan_split(sh.str("split"));
      } catch (const ModelError& e) {
        sh.fail(e.what());
      }
    }
    sh.no_unknown_keys();
  } else if (s.from_node.empty() && s.node_end == 0) {
    f.fail("missing node range: give begin/end (indices) or from/to (node names)");
  }
  if (f.has("cpu_quota")) {
    const json& q = f.get("cpu_quota");
    if (q.is_array()) {
      if (static_cast<int>(q.size()) != s.replicas)
        f.fail("'cpu_quota' has " + std::to_string(q.size()) + " entries for " + std::to_string(s.replicas) +
               " replicas");
      for (const auto& v : q) s.replica_cpu_quota.push_back(f.number(v, "cpu_quota"));
    } else {
      s.cpu_quota = f.number(q, "cpu_quota");
    }
  }
  if (f.has("memory_mb")) s.memory_limit_mb = f.integer("memory_mb", 0);
  f.no_unknown_keys();
  return s;
}

// "input": {"color": ..., "resize": ..., "crop": ..., "scale": ..., "mean": ..., "std": ...,
// "layout": "NCHW", "interpolation": "bilinear"}. Values are checked against the model later
// (resolve_preprocess); here only their types and the few fixed choices.
PreprocessDecl parse_input_decl(const json& j, const std::string& where) {
  Fields f(j, where);
  PreprocessDecl d;
  // resize: N or [N] (shorter side), or [H, W]; crop: N (square) or [H, W].
  auto sizes = [&](const std::string& k, bool square_from_one) {
    json v = f.get(k);
    if (v.is_number_integer()) v = square_from_one ? json::array({v, v}) : json::array({v});
    if (!v.is_array() || v.empty() || v.size() > 2 || (square_from_one && v.size() != 2))
      f.fail("'" + k + "' must be " + (square_from_one ? "N or [H, W]" : "N, [N] or [H, W]"));
    std::vector<int> out;
    for (const auto& n : v) {
      if (!n.is_number_integer() || n.get<int64_t>() <= 0 || n.get<int64_t>() > 1 << 16)
        f.fail("'" + k + "' sizes must be integers in [1, 65536]");
      out.push_back(n.get<int>());
    }
    return out;
  };
  auto numbers = [&](const std::string& k) {
    const json& v = f.get(k);
    if (!v.is_array() || v.empty()) f.fail("'" + k + "' must be an array of numbers, one per channel");
    std::vector<float> out;
    for (const auto& n : v) {
      if (!n.is_number()) f.fail("'" + k + "' must be an array of numbers, one per channel");
      out.push_back(n.get<float>());
    }
    return out;
  };
  if (f.has("layout") && f.str("layout") != "NCHW") f.fail("'layout' must be \"NCHW\" (the only layout models take)");
  if (f.has("interpolation") && f.str("interpolation") != "bilinear")
    f.fail("'interpolation' must be \"bilinear\" (antialiased, as Pillow and torchvision)");
  if (f.has("color")) {
    const std::string c = f.str("color");
    if (c == "rgb") d.color = ColorOrder::Rgb;
    else if (c == "bgr") d.color = ColorOrder::Bgr;
    else if (c == "gray") d.color = ColorOrder::Gray;
    else f.fail("'color' must be \"rgb\", \"bgr\" or \"gray\", not \"" + c + "\"");
  }
  if (f.has("resize")) d.resize = sizes("resize", false);
  if (f.has("crop")) d.crop = sizes("crop", true);
  if (f.has("scale")) {
    const json& v = f.get("scale");
    if (!v.is_number() || v.get<double>() <= 0) f.fail("'scale' must be a number > 0 (e.g. 0.00392156862745098 for 1/255)");
    d.scale = v.get<float>();
  }
  if (f.has("mean")) d.mean = numbers("mean");
  if (f.has("std")) d.std = numbers("std");
  f.no_unknown_keys();
  return d;
}

nlohmann::ordered_json input_decl_to_json(const PreprocessDecl& d) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (d.color) j["color"] = to_string(*d.color);
  if (d.resize) j["resize"] = *d.resize;
  if (d.crop) j["crop"] = *d.crop;
  if (d.scale) j["scale"] = *d.scale;
  if (d.mean) j["mean"] = *d.mean;
  if (d.std) j["std"] = *d.std;
  return j;
}

}  // namespace

Plan parse_plan(const std::string& text, const std::string& base_dir, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ModelError(what + ": not valid JSON: " + e.what());
  }
  Fields f(j, what);
  Plan p;
  p.model = f.str("model");
  if (!valid_name(p.model)) f.fail("model name '" + p.model + "' may only use letters, digits, '_' and '-'");
  p.model_path = f.str("model_path");
  if (!p.model_path.empty() && fs::path(p.model_path).is_relative() && !base_dir.empty())
    p.model_path = (fs::path(base_dir) / p.model_path).lexically_normal().string();
  const json& stages = f.get("stages");
  if (!stages.is_array() || stages.empty()) f.fail("'stages' must be a non-empty array");
  for (size_t i = 0; i < stages.size(); ++i)
    p.stages.push_back(parse_stage(stages[i], what + ": stage " + std::to_string(i)));
  if (f.has("input")) p.input = parse_input_decl(f.get("input"), what + ": input");
  if (f.has("output")) p.output = parse_result_spec(f.get("output"), base_dir, what + ": output");
  f.no_unknown_keys();
  std::set<std::string> names;
  for (const auto& s : p.stages)
    if (!names.insert(s.name).second) f.fail("two stages are named '" + s.name + "'");
  return p;
}

Plan read_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read plan file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_plan(ss.str(), fs::path(path).parent_path().string(), "plan '" + path + "'");
}

// ---- Resolving and validating against the model ----

namespace {

size_t node_index(const Graph& g, const std::string& name, const std::string& where) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) return i;
  throw ModelError(where + ": model '" + g.name + "' has no node named '" + name + "'");
}

std::string stage_where(const Plan& p, size_t i) {
  return "plan for '" + p.model + "': stage " + std::to_string(i) + " ('" + p.stages[i].name + "')";
}

// A label file must name every value the model outputs per frame (a batch dimension, -1 or 1, aside).
void validate_result_spec(const Plan& plan, const Graph& g) {
  const ResultSpec& spec = *plan.output;
  const std::string where = "plan for '" + plan.model + "': output";
  if (spec.labels.empty()) return;
  if (g.outputs.size() != 1)
    throw ModelError(where + ": labels need a model with one output; '" + g.name + "' has " +
                     std::to_string(g.outputs.size()));
  int64_t values = 1;
  const Shape& shape = g.outputs[0].shape;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i == 0 && shape[i] == -1) continue;
    if (shape[i] < 0) return;   // known only at run time: checked on each result
    values *= shape[i];
  }
  if (!shape.empty() && values != static_cast<int64_t>(spec.labels.size()))
    throw ModelError(where + ": label file " + spec.labels_path + " has " + std::to_string(spec.labels.size()) +
                     " labels, but the model outputs " + std::to_string(values) + " values per frame");
}

}  // namespace

void resolve_plan(Plan& plan, const Graph& g) {
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    StageSpec& s = plan.stages[i];
    const std::string where = stage_where(plan, i);
    if (!s.from_node.empty()) {
      s.node_begin = node_index(g, s.from_node, where);
      s.node_end = node_index(g, s.to_node, where) + 1;
      if (s.node_end <= s.node_begin)
        throw ModelError(where + ": 'to' node '" + s.to_node + "' comes before 'from' node '" + s.from_node + "'");
      s.from_node.clear();
      s.to_node.clear();
    } else if (s.sharded() && s.node_end == 0) {
      s.node_begin = node_index(g, s.shard_node, where);
      s.node_end = s.node_begin + 1;
    }
  }
}

void validate_plan(const Plan& plan, const Graph& g) {
  if (!plan.model_path.empty() && !fs::exists(plan.model_path))
    throw IoError("plan for '" + plan.model + "': model file '" + plan.model_path + "' does not exist");
  const size_t n = g.nodes.size();
  size_t expected = 0;   // where the next stage must begin
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const StageSpec& s = plan.stages[i];
    const std::string where = stage_where(plan, i);
    if (!s.from_node.empty()) throw ModelError(where + ": node names not resolved (call resolve_plan)");
    const std::string range = "nodes [" + std::to_string(s.node_begin) + ", " + std::to_string(s.node_end) + ")";
    if (s.node_end > n)
      throw ModelError(where + ": " + range + " out of bounds: model '" + g.name + "' has " + std::to_string(n) +
                       " nodes");
    if (s.node_begin > expected)
      throw ModelError(where + ": gap: nodes [" + std::to_string(expected) + ", " + std::to_string(s.node_begin) +
                       ") belong to no stage");
    if (s.node_begin < expected)
      throw ModelError(where + ": overlap: " + range + " starts before the previous stage ends at node " +
                       std::to_string(expected));
    if (s.replicas < 1) throw ModelError(where + ": replicas must be at least 1");
    if (s.sharded()) {
      const Node& node = g.nodes[s.node_begin];
      if (s.node_end != s.node_begin + 1 || node.name != s.shard_node)
        throw ModelError(where + ": shard node '" + s.shard_node + "' must be alone in its stage, but the stage has " +
                         range);
      const ShardRule rule = shard_rule(node.op);
      if (rule == ShardRule::None)
        throw ModelError(where + ": cannot shard " + g.describe(node) + ": only Conv and Gemm layers can be split");
      if (s.shards < 2) throw ModelError(where + ": a sharded stage needs a shard count of at least 2");
      if (node.inputs.size() < 2 || !g.is_constant(node.inputs[1]))
        throw ModelError(where + ": cannot shard " + g.describe(node) + ": its weights are not a constant");
      if (rule == ShardRule::OutputChannels && s.shard_axis != SplitAxis::OutputChannels)
        throw ModelError(where + ": " + g.describe(node) + " can only be split by output channels (\"channels\")");
      if (rule == ShardRule::RowsOrColumns && s.shard_axis == SplitAxis::OutputChannels)
        throw ModelError(where + ": " + g.describe(node) + " is split by \"rows\" or \"columns\", not \"channels\"");
      // At least one row/channel/column per shard (a grouped Conv splits by whole groups).
      const int64_t extent = split_extent(g, s.shard(0));
      if (extent < s.shards)
        throw ModelError(where + ": cannot split " + g.describe(node) + " into " + std::to_string(s.shards) +
                         " shards: it has only " + std::to_string(extent) + " " + plan_split_name(s.shard_axis));
    } else if (s.shards != 1) {
      throw ModelError(where + ": shards given without a shard node");
    }
    expected = s.node_end;
  }
  if (expected != n)
    throw ModelError("plan for '" + plan.model + "' does not cover the whole model: nodes [" + std::to_string(expected) +
                     ", " + std::to_string(n) + ") of '" + g.name + "' (from " + g.describe(g.nodes[expected]) +
                     ") belong to no stage");
  if (plan.output) validate_result_spec(plan, g);
}

Plan load_plan(const std::string& path, const Graph& g) {
  Plan p = read_plan(path);
  resolve_plan(p, g);
  validate_plan(p, g);
  return p;
}

Graph load_model_structure(const std::string& model_path) {
  if (fs::path(model_path).extension() != ".dnns") return load_model(model_path);
  DnnsHeader h = read_dnns_header(model_path);
  for (const auto& [name, info] : h.constants)
    h.graph.constants[name] = Tensor::wrap(info.shape, info.dtype, nullptr, nullptr);
  return std::move(h.graph);
}

std::string plan_to_json(const Plan& plan) {
  // Keys in a reader's order (name first), not alphabetical.
  using ordered = nlohmann::ordered_json;
  ordered stages = ordered::array();
  for (const auto& s : plan.stages) {
    ordered js = {{"name", s.name}};
    if (!s.from_node.empty()) {
      js["from"] = s.from_node;
      js["to"] = s.to_node;
    } else if (s.node_end > s.node_begin) {   // a shard stage not yet resolved has no range
      js["begin"] = s.node_begin;
      js["end"] = s.node_end;
    }
    if (s.replicas != 1) js["replicas"] = s.replicas;
    if (s.sharded()) js["shard"] = {{"node", s.shard_node}, {"split", plan_split_name(s.shard_axis)}, {"count", s.shards}};
    if (!s.replica_cpu_quota.empty())
      js["cpu_quota"] = s.replica_cpu_quota;
    else if (s.cpu_quota > 0)
      js["cpu_quota"] = s.cpu_quota;
    if (s.memory_limit_mb > 0) js["memory_mb"] = s.memory_limit_mb;
    stages.push_back(std::move(js));
  }
  // One stage per line: a plan reads like a table.
  std::string out = "{\n  \"model\": " + ordered(plan.model).dump() + ",\n  \"model_path\": " +
                    ordered(plan.model_path).dump() + ",\n";
  if (!plan.input.empty()) out += "  \"input\": " + input_decl_to_json(plan.input).dump() + ",\n";
  out += "  \"stages\": [\n";
  for (size_t i = 0; i < stages.size(); ++i) out += "    " + stages[i].dump() + (i + 1 < stages.size() ? ",\n" : "\n");
  out += "  ]";
  if (plan.output) out += ",\n  \"output\": " + result_spec_to_json(*plan.output).dump();
  return out + "\n}";
}

// ---- Costs ----

std::vector<NodeCost> node_costs(const Graph& g) {
  std::vector<NodeCost> costs;
  for (const NodeStats& s : node_stats(g, 1)) costs.push_back({s.macs, s.weight_bytes, s.output_bytes});
  return costs;
}

std::vector<int64_t> cut_bytes(const Graph& g, const std::vector<NodeCost>& costs) {
  std::map<std::string, int64_t> bytes;   // value -> bytes, for node outputs and graph inputs
  for (const auto& in : g.inputs) {
    int64_t n = 1;
    for (auto d : in.shape) n *= d < 0 ? 1 : d;
    bytes[in.name] = n * static_cast<int64_t>(sizeof(float));
  }
  for (size_t i = 0; i < g.nodes.size(); ++i)   // a multi-output node's bytes are split evenly (rare)
    for (const auto& o : g.nodes[i].outputs)
      bytes[o] = costs[i].output_bytes / static_cast<int64_t>(g.nodes[i].outputs.size());
  std::vector<int64_t> cuts;
  for (size_t i = 0; i <= g.nodes.size(); ++i) {
    int64_t sum = 0;
    for (const auto& v : live_values_at(g, i)) sum += bytes.count(v) ? bytes[v] : 0;
    cuts.push_back(sum);
  }
  return cuts;
}

// ---- Proposer ----

namespace {

struct Segment {
  size_t begin, end;
  int shards;   // > 1: a single Conv/Gemm split this many ways
};

// Cuts nodes [0, n) into exactly k stages. Among the cuttings whose slowest stage is within 5 % of
// the best possible, picks the one sending the fewest bytes across cuts. `cost(b, e)` is the time
// of a stage on one device (infinite when the stage is not allowed, e.g. over the memory budget).
// Time of one node on one core at batch 1. Convolutions are compute-bound; a batch-1 fully-connected
// layer streams all its weights per frame and is memory-bound; nodes without MACs (pooling, ...)
// still touch their output. Rates are this project's measured single-core figures
// (../shared/notes/kernels.md): ~20 GMAC/s in GEMM, ~8 GB/s of weights.
double estimated_seconds(const NodeCost& c) {
  return std::max(c.macs / 20e9, c.weight_bytes / 8e9) + c.output_bytes / 4 / 2e9;
}

template <class CostFn>
std::vector<Segment> balanced_cuts(size_t n, int k, const std::vector<int64_t>& cuts, const std::vector<bool>& cuttable,
                                   CostFn cost) {
  const double inf = std::numeric_limits<double>::infinity();
  // Pass 1: the smallest possible maximum stage cost (classic linear-partition DP).
  std::vector<std::vector<double>> best(k + 1, std::vector<double>(n + 1, inf));
  best[0][0] = 0;
  for (int s = 1; s <= k; ++s)
    for (size_t e = 1; e <= n; ++e) {
      if (e < n && !cuttable[e]) continue;
      for (size_t b = 0; b < e; ++b)
        if (best[s - 1][b] < inf) best[s][e] = std::min(best[s][e], std::max(best[s - 1][b], cost(b, e)));
    }
  const double limit = best[k][n] * 1.05;
  if (!(limit < inf)) return {};
  // Pass 2: fewest bytes across cuts, with every stage within the limit.
  std::vector<std::vector<double>> bytes(k + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<size_t>> from(k + 1, std::vector<size_t>(n + 1, 0));
  bytes[0][0] = 0;
  for (int s = 1; s <= k; ++s)
    for (size_t e = 1; e <= n; ++e) {
      if (e < n && !cuttable[e]) continue;
      for (size_t b = 0; b < e; ++b) {
        if (bytes[s - 1][b] == inf || cost(b, e) > limit) continue;
        const double v = bytes[s - 1][b] + (e < n ? static_cast<double>(cuts[e]) : 0.0);
        if (v < bytes[s][e]) {
          bytes[s][e] = v;
          from[s][e] = b;
        }
      }
    }
  std::vector<Segment> segs(k);
  size_t e = n;
  for (int s = k; s >= 1; --s) {
    segs[s - 1] = {from[s][e], e, 1};
    e = from[s][e];
  }
  return segs;
}

}  // namespace

Plan propose_plan(const Graph& g, const std::vector<NodeCost>& costs, const ProposeOptions& opts) {
  const size_t n = g.nodes.size();
  if (n == 0) throw ModelError("model '" + g.name + "' has no nodes to plan");
  if (opts.devices < 1) throw Error("plan: need at least 1 device");
  const std::vector<int64_t> cuts = cut_bytes(g, costs);
  const int64_t budget = opts.memory_mb > 0 ? (opts.memory_mb << 20) - kNodeOverheadBytes
                                            : std::numeric_limits<int64_t>::max();
  if (budget <= 0)
    throw Error("plan: --memory-mb " + std::to_string(opts.memory_mb) + " leaves no room beyond the " +
                std::to_string(kNodeOverheadBytes >> 20) + " MB a node needs to run");

  // Layers too heavy for one device are sharded, each in a stage of its own, split into just enough
  // slices to fit; all other cuts go where exactly one tensor crosses (one message per request).
  std::vector<int> shards(n, 1);
  std::vector<bool> cuttable(n + 1, false);
  for (size_t i = 1; i < n; ++i) cuttable[i] = live_values_at(g, i).size() == 1;
  for (size_t i = 0; i < n; ++i) {
    const int64_t need = costs[i].weight_bytes + 2 * costs[i].output_bytes;
    if (need <= budget) continue;
    const std::string& op = g.nodes[i].op;
    if (shard_rule(op) == ShardRule::None)
      throw Error("plan: " + g.describe(g.nodes[i]) + " needs " + std::to_string(need >> 20) +
                  " MB, more than a device's budget, and only Conv/Gemm layers can be sharded");
    const int64_t room = budget - 2 * costs[i].output_bytes;   // for one slice of the weights
    if (room <= 0)
      throw Error("plan: the activations of " + g.describe(g.nodes[i]) + " alone exceed a device's budget");
    shards[i] = std::max<int>(2, static_cast<int>((costs[i].weight_bytes + room - 1) / room));
    cuttable[i] = cuttable[i + 1] = true;
  }
  std::vector<double> prefix_time(n + 1, 0);
  std::vector<int64_t> prefix_weights(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    prefix_time[i + 1] = prefix_time[i] + estimated_seconds(costs[i]);
    prefix_weights[i + 1] = prefix_weights[i] + costs[i].weight_bytes;
  }
  auto stage_cost = [&](size_t b, size_t e) {
    const double inf = std::numeric_limits<double>::infinity();
    for (size_t i = b; i < e; ++i)
      if (shards[i] > 1) return e == b + 1 ? (prefix_time[e] - prefix_time[b]) / shards[i] : inf;
    int64_t peak_act = 0;
    for (size_t i = b; i < e; ++i) peak_act = std::max(peak_act, costs[i].output_bytes);
    if (prefix_weights[e] - prefix_weights[b] + 2 * peak_act > budget) return inf;
    return prefix_time[e] - prefix_time[b];
  };

  // Fewest stages that fit, unless a depth was asked for.
  std::vector<Segment> segs;
  const int max_stages = std::min<int>(static_cast<int>(n), opts.devices);   // a stage needs a device
  for (int k = opts.stages > 0 ? opts.stages : 1; k <= (opts.stages > 0 ? opts.stages : max_stages); ++k) {
    segs = balanced_cuts(n, k, cuts, cuttable, stage_cost);
    if (!segs.empty()) break;
  }
  if (segs.empty())
    throw Error("plan: model '" + g.name + "' cannot be cut into " +
                (opts.stages > 0 ? std::to_string(opts.stages) + " stages" : std::string("stages")) +
                " that fit " + std::to_string(opts.memory_mb) + " MB devices");
  for (auto& s : segs) s.shards = shards[s.begin] > 1 && s.end == s.begin + 1 ? shards[s.begin] : 1;

  int used = 0;
  for (const auto& s : segs) used += s.shards;
  if (used > opts.devices)
    throw Error("plan: model '" + g.name + "' needs at least " + std::to_string(used) + " devices" +
                (opts.memory_mb > 0 ? " of " + std::to_string(opts.memory_mb) + " MB" : std::string()) + ", got " +
                std::to_string(opts.devices));

  // Leftover devices go, one replica at a time, to the stage that limits throughput.
  std::vector<int> replicas(segs.size(), 1);
  for (;;) {
    int slowest = -1;
    double worst = -1;
    for (size_t i = 0; i < segs.size(); ++i) {
      const double t = stage_cost(segs[i].begin, segs[i].end) / replicas[i];
      if (t > worst) worst = t, slowest = static_cast<int>(i);
    }
    if (used + segs[slowest].shards > opts.devices) break;
    used += segs[slowest].shards;
    ++replicas[slowest];
  }

  Plan plan;
  plan.model = topic_safe(opts.model_name.empty() ? g.name : opts.model_name);
  plan.model_path = opts.model_path;
  for (size_t i = 0; i < segs.size(); ++i) {
    StageSpec s;
    s.node_begin = segs[i].begin;
    s.node_end = segs[i].end;
    s.replicas = replicas[i];
    if (segs[i].shards > 1) {
      const Node& node = g.nodes[segs[i].begin];
      s.name = topic_safe(node.name);
      s.shard_node = node.name;
      s.shards = segs[i].shards;
      s.shard_axis = shard_rule(node.op) == ShardRule::OutputChannels ? SplitAxis::OutputChannels : SplitAxis::OutputRows;
    } else {
      s.name = "s" + std::to_string(i);
    }
    if (opts.memory_mb > 0) s.memory_limit_mb = opts.memory_mb;
    plan.stages.push_back(std::move(s));
  }
  return plan;
}

}  // namespace dnn
