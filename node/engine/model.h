// Loads a model by file type: ONNX (.onnx: imported, folded and fused) or dnnswarm's own format
// (.dnns: only the bytes of the selected node range and shard are read). Every operator is checked
// against the layer registry here, so an unsupported model fails at load with the op, the node and
// the file named — not half-way through a request.
#pragma once
#include <string>

#include "core/graph.h"
#include "format/shard.h"

namespace dnn {

Graph load_model(const std::string& path, const LoadSpec& spec = {});

}  // namespace dnn
