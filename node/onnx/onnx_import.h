// ONNX model import: reads a .onnx file and returns the dnnswarm Graph every other module works on.
//
// What comes out is the "canonical graph" described in docs/model-format.md: constant subgraphs folded
// away, opset differences removed (operands that are really parameters become attributes),
// BatchNormalization folded into convolutions, activations and residual adds fused into Conv/Gemm,
// nodes topologically sorted with unique names.
#pragma once
#include <string>

#include "core/graph.h"
#include "core/tensor.h"

namespace onnx {
class TensorProto;
}

namespace dnn {

// Throws IoError (missing/unreadable file) or ModelError (corrupt, truncated, unsupported), naming the file.
Graph import_onnx(const std::string& path);

// An ONNX tensor as float32 (float, double, float16) or int64 (all integer types and bool), from
// raw_data or the typed fields. `what` names the tensor in errors. External data is rejected.
Tensor tensor_from_proto(const onnx::TensorProto& t, const std::string& what);

}  // namespace dnn
