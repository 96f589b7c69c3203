#include "swarm/join_table.h"

#include <algorithm>

#include "format/shard.h"

namespace dnn {

bool JoinTable::expect(const std::string& request_id, int stage, int count, uint64_t now_ms, uint32_t budget_ms,
                       std::string reply_to) {
  const uint64_t deadline_ms = now_ms + (budget_ms ? budget_ms : kDefaultBudgetMs);
  auto open = joins_.find(std::make_pair(request_id, stage));
  if (open != joins_.end()) {
    open->second.deadline_ms = std::max(open->second.deadline_ms, deadline_ms);
    return true;
  }
  if (joins_.size() >= capacity_) return false;
  Join j;
  j.count = count;
  j.deadline_ms = deadline_ms;
  j.reply_to = std::move(reply_to);
  j.parts.resize(count);
  return joins_.emplace(std::make_pair(request_id, stage), std::move(j)).second;
}

std::optional<std::vector<TensorMessage>> JoinTable::add(TensorMessage partial) {
  const auto key = std::make_pair(partial.request_id, partial.stage);
  const std::string what = "partial " + std::to_string(partial.shard_index) + " of request '" + partial.request_id +
                           "' at stage " + std::to_string(partial.stage);
  auto it = joins_.find(key);
  if (it == joins_.end()) throw MessageError(what + ": no open join (late, or not sent from here)", "", "");
  Join& j = it->second;
  if (partial.shard_count != j.count)
    throw MessageError(what + ": says " + std::to_string(partial.shard_count) + " shards, the join expects " +
                           std::to_string(j.count),
                       "", "");
  auto& slot = j.parts.at(partial.shard_index);   // decode checked 0 <= index < shard_count
  if (slot) return std::nullopt;   // the same partial of a re-send: the first one stands
  slot = std::move(partial);
  if (++j.received < j.count) return std::nullopt;
  std::vector<TensorMessage> parts;
  for (auto& p : j.parts) parts.push_back(std::move(*p));
  joins_.erase(it);
  return parts;
}

std::vector<JoinTable::Expired> JoinTable::expire(uint64_t now_ms) {
  std::vector<Expired> out;
  for (auto it = joins_.begin(); it != joins_.end();) {
    if (it->second.deadline_ms < now_ms) {
      out.push_back({it->first.first, it->second.reply_to, it->first.second, it->second.received, it->second.count});
      it = joins_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

TensorMessage join_partials(std::vector<TensorMessage> parts) {
  uint32_t budget = 0;   // the least any shard had left
  for (const auto& p : parts)
    if (p.budget_ms && (!budget || p.budget_ms < budget)) budget = p.budget_ms;
  TensorMessage out = std::move(parts.at(0));
  out.budget_ms = budget;
  const std::string where = "join of request '" + out.request_id + "' at stage " + std::to_string(out.stage);
  // The wire's SplitAxis mirrors dnn::SplitAxis value for value.
  const auto axis = static_cast<SplitAxis>(out.join_axis);
  for (size_t p = 1; p < parts.size(); ++p) {
    if (parts[p].tensors.size() != out.tensors.size())
      throw ShapeError(where + ": shard " + std::to_string(p) + " sent " + std::to_string(parts[p].tensors.size()) +
                       " tensors, shard 0 sent " + std::to_string(out.tensors.size()));
    if (!parts[p].hops.empty()) out.hops.push_back(parts[p].hops.back());   // the path before is shared
  }
  for (size_t t = 0; t < out.tensors.size(); ++t) {
    std::vector<Tensor> pieces{out.tensors[t].tensor};
    for (size_t p = 1; p < parts.size(); ++p) pieces.push_back(parts[p].tensors[t].tensor);
    out.tensors[t].tensor = join_shards(pieces, axis, out.join_attrs);
  }
  out.shard_index = 0;
  out.shard_count = 1;
  out.join_topic.clear();
  out.join_attrs = Attrs();
  return out;
}

}  // namespace dnn
