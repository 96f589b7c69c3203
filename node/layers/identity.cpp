// Identity and Dropout (inference: the identity). Both return a view of the input.
#include "layers/common.h"

namespace dnn {
namespace {

class IdentityLayer : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    // Dropout's mask is a bool tensor, which dnnswarm does not represent; refuse rather than omit it.
    if (node.outputs.size() > 1 && !node.outputs[1].empty()) throw ModelError("the mask output is not supported");
    if (node.op == "Dropout" && node.inputs.size() > 2 && !node.inputs[2].empty()) {
      if (!consts[2] || consts[2]->to_i64_vector().at(0) != 0)
        throw ModelError("training_mode must be a constant false (inference only)");
    }
  }
  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {in.at(0)}; }
  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override { return {*in[0]}; }
};

}  // namespace

std::unique_ptr<Layer> make_identity_layer() { return std::make_unique<IdentityLayer>(); }

}  // namespace dnn
