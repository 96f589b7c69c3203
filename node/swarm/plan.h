// A deployment plan: how one model is cut into pipeline stages, how many replicas serve each stage
// and which heavy layer is split into shards. Plans are JSON files (format in docs/plans.md, examples
// in deploy/); `dnnswarm plan` proposes one, `dnnswarm node` runs one role of it, `dnnswarm swarm`
// launches all of its roles.
//
// A role is (stage, shard, replica): a stage with `replicas` R and `shards` S has R*S nodes. Replicas
// share the stage's input topic (data parallelism); shards each compute one slice of a single
// Conv/Gemm layer (model parallelism).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "format/shard.h"
#include "vision/preprocess.h"
#include "integrations/result.h"

namespace dnn {

struct StageSpec {
  std::string name;                 // unique, [A-Za-z0-9_-] (it is part of MQTT topics)
  size_t node_begin = 0, node_end = 0;   // node range [begin, end) in graph order
  int replicas = 1;
  std::string shard_node;           // non-empty: this stage is that one Conv/Gemm layer, split
  SplitAxis shard_axis = SplitAxis::OutputRows;
  int shards = 1;
  // Device hints for the local emulated swarm (0 = unconstrained). cpu_quota is in cores;
  // replica_cpu_quota, when given, has one entry per replica and overrides cpu_quota.
  double cpu_quota = 0;
  std::vector<double> replica_cpu_quota;
  int64_t memory_limit_mb = 0;
  // Node names as written in the file ("from"/"to", inclusive), until resolve_plan() turns them
  // into node_begin/node_end. Empty once resolved or when the file gave indices.
  std::string from_node, to_node;

  bool sharded() const { return !shard_node.empty(); }
  int roles() const { return replicas * shards; }
  double cpu_quota_of(int replica) const;
  ShardSpec shard(int index) const;   // the slice shard `index` of this stage computes
};

struct Plan {
  std::string model;        // model name, used in topics and results
  std::string model_path;   // the model file; relative paths in a file resolve against its folder
  std::vector<StageSpec> stages;
  PreprocessDecl input;     // "input": how camera frames become the model's input (docs/plans.md)
  // "output": how the last stage turns the model's output into a labelled result (labels, scores,
  // top k, thresholds, Home Assistant entities). Absent: labels are class indices, scores softmax.
  std::optional<ResultSpec> output;

  int roles() const;        // number of nodes the plan needs
  const StageSpec& stage(const std::string& name) const;   // throws Error naming the plan's stages
};

// Parses a plan file; throws IoError (unreadable) or ModelError (malformed, naming the key and stage).
Plan read_plan(const std::string& path);
Plan parse_plan(const std::string& json_text, const std::string& base_dir, const std::string& what);
// Turns "from"/"to" node names (and the range of a shard stage given only by its node) into indices.
void resolve_plan(Plan& plan, const Graph& g);
// Throws ModelError with a clear message unless the plan's stages cover nodes [0, n) of `g` exactly,
// in order, with no gap or overlap, every shard node is a Conv or Gemm alone in its stage with at
// least as many output rows/channels/input columns as shards, the model file exists, and the output
// block's label file has one label per value the model outputs.
void validate_plan(const Plan& plan, const Graph& g);
// read_plan + resolve_plan + validate_plan: what the node, the launcher and the CLI use.
Plan load_plan(const std::string& path, const Graph& g);
// The model's graph for checking a plan (resolve_plan, validate_plan) and sizing its roles, without
// its weights where possible: for .dnns only the header is read, and the constants carry their
// shapes but no data (so nothing may compute with this graph). Other files are loaded whole.
Graph load_model_structure(const std::string& model_path);
// Pretty JSON (indices, not names) that read_plan reads back to an equal plan.
std::string plan_to_json(const Plan& plan);

// Plan files name splits "rows", "channels", "columns" (the long names of format/shard.h, e.g.
// "output-rows", are accepted too).
const char* plan_split_name(SplitAxis a);
SplitAxis parse_plan_split(const std::string& s);   // throws ModelError

// ---- Proposer (`dnnswarm plan`) ----

// What one node costs, from its layer's output_shapes()/macs() and its constant inputs.
struct NodeCost {
  int64_t macs = 0;
  int64_t weight_bytes = 0;
  int64_t output_bytes = 0;     // bytes of its outputs at batch 1
};
// Per node of `g`, at batch 1 (a -1 batch dimension counts as 1). Builds each node's layer.
std::vector<NodeCost> node_costs(const Graph& g);
// Bytes of the activations crossing a cut before node i, for i in [0, n] (from live_values_at).
std::vector<int64_t> cut_bytes(const Graph& g, const std::vector<NodeCost>& costs);

struct ProposeOptions {
  int devices = 1;
  int64_t memory_mb = 0;     // per device; 0 = no limit
  int stages = 0;            // pipeline depth; 0 = the fewest that fit the memory budget
  std::string model_name, model_path;
};
// A balanced plan: the fewest stages that fit (or opts.stages), cut so the slowest stage is as fast
// as possible while preferring cuts that send few bytes; a Conv/Gemm whose weights exceed the memory
// budget becomes its own sharded stage; leftover devices replicate the slowest stage.
// Throws Error when the model cannot fit on opts.devices devices.
Plan propose_plan(const Graph& g, const std::vector<NodeCost>& costs, const ProposeOptions& opts);

// Per-device memory a stage needs beyond its weights (runtime, MQTT buffers, activations), in bytes.
constexpr int64_t kNodeOverheadBytes = 64ll << 20;

}  // namespace dnn
