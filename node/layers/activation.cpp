// Elementwise activations of one input: Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh,
// Exp. Each kind is a branch-free loop the compiler vectorises; Sigmoid and Exp use vexp() for that
// (libm's expf is scalar), Tanh stays on libm (rare in CNNs). Large tensors are split across the pool.
#include <cmath>
#include <limits>

#include "layers/common.h"

namespace dnn {
namespace {

enum class Kind { Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Exp };

class Activation : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    static const std::map<std::string, Kind> kinds = {
        {"Relu", Kind::Relu},       {"LeakyRelu", Kind::LeakyRelu},     {"Clip", Kind::Clip},
        {"Sigmoid", Kind::Sigmoid}, {"HardSigmoid", Kind::HardSigmoid}, {"HardSwish", Kind::HardSwish},
        {"Tanh", Kind::Tanh},       {"Exp", Kind::Exp}};
    kind_ = kinds.at(node.op);
    if (kind_ == Kind::LeakyRelu) alpha_ = node.attrs.f("alpha", 0.01f);
    if (kind_ == Kind::HardSigmoid) {
      alpha_ = node.attrs.f("alpha", 0.2f);
      beta_ = node.attrs.f("beta", 0.5f);
    }
    if (kind_ == Kind::Clip) {
      std::vector<float> v;
      if (float_operand(node, consts, "min", 1, v)) lo_ = scalar(v, "min");
      if (float_operand(node, consts, "max", 2, v)) hi_ = scalar(v, "max");
    }
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {in.at(0)}; }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    auto out = Tensor::uninitialized(in[0]->shape());
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, out.numel(), 1 << 15, [&](int64_t b, int64_t e) { apply(x + b, y + b, e - b); });
    return {out};
  }

 private:
  static float scalar(const std::vector<float>& v, const char* what) {
    if (v.size() != 1) throw ModelError(std::string("Clip ") + what + " must be a scalar");
    return v[0];
  }

  void apply(const float* x, float* y, int64_t n) const {
    const float a = alpha_, b = beta_, lo = lo_, hi = hi_;
    switch (kind_) {
      case Kind::Relu:
        for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], 0.f);
        break;
      case Kind::LeakyRelu:
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= 0.f ? x[i] : a * x[i];
        break;
      case Kind::Clip:
        for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], lo), hi);
        break;
      case Kind::HardSigmoid:
        for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(a * x[i] + b, 0.f), 1.f);
        break;
      case Kind::HardSwish:
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * std::min(std::max(x[i] * (1.f / 6.f) + 0.5f, 0.f), 1.f);
        break;
      case Kind::Sigmoid:
        for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + vexp(-x[i]));
        break;
      case Kind::Tanh:
        for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
        break;
      case Kind::Exp:
        for (int64_t i = 0; i < n; ++i) y[i] = vexp(x[i]);
        break;
    }
  }

  Kind kind_ = Kind::Relu;
  float alpha_ = 0.f, beta_ = 0.f;
  float lo_ = -std::numeric_limits<float>::infinity(), hi_ = std::numeric_limits<float>::infinity();
};

}  // namespace

std::unique_ptr<Layer> make_activation_layer() { return std::make_unique<Activation>(); }

}  // namespace dnn
