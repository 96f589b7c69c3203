#include "core/operators.h"

#include <algorithm>

namespace dnn {

namespace {
constexpr bool FOLD = true, NO_FOLD = false;
constexpr unsigned FUSE_NONE = kFuseNone, FUSE_ACT = kFuseActivation, FUSE_RESIDUAL = kFuseResidual,
                   FUSE_WEIGHTS = kFuseWeights, FUSE_HOST = kFuseHost;
constexpr ShardRule SHARD_NONE = ShardRule::None, SHARD_CHANNELS = ShardRule::OutputChannels,
                    SHARD_ROWS_COLUMNS = ShardRule::RowsOrColumns;
}  // namespace

const std::vector<OperatorInfo>& operators() {
  static const std::vector<OperatorInfo> table = [] {
    std::vector<OperatorInfo> t = {
#define OP(name, layer, fold, fuse, shard, since) {#name, #layer, fold, fuse, shard, since},
#include "core/operators.def"
#undef OP
    };
    std::sort(t.begin(), t.end(), [](const OperatorInfo& a, const OperatorInfo& b) { return std::string(a.name) < b.name; });
    return t;
  }();
  return table;
}

const OperatorInfo* find_operator(const std::string& op) {
  const auto& t = operators();
  auto it = std::lower_bound(t.begin(), t.end(), op, [](const OperatorInfo& a, const std::string& b) { return a.name < b; });
  return it != t.end() && it->name == op ? &*it : nullptr;
}

bool is_foldable_op(const std::string& op) {
  const OperatorInfo* info = find_operator(op);
  return info && info->foldable;
}

bool has_fuse_role(const std::string& op, FuseRole role) {
  const OperatorInfo* info = find_operator(op);
  return info && (info->fuse & role) != 0;
}

ShardRule shard_rule(const std::string& op) {
  const OperatorInfo* info = find_operator(op);
  return info ? info->shard : ShardRule::None;
}

}  // namespace dnn
