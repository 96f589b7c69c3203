// Slicing a model for one device: a contiguous range of nodes, optionally ending in one shard of a
// heavy layer (Conv or Gemm), and the join that puts the shards' partial outputs back together.
//
// read_dnns() (format/dnns.h) applies a LoadSpec while reading a file, touching only the bytes it
// needs; slice_graph() applies the same LoadSpec to a graph already in memory (an imported ONNX
// model, or a test's synthetic graph). Both give the same graph.
//
// The graph for a range [node_begin, node_end) holds just those nodes. Its inputs are the values
// live at the cut before node_begin (graph inputs keep their declared shape; other values have an
// empty, i.e. unknown, shape), its outputs the values live at the cut after it (the model's outputs
// when the range runs to the end). Node names, value names and attributes are unchanged, so the
// stages of a pipeline connect by value name.
//
// A shard replaces the last node of the range by a node that computes part of it:
//   OutputRows      Gemm: output features [b, e) — rows of W when W is [N,K] (transB=1), columns
//                   when W is [K,N]; the bias C likewise. Output: [M, e-b].
//   OutputChannels  Conv: output channels [b, e) — W[Cout,...] rows and bias; a fused residual
//                   (4th input) is sliced to the same channels. Output: [N, e-b, H, W]. A grouped
//                   convolution is split by whole groups: the shard gets groups [gb, ge), their
//                   channels, and a Slice node cutting the input to those groups' input channels.
//   InputColumns    Gemm: the reduction dimension K, range [b, e) — a Slice node is inserted that
//                   cuts the input activation to columns [b, e), so the shard still takes the FULL
//                   activation. The bias goes to shard 0 only, and the fused activation (dnn.*) is
//                   removed: it applies after the partial sums are added (join_shards does it).
// The shard node keeps the node's name and output name; sliced constants are renamed
// "<name>/shard<i>of<n>". Splits are as even as possible: shard i of n gets rows
// [i*E/n + min(i, E%n), ...) i.e. the first E%n shards get one extra row.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/tensor.h"

namespace dnn {

enum class SplitAxis { OutputRows, OutputChannels, InputColumns };

// "output-rows", "output-channels", "input-columns" (plans, CLI, messages).
const char* to_string(SplitAxis axis);
SplitAxis parse_split_axis(const std::string& s);  // throws ModelError listing the valid names

struct ShardSpec {
  std::string node;                        // name of the Conv or Gemm node to split
  SplitAxis axis = SplitAxis::OutputRows;
  int index = 0;                           // which shard, 0 <= index < count
  int count = 1;
};

struct LoadSpec {
  static constexpr size_t kToEnd = static_cast<size_t>(-1);
  size_t node_begin = 0;
  size_t node_end = kToEnd;                // exclusive; kToEnd = the last node
  std::optional<ShardSpec> shard;          // its node must be the last node of the range
};

// A constant's dtype and shape, without its bytes (a .dnns header lists them).
struct ConstantInfo {
  DType dtype = DType::f32;
  Shape shape;
};

// Shard `index` of `count` over an extent of `extent` rows; throws ModelError when count < 1,
// index is out of range or a shard would be empty (count > extent).
struct SplitRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
SplitRange split_range(int64_t extent, int index, int count, const std::string& where);

// The extent being split (output features, output channels, K, or groups of a grouped Conv) of
// spec.node in `g`, and the range of every one of spec.count shards. Needs the node's weight in
// g.constants.
int64_t split_extent(const Graph& g, const ShardSpec& spec);
std::vector<SplitRange> shard_ranges(const Graph& g, const ShardSpec& spec);

// In-memory equivalent of read_dnns(path, spec): see the top of this file. Whole constants share
// storage with `full`'s; only sliced ones are copied.
Graph slice_graph(const Graph& full, const LoadSpec& spec);
// The one-node graph of a shard: slice_graph over the range [node, node+1) with `spec`.
Graph shard_graph(const Graph& full, const ShardSpec& spec);

// The fused activation attributes of a node (dnn.activation and its parameters), for the join of
// an InputColumns split: pass them to join_shards. Empty when the node has none.
Attrs fused_activation(const Node& node);
// Joins the shards' outputs, given in shard order: concatenates along axis 1 for OutputRows and
// OutputChannels; for InputColumns sums them and then applies the activation in
// `fused_activation_attrs` (ignored for the other axes). Throws ShapeError on mismatched parts.
Tensor join_shards(const std::vector<Tensor>& parts, SplitAxis axis, const Attrs& fused_activation_attrs);

}  // namespace dnn
