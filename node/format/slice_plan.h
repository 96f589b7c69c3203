// Internal to node/format: the part of slicing shared by read_dnns() (weights come from a file) and
// slice_graph() (weights already in memory). plan_slice() works on the graph's structure and the
// constants' shapes alone and says which bytes of which constant each kept constant needs;
// read_constant() then fetches exactly those bytes through a caller-supplied reader.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "format/shard.h"

namespace dnn {

// One constant of the sliced graph: `source` restricted to [begin, end) along `axis`
// (axis < 0: the whole tensor).
struct ConstantRead {
  std::string name;     // name in the sliced graph
  std::string source;   // name in the full graph
  ConstantInfo info;    // of the source
  int axis = -1;
  int64_t begin = 0, end = 0;
  Shape result_shape() const;
};

struct SlicePlan {
  Graph graph;                     // nodes, inputs, outputs; constants are filled from `reads`
  std::vector<ConstantRead> reads; // every other constant it needs
};

// Checks that `axis` applies to the node's op (Gemm: OutputRows, InputColumns; Conv: OutputChannels)
// and returns the length of the dimension it splits. Throws ModelError naming the node.
int64_t shard_extent(const Node& node, const std::map<std::string, ConstantInfo>& constants, SplitAxis axis);

// `structure` supplies nodes, inputs and outputs (its constants are ignored); `constants` gives the
// dtype and shape of every constant of the full graph. Throws ModelError for an invalid spec.
SlicePlan plan_slice(const Graph& structure, const std::map<std::string, ConstantInfo>& constants,
                     const LoadSpec& spec);

// Fills a tensor with the bytes `r` selects. read(offset, length, dst) copies `length` bytes starting
// at byte `offset` of the source tensor; it is called once per contiguous run.
using ByteReader = std::function<void(uint64_t offset, uint64_t length, void* dst)>;
Tensor read_constant(const ConstantRead& r, const ByteReader& read);

}  // namespace dnn
