// LRN across channels (AlexNet, GoogLeNet): y = x / (bias + alpha/size * sum of x^2 over the `size`
// channels centred on c)^beta, one (n, c) plane at a time.
#include <cmath>

#include "layers/common.h"

namespace dnn {
namespace {

class Lrn : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    size_ = node.attrs.i("size", 0);
    if (size_ < 1) throw ModelError("attribute 'size' must be positive");
    alpha_ = node.attrs.f("alpha", 1e-4f);
    beta_ = node.attrs.f("beta", 0.75f);
    bias_ = node.attrs.f("bias", 1.f);
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    if (in.at(0).size() < 2) throw ShapeError("input " + to_string(in[0]) + " has no channel dimension");
    return {in[0]};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape s = output_shapes({in[0]->shape()})[0];
    Tensor out(s);
    const int64_t channels = s[1], plane = numel(s) / std::max<int64_t>(1, s[0] * channels);
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;  // window [c - before, c + after]
    const float scale = alpha_ / static_cast<float>(size_);
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, s[0] * channels, 1, [&](int64_t p0, int64_t p1) {
      std::vector<float> sq(plane);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n = p / channels, c = p % channels;
        std::fill(sq.begin(), sq.end(), 0.f);
        for (int64_t k = std::max<int64_t>(0, c - before); k <= std::min(channels - 1, c + after); ++k) {
          const float* xk = x + (n * channels + k) * plane;
          for (int64_t i = 0; i < plane; ++i) sq[i] += xk[i] * xk[i];
        }
        const float* xp = x + p * plane;
        float* yp = y + p * plane;
        if (beta_ == 0.75f)  // AlexNet's and GoogLeNet's value: b^-0.75 = 1 / (sqrt(b) sqrt(sqrt(b))), vectorised
          for (int64_t i = 0; i < plane; ++i) {
            const float b = bias_ + scale * sq[i], r = std::sqrt(b);
            yp[i] = xp[i] / (r * std::sqrt(r));
          }
        else
          for (int64_t i = 0; i < plane; ++i) yp[i] = xp[i] / std::pow(bias_ + scale * sq[i], beta_);
      }
    });
    return {out};
  }

  // `size` MACs per element for the squared sum.
  int64_t macs(const std::vector<Shape>& in) const override { return numel(in.at(0)) * size_; }

 private:
  int64_t size_ = 0;
  float alpha_ = 0, beta_ = 0, bias_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_lrn_layer() { return std::make_unique<Lrn>(); }

}  // namespace dnn
