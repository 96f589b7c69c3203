// Concat along one axis: for each index of the outer dimensions, each input contributes one
// contiguous block. Inputs may be constants (kept from load).
#include "layers/common.h"

namespace dnn {
namespace {

class Concat : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    if (!node.attrs.has("axis")) throw ModelError("attribute 'axis' is required");
    axis_ = node.attrs.i("axis", 0);
    consts_.resize(node.inputs.size());
    for (size_t i = 0; i < consts.size(); ++i)
      if (consts[i]) {
        if (consts[i]->dtype() != DType::f32) throw ModelError("constant input " + std::to_string(i) + " is not float32");
        consts_[i] = *consts[i];
      }
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    if (in.empty()) throw ShapeError("no inputs");
    Shape out = in[0];
    const int axis = normalize_axis(axis_, static_cast<int>(out.size()));
    for (size_t i = 1; i < in.size(); ++i) {
      bool ok = in[i].size() == out.size();
      for (size_t d = 0; ok && d < out.size(); ++d) ok = static_cast<int>(d) == axis || in[i][d] == out[d];
      if (!ok) throw ShapeError("input " + to_string(in[i]) + " does not match " + to_string(in[0]) + " outside axis " + std::to_string(axis));
      out[axis] += in[i][axis];
    }
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    std::vector<const Tensor*> parts(in.size());
    std::vector<Shape> shapes(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      parts[i] = in[i] ? in[i] : &consts_[i];
      shapes[i] = parts[i]->shape();
    }
    Tensor out(output_shapes(shapes)[0]);
    const Shape& s = out.shape();
    const int axis = normalize_axis(axis_, static_cast<int>(s.size()));
    const int64_t outer = numel(Shape(s.begin(), s.begin() + axis)), inner = numel(Shape(s.begin() + axis + 1, s.end()));
    float* y = out.f32();
    std::vector<Copy> copies;
    for (int64_t o = 0; o < outer; ++o)
      for (auto* p : parts) {
        const int64_t block = p->dim(axis) * inner;
        copies.push_back({p->f32() + o * block, y, block});
        y += block;
      }
    parallel_copies(ctx, copies);
    return {out};
  }

 private:
  int64_t axis_ = 0;
  std::vector<Tensor> consts_;  // by input index; empty for activations
};

}  // namespace

std::unique_ptr<Layer> make_concat_layer() { return std::make_unique<Concat>(); }

}  // namespace dnn
