// What dnnswarm knows about each ONNX operator, read from the one declaration in operators.def:
// whether a layer runs it, whether the importer folds it, how the fusion passes treat it and how
// a node of it may be sharded. The layer registry, folding, fusion, the shard rules, the tests and
// docs/operators.md all derive their lists from here.
#pragma once
#include <string>
#include <vector>

namespace dnn {

// How one node may be split across devices.
enum class ShardRule {
  None,
  OutputChannels,     // Conv: by output channels; a grouped Conv by whole groups
  RowsOrColumns,      // Gemm: by output rows or by input columns
};

// Fusion roles, a bit set.
enum FuseRole : unsigned {
  kFuseNone = 0,
  kFuseActivation = 1,  // runs in the epilogue of the node before it (a kFuseHost)
  kFuseResidual = 2,    // an Add of two activations absorbed into a Conv's epilogue
  kFuseWeights = 4,     // folded into the weights of the Conv or Gemm before it
  kFuseHost = 8,        // takes an epilogue (activations, residual)
};

struct OperatorInfo {
  const char* name;
  const char* layer;  // layer factory family (node/layers/), "none" when only folded at import
  bool foldable;
  unsigned fuse;      // FuseRole bits
  ShardRule shard;
  int since;          // opset that introduced it
  bool runs() const { return std::string(layer) != "none"; }
};

// Every declared operator, sorted by name.
const std::vector<OperatorInfo>& operators();
// The operator's row, or null when it is not declared.
const OperatorInfo* find_operator(const std::string& op);

bool is_foldable_op(const std::string& op);
bool has_fuse_role(const std::string& op, FuseRole role);
ShardRule shard_rule(const std::string& op);

// The opsets the importer reads.
constexpr int kMinOpset = 7, kMaxOpset = 18;

}  // namespace dnn
