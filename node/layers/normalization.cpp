// InstanceNormalization (per image and channel over the spatial dimensions, then a per-channel scale
// and bias) and LayerNormalization (over the dimensions from `axis` on, then an elementwise scale and
// bias; optional Mean and InvStdDev outputs). Statistics in double: these are not hot paths, and a
// two-pass mean/variance in double keeps them exact enough for any row length.
#include <cmath>

#include "layers/common.h"

namespace dnn {
namespace {

class Normalization : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    layer_norm_ = node.op == "LayerNormalization";
    eps_ = node.attrs.f("epsilon", 1e-5f);
    axis_ = node.attrs.i("axis", -1);
    outputs_ = node.outputs.size();
    consts_.resize(node.inputs.size());
    for (size_t i = 1; i < consts.size() && i < consts_.size(); ++i)
      if (consts[i]) consts_[i] = *consts[i];
    if (!layer_norm_ && node.inputs.size() != 3) throw ModelError("expects 3 inputs (X, scale, B)");
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    std::vector<Shape> out = {in.at(0)};
    if (outputs_ > 1) {
      Shape stats = in[0];
      for (int d = split(stats); d < int(stats.size()); ++d) stats[d] = 1;
      out.resize(outputs_, stats);
    }
    return out;
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& x = *in[0];
    if (!layer_norm_ && x.rank() < 2) throw ShapeError("InstanceNormalization needs [N, C, ...], got " + to_string(x.shape()));
    const int axis = split(x.shape());
    int64_t inner = 1;
    for (int d = axis; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t rows = inner ? x.numel() / inner : 0;
    const Tensor* scale = operand(in, 1);
    const Tensor* bias = operand(in, 2);
    // LayerNormalization: scale/bias over the normalised block (or one value); Instance: one per channel.
    const int64_t per = layer_norm_ ? inner : x.dim(1);
    for (const Tensor* t : {scale, bias})
      if (t && t->numel() != per && t->numel() != 1)
        throw ShapeError("scale/bias of shape " + to_string(t->shape()) + " for input " + to_string(x.shape()));
    auto shapes = output_shapes({x.shape()});
    std::vector<Tensor> out;
    for (auto& s : shapes) out.push_back(Tensor::uninitialized(s));
    const float* px = x.f32();
    parallel_chunks(ctx, rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = px + r * inner;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < inner; ++i) mean += row[i];
        mean /= double(inner);
        for (int64_t i = 0; i < inner; ++i) var += (row[i] - mean) * (row[i] - mean);
        var /= double(inner);
        const double inv = 1.0 / std::sqrt(var + eps_);
        float* y = out[0].f32() + r * inner;
        const int64_t channel = layer_norm_ ? 0 : r % x.dim(1);
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t k = layer_norm_ ? i : channel;
          const double s = scale ? scale->f32()[scale->numel() == 1 ? 0 : k] : 1.0;
          const double b = bias ? bias->f32()[bias->numel() == 1 ? 0 : k] : 0.0;
          y[i] = float((row[i] - mean) * inv * s + b);
        }
        if (out.size() > 1) out[1].f32()[r] = float(mean);
        if (out.size() > 2) out[2].f32()[r] = float(inv);
      }
    });
    return out;
  }

 private:
  // The first normalised dimension.
  int split(const Shape& s) const { return layer_norm_ ? normalize_axis(axis_, int(s.size())) : 2; }

  const Tensor* operand(const std::vector<const Tensor*>& in, size_t i) const {
    if (i >= in.size()) return nullptr;
    const Tensor* t = in[i] ? in[i] : (consts_[i].empty() ? nullptr : &consts_[i]);
    if (t && t->dtype() != DType::f32) throw ShapeError("scale and bias must be float");
    return t;
  }

  bool layer_norm_ = false;
  float eps_ = 1e-5f;
  int64_t axis_ = -1;
  size_t outputs_ = 1;
  std::vector<Tensor> consts_;
};

}  // namespace

std::unique_ptr<Layer> make_normalization_layer() { return std::make_unique<Normalization>(); }

}  // namespace dnn
