#include "format/shard.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "format/slice_plan.h"

namespace dnn {

const char* to_string(SplitAxis axis) {
  switch (axis) {
    case SplitAxis::OutputRows: return "output-rows";
    case SplitAxis::OutputChannels: return "output-channels";
    case SplitAxis::InputColumns: return "input-columns";
  }
  return "?";
}

SplitAxis parse_split_axis(const std::string& s) {
  for (SplitAxis a : {SplitAxis::OutputRows, SplitAxis::OutputChannels, SplitAxis::InputColumns})
    if (s == to_string(a)) return a;
  throw ModelError("unknown split axis '" + s + "' (expected output-rows, output-channels or input-columns)");
}

SplitRange split_range(int64_t extent, int index, int count, const std::string& where) {
  if (count < 1 || index < 0 || index >= count)
    throw ModelError(where + ": shard index " + std::to_string(index) + " of " + std::to_string(count) +
                     " is out of range (need 0 <= index < count)");
  if (count > extent)
    throw ModelError(where + ": cannot split " + std::to_string(extent) + " rows into " + std::to_string(count) +
                     " non-empty shards");
  const int64_t base = extent / count, extra = extent % count;
  SplitRange r;
  r.begin = index * base + std::min<int64_t>(index, extra);
  r.end = r.begin + base + (index < extra ? 1 : 0);
  return r;
}

namespace {

std::map<std::string, ConstantInfo> constant_infos(const Graph& g) {
  std::map<std::string, ConstantInfo> infos;
  for (auto& kv : g.constants) infos[kv.first] = {kv.second.dtype(), kv.second.shape()};
  return infos;
}

const Node& find_node(const Graph& g, const std::string& name) {
  for (auto& n : g.nodes)
    if (n.name == name) return n;
  throw ModelError("cannot shard node '" + name + "': the model has no node of that name");
}

}  // namespace

int64_t split_extent(const Graph& g, const ShardSpec& spec) {
  return shard_extent(find_node(g, spec.node), constant_infos(g), spec.axis);
}

std::vector<SplitRange> shard_ranges(const Graph& g, const ShardSpec& spec) {
  const int64_t extent = split_extent(g, spec);
  std::vector<SplitRange> ranges;
  for (int i = 0; i < spec.count; ++i) ranges.push_back(split_range(extent, i, spec.count, "node '" + spec.node + "'"));
  return ranges;
}

Graph slice_graph(const Graph& full, const LoadSpec& spec) {
  SlicePlan plan = plan_slice(full, constant_infos(full), spec);
  for (auto& rd : plan.reads) {
    const Tensor& source = full.constants.at(rd.source);
    if (rd.axis < 0) {  // a whole constant: share its storage, copy nothing
      plan.graph.constants[rd.name] = source;
      continue;
    }
    const auto* src = static_cast<const uint8_t*>(source.raw());
    plan.graph.constants[rd.name] = read_constant(rd, [src](uint64_t offset, uint64_t length, void* dst) {
      std::memcpy(dst, src + offset, length);
    });
  }
  return plan.graph;
}

Graph shard_graph(const Graph& full, const ShardSpec& spec) {
  const Node& node = find_node(full, spec.node);
  LoadSpec ls;
  ls.node_begin = static_cast<size_t>(&node - full.nodes.data());
  ls.node_end = ls.node_begin + 1;
  ls.shard = spec;
  return slice_graph(full, ls);
}

Attrs fused_activation(const Node& node) {
  Attrs a;
  for (auto& kv : node.attrs.all())
    if (kv.first.rfind("dnn.act", 0) == 0) a.set(kv.first, kv.second);
  return a;
}

namespace {

// The activations the importer fuses into Conv/Gemm (docs/model-format.md, "Fusion attributes").
void apply_activation(Tensor& t, const Attrs& attrs) {
  const std::string act = attrs.s("dnn.activation", "");
  if (act.empty()) return;
  float* x = t.f32();
  const int64_t n = t.numel();
  if (act == "Relu") {
    for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.f);
  } else if (act == "Clip") {
    const float lo = attrs.f("dnn.act_min", -std::numeric_limits<float>::infinity());
    const float hi = attrs.f("dnn.act_max", std::numeric_limits<float>::infinity());
    for (int64_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], lo), hi);
  } else if (act == "LeakyRelu") {
    const float alpha = attrs.f("dnn.act_alpha", 0.01f);
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= 0.f ? x[i] : alpha * x[i];
  } else if (act == "Sigmoid") {
    for (int64_t i = 0; i < n; ++i) x[i] = 1.f / (1.f + std::exp(-x[i]));
  } else if (act == "HardSwish") {
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] * std::min(std::max(x[i] + 3.f, 0.f), 6.f) / 6.f;
  } else {
    throw ModelError("join_shards: unknown fused activation '" + act + "'");
  }
}

}  // namespace

Tensor join_shards(const std::vector<Tensor>& parts, SplitAxis axis, const Attrs& fused_activation_attrs) {
  if (parts.empty()) throw ShapeError("join_shards: no parts to join");
  const Shape& first = parts[0].shape();
  for (size_t p = 0; p < parts.size(); ++p) {
    const Shape& s = parts[p].shape();
    bool ok = parts[p].dtype() == DType::f32 && s.size() == first.size() && s.size() >= 2;
    for (size_t d = 0; ok && d < s.size(); ++d) ok = s[d] == first[d] || (d == 1 && axis != SplitAxis::InputColumns);
    if (!ok)
      throw ShapeError("join_shards (" + std::string(to_string(axis)) + "): part " + std::to_string(p) + " has shape " +
                       to_string(s) + ", part 0 has " + to_string(first) + " (float32, rank >= 2)");
  }

  if (axis == SplitAxis::InputColumns) {
    Tensor sum = parts[0].clone();
    float* y = sum.f32();
    for (size_t p = 1; p < parts.size(); ++p) {
      const float* x = parts[p].f32();
      for (int64_t i = 0, n = sum.numel(); i < n; ++i) y[i] += x[i];
    }
    apply_activation(sum, fused_activation_attrs);
    return sum;
  }

  // Concatenate along axis 1: for each batch item, each part's block of channels/features in turn.
  Shape out_shape = first;
  out_shape[1] = 0;
  for (auto& p : parts) out_shape[1] += p.dim(1);
  Tensor out(out_shape);
  const int64_t batch = first[0];
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t b = 0; b < batch; ++b)
    for (auto& p : parts) {
      const size_t block = p.bytes() / batch;
      std::memcpy(dst, static_cast<const uint8_t*>(p.raw()) + b * block, block);
      dst += block;
    }
  return out;
}

}  // namespace dnn
