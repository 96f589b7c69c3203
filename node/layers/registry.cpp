// The operator table: ONNX op name -> factory, from the one declaration in core/operators.def. Each
// factory lives beside its layer in <kind>.cpp.
//
// macs() convention for the layers here: a MAC is one multiply-add or one step of a reduction over a
// window. Pooling counts one per window element per output, global pooling / ReduceMean / Softmax /
// standalone BatchNormalization one per input element, LRN `size` per element. Elementwise
// activations, binary arithmetic and data movement (Reshape, Transpose, Concat, Pad, ...) count 0:
// they are memory-bound, and the planner budgets them by the bytes they move.
#include <algorithm>
#include <map>

#include "core/operators.h"
#include "layers/layer.h"

namespace dnn {

// Factories, one per layer file.
std::unique_ptr<Layer> make_activation_layer();   // activation.cpp
std::unique_ptr<Layer> make_unary_layer();        // unary.cpp
std::unique_ptr<Layer> make_binary_layer();       // binary.cpp
std::unique_ptr<Layer> make_batchnorm_layer();    // batchnorm.cpp
std::unique_ptr<Layer> make_pool_layer();         // pooling.cpp
std::unique_ptr<Layer> make_global_pool_layer();  // pooling.cpp
std::unique_ptr<Layer> make_reshape_layer();      // reshape.cpp
std::unique_ptr<Layer> make_identity_layer();     // identity.cpp
std::unique_ptr<Layer> make_transpose_layer();    // transpose.cpp
std::unique_ptr<Layer> make_concat_layer();       // concat.cpp
std::unique_ptr<Layer> make_elementwise_layer();   // elementwise.cpp: masks, Where, Pow, Min/Max/Sum/Mean
std::unique_ptr<Layer> make_expand_layer();       // expand.cpp: Expand, Tile
std::unique_ptr<Layer> make_split_layer();        // split.cpp
std::unique_ptr<Layer> make_slice_layer();        // slice.cpp
std::unique_ptr<Layer> make_softmax_layer();      // softmax.cpp
std::unique_ptr<Layer> make_pad_layer();          // pad.cpp
std::unique_ptr<Layer> make_normalization_layer();  // normalization.cpp: Instance-, LayerNormalization
std::unique_ptr<Layer> make_argmax_layer();        // argmax.cpp: ArgMax, ArgMin
std::unique_ptr<Layer> make_depth_space_layer();   // depth_space.cpp: DepthToSpace, SpaceToDepth
std::unique_ptr<Layer> make_lrn_layer();          // lrn.cpp
std::unique_ptr<Layer> make_reduce_layer();       // reduce.cpp
std::unique_ptr<Layer> make_resize_layer();       // resize.cpp
std::unique_ptr<Layer> make_conv_layer();         // conv.cpp
std::unique_ptr<Layer> make_gemm_layer();         // gemm.cpp: Gemm, MatMul

namespace {
using Factory = std::unique_ptr<Layer> (*)();
constexpr Factory make_none_layer = nullptr;  // operators the importer only folds

// The operators of core/operators.def that a layer runs.
const std::map<std::string, Factory>& table() {
  static const std::map<std::string, Factory> t = [] {
    std::map<std::string, Factory> m;
    auto add = [&m](const char* name, Factory f) {
      if (f) m[name] = f;
    };
#define OP(name, layer, fold, fuse, shard, since) add(#name, make_##layer##_layer);
#include "core/operators.def"
#undef OP
    return m;
  }();
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
  if (it == table().end()) {
    if (find_operator(node.op))  // declared, but only for the importer to fold
      throw ModelError("unsupported operator " + node.op + " in node '" + node.name +
                       "': supported only where the importer can compute it (constant inputs)");
    throw ModelError("unsupported operator " + node.op + " in node '" + node.name + "'");
  }
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
