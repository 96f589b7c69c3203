// Loads a model by file type: ONNX (.onnx, imported and optimised) or dnnswarm's own format (.dnns).
// Errors name the file.
#pragma once
#include <string>

#include "core/graph.h"

namespace dnn {

Graph load_model(const std::string& path);

}  // namespace dnn
