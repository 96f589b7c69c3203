// Elementwise activations: Relu (more to come: LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish).
#include "layers/layer.h"

namespace dnn {
namespace {

class Activation : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override { op_ = node.op; }
  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {in.at(0)}; }
  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    Tensor out(in[0]->shape());
    const float* x = in[0]->f32();
    float* y = out.f32();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
    return {out};
  }

 private:
  std::string op_;
};

}  // namespace

std::unique_ptr<Layer> make_activation_layer() { return std::make_unique<Activation>(); }

}  // namespace dnn
