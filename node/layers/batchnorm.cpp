// BatchNormalization in inference form, for the ones the importer could not fold into a preceding
// Conv (e.g. paddle2onnx graphs, or a BN after a pooling layer): y = x * a[c] + b[c] with
// a = scale / sqrt(var + eps), b = bias - mean * a, precomputed at load. Channels are dimension 1.
// Honours the fusion attributes (dnn.activation, ...) like Conv, so a pre-activation block's
// BN -> Relu (DenseNet) can run as one pass if the importer fuses it.
#include <cmath>
#include <limits>

#include "kernels/activation.h"
#include "layers/common.h"

namespace dnn {
namespace {

class BatchNorm : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    if (node.attrs.i("training_mode", 0) != 0) throw ModelError("training_mode=1 is not supported (inference only)");
    if (node.attrs.i("spatial", 1) != 1) throw ModelError("spatial=0 is not supported");
    if (node.inputs.size() != 5) throw ModelError("expects 5 inputs (X, scale, B, mean, var)");
    if (node.outputs.size() != 1) throw ModelError("running mean/var outputs (training) are not supported");
    const char* names[] = {"", "scale", "B", "mean", "var"};
    std::vector<float> p[5];
    for (int i = 1; i < 5; ++i) {
      if (!float_operand(node, consts, names[i], i, p[i]) || (i > 1 && p[i].size() != p[1].size()))
        throw ModelError(std::string("input '") + names[i] + "' must be a constant with one value per channel");
    }
    act_ = kernels::make_activation(node.attrs.s("dnn.activation", ""),
                                    node.attrs.f("dnn.act_min", std::numeric_limits<float>::lowest()),
                                    node.attrs.f("dnn.act_max", std::numeric_limits<float>::max()),
                                    node.attrs.f("dnn.act_alpha", 0.01f));
    const float eps = node.attrs.f("epsilon", 1e-5f);
    mul_.resize(p[1].size());
    add_.resize(p[1].size());
    for (size_t c = 0; c < mul_.size(); ++c) {
      mul_[c] = p[1][c] / std::sqrt(p[4][c] + eps);
      add_[c] = p[2][c] - p[3][c] * mul_[c];
    }
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    if (s.size() < 2 || s[1] != static_cast<int64_t>(mul_.size()))
      throw ShapeError("input " + to_string(s) + " does not have " + std::to_string(mul_.size()) + " channels");
    return {s};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape shape = output_shapes({in[0]->shape()})[0];
    auto out = Tensor::uninitialized(shape);
    const int64_t channels = shape[1], plane = numel(shape) / std::max<int64_t>(1, shape[0] * channels);
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, shape[0] * channels, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plane)),
                    [&](int64_t p0, int64_t p1) {
                      for (int64_t p = p0; p < p1; ++p) {
                        const float a = mul_[p % channels], b = add_[p % channels];
                        const float* xp = x + p * plane;
                        float* yp = y + p * plane;
                        for (int64_t i = 0; i < plane; ++i) yp[i] = xp[i] * a + b;
                        if (act_.kind != kernels::ActKind::None) kernels::finish_row(yp, plane, 0.f, nullptr, act_);
                      }
                    });
    return {out};
  }

  // One multiply-add per element.
  int64_t macs(const std::vector<Shape>& in) const override { return numel(in.at(0)); }

 private:
  std::vector<float> mul_, add_;
  kernels::Activation act_;
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm_layer() { return std::make_unique<BatchNorm>(); }

}  // namespace dnn
