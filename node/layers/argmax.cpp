// ArgMax and ArgMin along one axis, as int64 indices (first or, with select_last_index, last of ties).
#include "layers/common.h"

namespace dnn {
namespace {

class ArgExtreme : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    max_ = node.op == "ArgMax";
    axis_ = node.attrs.i("axis", 0);
    keepdims_ = node.attrs.i("keepdims", 1) != 0;
    last_ = node.attrs.i("select_last_index", 0) != 0;
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    Shape s = in.at(0);
    const int a = normalize_axis(axis_, int(s.size()));
    if (keepdims_) s[a] = 1;
    else s.erase(s.begin() + a);
    return {s};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& x = *in[0];
    if (x.dtype() != DType::f32) throw ShapeError("expects a float input");
    const int a = normalize_axis(axis_, x.rank());
    if (x.dim(a) == 0) throw ShapeError("cannot take an index along an empty axis");
    auto y = Tensor::uninitialized(output_shapes({x.shape()})[0], DType::i64);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < a; ++d) outer *= x.dim(d);
    for (int d = a + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t n = x.dim(a);
    parallel_chunks(ctx, outer * inner, 1024, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        const float* p = x.f32() + (j / inner) * n * inner + j % inner;
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k) {
          const float v = p[k * inner], cur = p[best * inner];
          const bool better = max_ ? (last_ ? v >= cur : v > cur) : (last_ ? v <= cur : v < cur);
          if (better) best = k;
        }
        y.i64()[j] = best;
      }
    });
    return {y};
  }

 private:
  bool max_ = true, keepdims_ = true, last_ = false;
  int64_t axis_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_argmax_layer() { return std::make_unique<ArgExtreme>(); }

}  // namespace dnn
