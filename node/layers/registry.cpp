// The operator table: ONNX op name -> factory. Each factory lives beside its layer in <kind>.cpp.
//
// macs() convention for the layers here: a MAC is one multiply-add or one step of a reduction over a
// window. Pooling counts one per window element per output, global pooling / ReduceMean / Softmax /
// standalone BatchNormalization one per input element, LRN `size` per element. Elementwise
// activations, binary arithmetic and data movement (Reshape, Transpose, Concat, Pad, ...) count 0:
// they are memory-bound, and the planner budgets them by the bytes they move.
#include <algorithm>
#include <map>

#include "layers/layer.h"

namespace dnn {

// Factories, one per layer file.
std::unique_ptr<Layer> make_activation_layer();   // activation.cpp
std::unique_ptr<Layer> make_binary_layer();       // binary.cpp
std::unique_ptr<Layer> make_batchnorm_layer();    // batchnorm.cpp
std::unique_ptr<Layer> make_pool_layer();         // pooling.cpp
std::unique_ptr<Layer> make_global_pool_layer();  // pooling.cpp
std::unique_ptr<Layer> make_reshape_layer();      // reshape.cpp
std::unique_ptr<Layer> make_identity_layer();     // identity.cpp
std::unique_ptr<Layer> make_transpose_layer();    // transpose.cpp
std::unique_ptr<Layer> make_concat_layer();       // concat.cpp
std::unique_ptr<Layer> make_split_layer();        // split.cpp
std::unique_ptr<Layer> make_slice_layer();        // slice.cpp
std::unique_ptr<Layer> make_softmax_layer();      // softmax.cpp
std::unique_ptr<Layer> make_pad_layer();          // pad.cpp
std::unique_ptr<Layer> make_lrn_layer();          // lrn.cpp
std::unique_ptr<Layer> make_reduce_layer();       // reduce.cpp
std::unique_ptr<Layer> make_resize_layer();       // resize.cpp
std::unique_ptr<Layer> make_conv_layer();         // conv.cpp
std::unique_ptr<Layer> make_gemm_layer();         // gemm.cpp: Gemm, MatMul

namespace {
using Factory = std::unique_ptr<Layer> (*)();
const std::map<std::string, Factory>& table() {
  static const std::map<std::string, Factory> t = {
      {"Relu", make_activation_layer},
      {"LeakyRelu", make_activation_layer},
      {"Clip", make_activation_layer},
      {"Sigmoid", make_activation_layer},
      {"HardSigmoid", make_activation_layer},
      {"HardSwish", make_activation_layer},
      {"Tanh", make_activation_layer},
      {"Exp", make_activation_layer},
      {"Add", make_binary_layer},
      {"Sub", make_binary_layer},
      {"Mul", make_binary_layer},
      {"Div", make_binary_layer},
      {"PRelu", make_binary_layer},
      {"BatchNormalization", make_batchnorm_layer},
      {"MaxPool", make_pool_layer},
      {"AveragePool", make_pool_layer},
      {"GlobalAveragePool", make_global_pool_layer},
      {"GlobalMaxPool", make_global_pool_layer},
      {"Reshape", make_reshape_layer},
      {"Flatten", make_reshape_layer},
      {"Squeeze", make_reshape_layer},
      {"Unsqueeze", make_reshape_layer},
      {"Identity", make_identity_layer},
      {"Dropout", make_identity_layer},
      {"Transpose", make_transpose_layer},
      {"Concat", make_concat_layer},
      {"Split", make_split_layer},
      {"Slice", make_slice_layer},
      {"Softmax", make_softmax_layer},
      {"LogSoftmax", make_softmax_layer},
      {"Pad", make_pad_layer},
      {"LRN", make_lrn_layer},
      {"ReduceMean", make_reduce_layer},
      {"ReduceSum", make_reduce_layer},
      {"ReduceMax", make_reduce_layer},
      {"ReduceMin", make_reduce_layer},
      {"Upsample", make_resize_layer},
      {"Resize", make_resize_layer},
      {"Conv", make_conv_layer},
      {"Gemm", make_gemm_layer},
      {"MatMul", make_gemm_layer},
  };
  return t;
}
}  // namespace

bool is_supported_op(const std::string& op) { return table().count(op) != 0; }

std::vector<std::string> supported_ops() {
  std::vector<std::string> ops;
  for (auto& kv : table()) ops.push_back(kv.first);
  return ops;
}

std::unique_ptr<Layer> make_layer(const Node& node, const std::vector<const Tensor*>& consts) {
  auto it = table().find(node.op);
  if (it == table().end())
    throw ModelError("unsupported operator " + node.op + " in node '" + node.name + "'");
  auto layer = it->second();
  layer->where_ = "node '" + node.name + "' (" + node.op + ")";
  try {
    layer->load(node, consts);
  } catch (const ModelError& e) {
    throw ModelError(layer->where_ + ": " + e.what());
  }
  return layer;
}

}  // namespace dnn
