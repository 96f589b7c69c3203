// Transpose: a strided copy, the output walking the input with permuted strides (ShuffleNet's channel
// shuffle, NHWC <-> NCHW adapters). Contiguous inner runs become memcpy.
#include <numeric>

#include "layers/common.h"

namespace dnn {
namespace {

class Transpose : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    perm_ = node.attrs.ints("perm");
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    auto p = perm(s.size());
    Shape out(s.size());
    for (size_t d = 0; d < s.size(); ++d) out[d] = s[p[d]];
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape& s = in[0]->shape();
    auto p = perm(s.size());
    std::vector<int64_t> in_stride(s.size()), stride(s.size());
    for (int64_t d = static_cast<int64_t>(s.size()) - 1, st = 1; d >= 0; st *= s[d], --d) in_stride[d] = st;
    for (size_t d = 0; d < s.size(); ++d) stride[d] = in_stride[p[d]];
    Tensor out(output_shapes({s})[0]);
    strided_copy(ctx, in[0]->f32(), out.shape(), stride, out.f32());
    return {out};
  }

 private:
  // The permutation for rank r: the attribute, or reversed dimensions by default.
  std::vector<int64_t> perm(size_t r) const {
    std::vector<int64_t> p = perm_;
    if (p.empty()) {
      p.resize(r);
      std::iota(p.rbegin(), p.rend(), 0);
    }
    std::vector<bool> seen(r, false);
    if (p.size() != r) throw ShapeError("perm " + to_string(p) + " does not match rank " + std::to_string(r));
    for (int64_t d : p) {
      if (d < 0 || d >= static_cast<int64_t>(r) || seen[d]) throw ShapeError("perm " + to_string(p) + " is not a permutation");
      seen[d] = true;
    }
    return p;
  }

  std::vector<int64_t> perm_;
};

}  // namespace

std::unique_ptr<Layer> make_transpose_layer() { return std::make_unique<Transpose>(); }

}  // namespace dnn
