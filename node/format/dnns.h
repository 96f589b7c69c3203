// The .dnns model file: dnnswarm's own format, made for slicing (layout: docs/model-format.md).
// A small FlatBuffer header holds the graph and a table of constants; the weights follow, each
// tensor on its own 4096-byte-aligned pages. read_dnns() reads the header, then only the bytes of
// the constants (or constant slices) the requested node range and shard use, with pread.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "core/graph.h"
#include "format/shard.h"

namespace dnn {

constexpr uint32_t kDnnsVersion = 1;
constexpr uint64_t kDnnsAlignment = 4096;

void write_dnns(const Graph& g, const std::string& path);  // throws IoError

// What read_dnns() read from the file: to prove a slice costs only its own bytes.
struct ReadStats {
  uint64_t header_bytes = 0;   // preamble + FlatBuffer header
  uint64_t weight_bytes = 0;   // bytes of weights read
  uint64_t reads = 0;          // pread calls for weights
};

// The graph slice_graph(full, spec) would give (format/shard.h), reading only what it needs.
// Throws IoError (cannot open, short read) and ModelError (bad magic or version, corrupt header,
// offsets outside the file, truncated file, invalid spec) naming the file.
Graph read_dnns(const std::string& path, const LoadSpec& spec = {}, ReadStats* stats = nullptr);

// The graph (nodes, inputs, outputs; no constants) and every constant's dtype and shape, from the
// header alone: what a planner or the node joining a layer's shards needs, without the weights.
struct DnnsHeader {
  Graph graph;
  std::map<std::string, ConstantInfo> constants;
};
DnnsHeader read_dnns_header(const std::string& path);  // same checks and errors as read_dnns

}  // namespace dnn
