// The operator table: ONNX op name -> factory. Each factory lives beside its layer in <kind>.cpp.
#include <algorithm>
#include <map>

#include "layers/layer.h"

namespace dnn {

// Factories, one per layer file.
std::unique_ptr<Layer> make_activation_layer();  // activation.cpp: Relu, LeakyRelu, Clip, Sigmoid, ...

namespace {
using Factory = std::unique_ptr<Layer> (*)();
const std::map<std::string, Factory>& table() {
  static const std::map<std::string, Factory> t = {
      {"Relu", make_activation_layer},
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
