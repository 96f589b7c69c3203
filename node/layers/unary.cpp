// Elementwise math of one float input that CNN epilogues do not fuse: Abs, Neg, Sqrt, Reciprocal,
// Erf, Gelu, Mish, Softplus, Softsign, Elu, Selu. Simple loops on libm (these are not hot paths in
// the vision models dnnswarm runs); large tensors are split across the pool.
#include <cmath>

#include "layers/common.h"

namespace dnn {
namespace {

enum class Kind { Abs, Neg, Sqrt, Reciprocal, Erf, Gelu, Mish, Softplus, Softsign, Elu, Selu };

// log(1 + e^x) without overflow for large x.
float softplus(float x) { return x > 20.f ? x : std::log1p(std::exp(x)); }

class Unary : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    static const std::map<std::string, Kind> kinds = {
        {"Abs", Kind::Abs},   {"Neg", Kind::Neg},           {"Sqrt", Kind::Sqrt},         {"Reciprocal", Kind::Reciprocal},
        {"Erf", Kind::Erf},   {"Gelu", Kind::Gelu},         {"Mish", Kind::Mish},         {"Softplus", Kind::Softplus},
        {"Softsign", Kind::Softsign}, {"Elu", Kind::Elu},   {"Selu", Kind::Selu}};
    kind_ = kinds.at(node.op);
    if (kind_ == Kind::Elu) alpha_ = node.attrs.f("alpha", 1.f);
    if (kind_ == Kind::Selu) {
      alpha_ = node.attrs.f("alpha", 1.67326319217681884765625f);
      gamma_ = node.attrs.f("gamma", 1.05070102214813232421875f);
    }
    if (kind_ == Kind::Gelu) {
      const std::string approx = node.attrs.s("approximate", "none");
      if (approx != "none" && approx != "tanh") throw ModelError("approximate='" + approx + "' is not 'none' or 'tanh'");
      tanh_gelu_ = approx == "tanh";
    }
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {in.at(0)}; }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    if (in[0]->dtype() != DType::f32) throw ShapeError(where_ + ": expects a float input");
    auto out = Tensor::uninitialized(in[0]->shape());
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, out.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = apply(x[i]);
    });
    return {out};
  }

 private:
  float apply(float v) const {
    switch (kind_) {
      case Kind::Abs: return std::fabs(v);
      case Kind::Neg: return -v;
      case Kind::Sqrt: return std::sqrt(v);
      case Kind::Reciprocal: return 1.f / v;
      case Kind::Erf: return std::erf(v);
      case Kind::Gelu:
        if (tanh_gelu_) return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        return 0.5f * v * (1.f + std::erf(v * 0.7071067811865476f));
      case Kind::Mish: return v * std::tanh(softplus(v));
      case Kind::Softplus: return softplus(v);
      case Kind::Softsign: return v / (1.f + std::fabs(v));
      case Kind::Elu: return v < 0.f ? alpha_ * (std::exp(v) - 1.f) : v;
      case Kind::Selu: return v <= 0.f ? gamma_ * alpha_ * (std::exp(v) - 1.f) : gamma_ * v;
    }
    return v;
  }

  Kind kind_ = Kind::Abs;
  float alpha_ = 1.f, gamma_ = 1.f;
  bool tanh_gelu_ = false;
};

}  // namespace

std::unique_ptr<Layer> make_unary_layer() { return std::make_unique<Unary>(); }

}  // namespace dnn
