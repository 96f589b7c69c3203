#include "format/slice_plan.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/operators.h"

namespace dnn {

Shape ConstantRead::result_shape() const {
  Shape s = info.shape;
  if (axis >= 0) s[axis] = end - begin;
  return s;
}

namespace {

const ConstantInfo& constant_info(const std::map<std::string, ConstantInfo>& constants, const Node& node,
                                  size_t input, const std::string& what) {
  auto it = input < node.inputs.size() ? constants.find(node.inputs[input]) : constants.end();
  if (it == constants.end())
    throw ModelError("cannot shard node '" + node.name + "' (" + node.op + "): its " + what +
                     " (input " + std::to_string(input) + ") is not a constant");
  return it->second;
}

bool has_input(const Node& n, size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); }

}  // namespace

int64_t shard_extent(const Node& node, const std::map<std::string, ConstantInfo>& constants, SplitAxis axis) {
  const std::string where = "node '" + node.name + "' (" + node.op + ")";
  bool gemm_axis = axis == SplitAxis::OutputRows || axis == SplitAxis::InputColumns;
  const ShardRule rule = shard_rule(node.op);
  if (rule == ShardRule::None)
    throw ModelError("cannot shard " + where + ": only Conv (output-channels) and Gemm (output-rows, "
                     "input-columns) nodes can be split");
  if ((rule == ShardRule::RowsOrColumns) != gemm_axis)
    throw ModelError("cannot shard " + where + " by " + to_string(axis) + ": a Gemm splits by output-rows "
                     "or input-columns, a Conv by output-channels");
  const ConstantInfo& w = constant_info(constants, node, 1, "weight");
  if (rule == ShardRule::OutputChannels) {
    const int64_t groups = node.attrs.i("group", 1);
    if (w.shape.size() < 3 || groups < 1 || w.shape[0] % groups != 0)
      throw ModelError(where + ": weight of shape " + to_string(w.shape) + " does not fit group=" + std::to_string(groups));
    // A grouped convolution is split by whole groups (each shard needs only its groups' inputs).
    return groups > 1 ? groups : w.shape[0];
  }
  if (w.shape.size() != 2) throw ModelError(where + ": weight has shape " + to_string(w.shape));
  bool trans_b = node.attrs.i("transB", 0) != 0;
  // W is [N,K] with transB=1 (what PyTorch exports), [K,N] without.
  if (axis == SplitAxis::OutputRows) return trans_b ? w.shape[0] : w.shape[1];
  return trans_b ? w.shape[1] : w.shape[0];
}

namespace {

// Rewrites the last node of a plan's range into shard `spec.index` of `spec.count`.
class ShardBuilder {
 public:
  ShardBuilder(SlicePlan& plan, const std::map<std::string, ConstantInfo>& constants, const ShardSpec& spec)
      : plan_(plan), constants_(constants), spec_(spec),
        suffix_("/shard" + std::to_string(spec.index) + "of" + std::to_string(spec.count)) {}

  // Returns the output features or channels the shard computes.
  SplitRange apply() {
    Node node = plan_.graph.nodes.back();
    plan_.graph.nodes.pop_back();
    const std::string where = "node '" + node.name + "' (" + node.op + ")";
    const int64_t extent = shard_extent(node, constants_, spec_.axis);
    SplitRange r = split_range(extent, spec_.index, spec_.count, where);
    bool trans_b = node.attrs.i("transB", 0) != 0;
    switch (spec_.axis) {
      case SplitAxis::OutputRows: {
        node.inputs[1] = slice_constant(node.inputs[1], trans_b ? 0 : 1, r, extent);
        if (has_input(node, 2)) {
          const ConstantInfo& c = constant_info(constants_, node, 2, "bias");
          if (numel(c.shape) != 1)  // a broadcast scalar bias stays whole; otherwise its last axis is N
            node.inputs[2] = slice_constant(node.inputs[2], static_cast<int>(c.shape.size()) - 1, r, extent);
        }
        break;
      }
      case SplitAxis::InputColumns: {
        node.inputs[1] = slice_constant(node.inputs[1], trans_b ? 1 : 0, r, extent);
        node.inputs[0] = slice_value(node, 0, node.attrs.i("transA", 0) != 0 ? 0 : 1, r, extent);
        // The bias is added once, by shard 0; the activation after the sum, by the join.
        if (spec_.index != 0 && node.inputs.size() > 2) node.inputs.resize(2);
        Attrs kept;
        for (auto& kv : node.attrs.all())
          if (kv.first.rfind("dnn.act", 0) != 0) kept.set(kv.first, kv.second);
        node.attrs = kept;
        break;
      }
      case SplitAxis::OutputChannels: {
        const Shape& w = constants_.at(node.inputs[1]).shape;  // [Cout, Cin/group, kh, kw]
        const int64_t groups = node.attrs.i("group", 1);
        if (groups > 1) {  // r counts groups: take their input channels, and name the channels
          const int64_t in_per_group = w[1], out_per_group = w[0] / groups;
          node.inputs[0] = slice_value(node, 0, 1, {r.begin * in_per_group, r.end * in_per_group}, groups * in_per_group);
          node.attrs.set("group", r.size());
          r = {r.begin * out_per_group, r.end * out_per_group};
        }
        node.inputs[1] = slice_constant(node.inputs[1], 0, r, w[0]);
        if (has_input(node, 2)) node.inputs[2] = slice_constant(node.inputs[2], 0, r, w[0]);
        if (has_input(node, 3)) node.inputs[3] = slice_value(node, 3, 1, r, w[0]);  // fused residual
        break;
      }
    }
    plan_.graph.nodes.push_back(std::move(node));
    return r;
  }

 private:
  // Constant `name` restricted to rows [r.begin, r.end) of its `axis`, which must be `extent` long.
  std::string slice_constant(const std::string& name, int axis, SplitRange r, int64_t extent) {
    const ConstantInfo& info = constants_.at(name);
    if (axis < 0 || axis >= static_cast<int>(info.shape.size()) || info.shape[axis] != extent)
      throw ModelError("cannot shard node '" + spec_.node + "': constant '" + name + "' of shape " +
                       to_string(info.shape) + " does not match the split [" + std::to_string(r.begin) + ", " +
                       std::to_string(r.end) + ") of " + std::to_string(extent) + " along axis " + std::to_string(axis));
    ConstantRead rd;
    rd.name = name + suffix_;
    rd.source = name;
    rd.info = info;
    rd.axis = axis;
    rd.begin = r.begin;
    rd.end = r.end;
    plan_.reads.push_back(rd);
    return rd.name;
  }

  // Input `input` of `node` restricted to [r.begin, r.end) along `axis`: a sliced constant, or the
  // output of a Slice node inserted before the shard node.
  std::string slice_value(const Node& node, size_t input, int axis, SplitRange r, int64_t extent) {
    const std::string& value = node.inputs[input];
    if (constants_.count(value)) return slice_constant(value, axis, r, extent);
    Node s;
    s.name = node.name + "/input" + std::to_string(input) + suffix_;
    s.op = "Slice";
    s.inputs = {value};
    s.outputs = {s.name};
    // Operands as attributes, the canonical graph's form of Slice (docs/model-format.md).
    s.attrs.set("starts", std::vector<int64_t>{r.begin});
    s.attrs.set("ends", std::vector<int64_t>{r.end});
    s.attrs.set("axes", std::vector<int64_t>{axis});
    s.attrs.set("steps", std::vector<int64_t>{1});
    plan_.graph.nodes.push_back(s);
    return s.name;
  }

  SlicePlan& plan_;
  const std::map<std::string, ConstantInfo>& constants_;
  const ShardSpec& spec_;
  std::string suffix_;
};

std::vector<ValueInfo> with_declared_shapes(const std::vector<std::string>& names, const Graph& g) {
  std::vector<ValueInfo> out;
  for (auto& name : names) {
    ValueInfo v{name, {}};
    for (auto& d : g.inputs)
      if (d.name == name) v.shape = d.shape;
    for (auto& d : g.outputs)
      if (d.name == name) v.shape = d.shape;
    out.push_back(v);
  }
  return out;
}

}  // namespace

SlicePlan plan_slice(const Graph& structure, const std::map<std::string, ConstantInfo>& constants,
                     const LoadSpec& spec) {
  const size_t n = structure.nodes.size();
  const size_t begin = spec.node_begin;
  const size_t end = spec.node_end == LoadSpec::kToEnd ? n : spec.node_end;
  if (begin > end || end > n || (begin == end && n > 0))
    throw ModelError("node range [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") is not a non-empty range of the model's " + std::to_string(n) + " nodes");

  SlicePlan plan;
  Graph& g = plan.graph;
  g.name = structure.name;
  g.nodes.assign(structure.nodes.begin() + begin, structure.nodes.begin() + end);
  SplitRange shard_rows;
  if (spec.shard) {
    const ShardSpec& s = *spec.shard;
    if (g.nodes.empty() || g.nodes.back().name != s.node) {
      bool exists = false;
      for (auto& node : structure.nodes) exists |= node.name == s.node;
      if (!exists) throw ModelError("cannot shard node '" + s.node + "': the model has no node of that name");
      throw ModelError("cannot shard node '" + s.node + "': a sharded node must be the last node of its range [" +
                       std::to_string(begin) + ", " + std::to_string(end) + "), which ends with node '" +
                       g.nodes.back().name + "'");
    }
    shard_rows = ShardBuilder(plan, constants, s).apply();
  }

  // Every other constant the nodes use is read whole, in order of first use; a whole-model load
  // keeps even unused constants, so that writing and reading a model gives it back unchanged.
  std::set<std::string> planned;
  for (auto& rd : plan.reads) planned.insert(rd.name);
  auto read_whole = [&](const std::string& name) {
    auto it = constants.find(name);
    if (it == constants.end() || !planned.insert(name).second) return;
    ConstantRead rd;
    rd.name = rd.source = name;
    rd.info = it->second;
    plan.reads.push_back(rd);
  };
  for (auto& node : g.nodes)
    for (auto& in : node.inputs) read_whole(in);
  if (begin == 0 && end == n && !spec.shard)
    for (auto& kv : constants) read_whole(kv.first);

  // Inputs: the values live at the cut before the range that the range consumes or passes on;
  // outputs: the values live at the cut after it.
  g.outputs = end == n ? structure.outputs : with_declared_shapes(live_values_at(structure, end), structure);
  if (spec.shard && spec.shard->axis != SplitAxis::InputColumns) {
    // A row or channel shard's output is narrower than the layer's along axis 1.
    for (auto& o : g.outputs)
      if (o.name == g.nodes.back().outputs.at(0) && o.shape.size() >= 2) o.shape[1] = shard_rows.size();
  }
  if (begin == 0) {
    g.inputs = structure.inputs;
  } else {
    std::set<std::string> wanted;
    for (auto& node : g.nodes) wanted.insert(node.inputs.begin(), node.inputs.end());
    for (auto& o : g.outputs) wanted.insert(o.name);
    std::vector<std::string> names;
    for (auto& v : live_values_at(structure, begin))
      if (wanted.count(v)) names.push_back(v);
    g.inputs = with_declared_shapes(names, structure);
  }
  return plan;
}

Tensor read_constant(const ConstantRead& r, const ByteReader& read) {
  Tensor t(r.result_shape(), r.info.dtype);
  if (t.bytes() == 0) return t;
  const Shape& s = r.info.shape;
  if (r.axis < 0 || (r.begin == 0 && r.end == s[r.axis])) {
    read(0, t.bytes(), t.raw());
    return t;
  }
  // Row-major: for each index over the axes before `axis`, the slice is one contiguous run.
  int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(r.info.dtype));
  for (int a = 0; a < r.axis; ++a) outer *= s[a];
  for (size_t a = r.axis + 1; a < s.size(); ++a) inner *= s[a];
  const uint64_t run = static_cast<uint64_t>(r.end - r.begin) * inner;
  auto* dst = static_cast<uint8_t*>(t.raw());
  for (int64_t o = 0; o < outer; ++o)
    read(static_cast<uint64_t>(o * s[r.axis] + r.begin) * inner, run, dst + o * run);
  return t;
}

}  // namespace dnn
