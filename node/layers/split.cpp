// Split along one axis into several outputs: sizes from `split` (attribute or constant input), else
// equal parts, one per output. Each output is a copy (a view would need strides for axis > 0).
#include "layers/common.h"

namespace dnn {
namespace {

class Split : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    axis_ = node.attrs.i("axis", 0);
    outputs_ = static_cast<int64_t>(node.outputs.size());
    if (int_operand(node, consts, "split", 1, sizes_) && static_cast<int64_t>(sizes_.size()) != outputs_)
      throw ModelError("split has " + std::to_string(sizes_.size()) + " sizes for " + std::to_string(outputs_) + " outputs");
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    const int axis = normalize_axis(axis_, static_cast<int>(s.size()));
    std::vector<int64_t> sizes = sizes_;
    if (sizes.empty()) {
      if (s[axis] % outputs_ != 0)
        throw ShapeError("dimension " + std::to_string(s[axis]) + " does not split into " + std::to_string(outputs_) + " equal parts");
      sizes.assign(outputs_, s[axis] / outputs_);
    }
    int64_t total = 0;
    std::vector<Shape> out;
    for (int64_t n : sizes) {
      Shape o = s;
      o[axis] = n;
      out.push_back(o);
      total += n;
    }
    if (total != s[axis]) throw ShapeError("split sizes " + to_string(sizes) + " do not add up to " + std::to_string(s[axis]));
    return out;
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape& s = in[0]->shape();
    const int axis = normalize_axis(axis_, static_cast<int>(s.size()));
    const int64_t outer = numel(Shape(s.begin(), s.begin() + axis)), inner = numel(Shape(s.begin() + axis + 1, s.end()));
    const int64_t row = s[axis] * inner;
    std::vector<Tensor> outs;
    std::vector<Copy> copies;
    int64_t offset = 0;  // along the axis, in elements of one outer row
    for (auto& shape : output_shapes({s})) {
      Tensor t(shape);
      const int64_t block = shape[axis] * inner;
      for (int64_t o = 0; o < outer; ++o) copies.push_back({in[0]->f32() + o * row + offset, t.f32() + o * block, block});
      offset += block;
      outs.push_back(t);
    }
    parallel_copies(ctx, copies);
    return outs;
  }

 private:
  int64_t axis_ = 0, outputs_ = 1;
  std::vector<int64_t> sizes_;
};

}  // namespace

std::unique_ptr<Layer> make_split_layer() { return std::make_unique<Split>(); }

}  // namespace dnn
