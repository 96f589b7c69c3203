// Per-node figures of a graph at a given batch size: output shapes, parameters, weight bytes,
// multiply-accumulates and the bytes a pipeline cut after the node would send. Shapes are propagated
// from the graph inputs (run-time dimensions set to `batch`) by building each node's layer in turn
// and freeing it right away, so this costs little memory. Used by `inspect` and the planner.
#pragma once
#include <vector>

#include "core/graph.h"

namespace dnn {

struct NodeStats {
  std::vector<Shape> out_shapes;
  int64_t params = 0;        // float32 constant elements (weights, biases)
  int64_t weight_bytes = 0;  // bytes of all its constant inputs
  int64_t macs = 0;
  int64_t output_bytes = 0;  // bytes of its outputs
  int64_t cut_bytes = 0;     // float32 activations crossing a cut right after this node
};

std::vector<NodeStats> node_stats(const Graph& g, int64_t batch = 1);

}  // namespace dnn
