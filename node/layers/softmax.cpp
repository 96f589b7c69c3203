// Softmax and LogSoftmax with opset-13 semantics: normalise along `axis` (default -1). (The importer
// rewrites the older flatten-to-2-D semantics as Flatten -> Softmax(axis=1) -> Reshape.)
// The work is [outer, n, inner] with the reduction over n; inner = 1 is the usual case.
#include <cmath>
#include <limits>

#include "layers/common.h"

namespace dnn {
namespace {

class Softmax : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    log_ = node.op == "LogSoftmax";
    axis_ = node.attrs.i("axis", -1);
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {in.at(0)}; }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape& s = in[0]->shape();
    const int r = static_cast<int>(s.size());
    const int axis = normalize_axis(axis_, r);
    const int64_t outer = numel(Shape(s.begin(), s.begin() + axis)), n = s[axis];
    const int64_t inner = numel(Shape(s.begin() + axis + 1, s.end()));
    Tensor out(s);
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n * inner)), [&](int64_t o0, int64_t o1) {
      std::vector<float> peak(inner), sum(inner);
      for (int64_t o = o0; o < o1; ++o) {
        const float* xo = x + o * n * inner;
        float* yo = y + o * n * inner;
        // Subtracting the maximum keeps exp() finite; the result is unchanged.
        std::fill(peak.begin(), peak.end(), -std::numeric_limits<float>::infinity());
        std::fill(sum.begin(), sum.end(), 0.f);
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < inner; ++j) peak[j] = std::max(peak[j], xo[k * inner + j]);
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < inner; ++j) {
            const float e = vexp(xo[k * inner + j] - peak[j]);
            if (!log_) yo[k * inner + j] = e;
            sum[j] += e;
          }
        for (int64_t j = 0; j < inner; ++j) sum[j] = log_ ? peak[j] + std::log(sum[j]) : 1.f / sum[j];
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < inner; ++j)
            yo[k * inner + j] = log_ ? xo[k * inner + j] - sum[j] : yo[k * inner + j] * sum[j];
      }
    });
    return {out};
  }

  // One MAC per element (the exp-and-sum pass).
  int64_t macs(const std::vector<Shape>& in) const override { return numel(in.at(0)); }

 private:
  int64_t axis_ = -1;
  bool log_ = false;
};

}  // namespace

std::unique_ptr<Layer> make_softmax_layer() { return std::make_unique<Softmax>(); }

}  // namespace dnn
