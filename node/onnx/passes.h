// Internal to node/onnx: the rewrites import_onnx applies after constant folding, in this order.
// Each pass leaves a correct graph when its pattern does not match.
#pragma once
#include "core/graph.h"
#include "onnx/proto_util.h"

namespace dnn {

// Opset differences -> one form (docs/model-format.md, "Canonical graph"). Needs the folded constants.
void canonicalize(Graph& g, int opset, const ShapeMap& shapes);

void remove_passthrough_nodes(Graph& g);                // Dropout, Identity: consumers read the input
void gemm_weights_canonical(Graph& g, const ShapeMap& shapes);  // MatMul(x, W) -> Gemm; B stored [N,K]
void fold_batchnorm(Graph& g);                          // BN after Conv/Gemm -> scaled weights, bias
void fuse_residual_add(Graph& g, const ShapeMap& shapes);  // Conv -> Add(., skip) -> 4th Conv input
void recognise_hardswish(Graph& g);                     // x * HardSigmoid(x; 1/6, 1/2) -> HardSwish(x)
void fuse_activation(Graph& g);  // Conv/Gemm/BatchNormalization -> Relu/Clip/... -> dnn.activation

// Drops unused nodes and constants and sorts nodes topologically (stable: keeps the original order
// wherever dependencies allow).
void finalize(Graph& g);

}  // namespace dnn
