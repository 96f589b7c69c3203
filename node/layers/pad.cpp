// Pad with mode constant (`value`), reflect or edge. `pads` = [begin_0.., end_0..] per dimension
// (attribute, or constant input 1; negative pads crop). Each output dimension gets a map to its
// source index (-1 = the constant), then one gather builds the output.
#include "layers/common.h"

namespace dnn {
namespace {

class Pad : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    mode_ = node.attrs.s("mode", "constant");
    if (mode_ != "constant" && mode_ != "reflect" && mode_ != "edge") throw ModelError("mode '" + mode_ + "' is not supported");
    if (!int_operand(node, consts, "pads", 1, pads_)) throw ModelError("pads are missing");
    std::vector<float> v;
    if (float_operand(node, consts, "value", 2, v)) {
      if (v.size() != 1) throw ModelError("the constant value must be a scalar");
      value_ = v[0];
    }
    if (node.inputs.size() > 3 && !node.inputs[3].empty()) throw ModelError("the axes input is not supported");
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    const size_t r = s.size();
    if (pads_.size() != 2 * r) throw ShapeError("pads " + to_string(pads_) + " do not match rank " + std::to_string(r));
    Shape out(r);
    for (size_t d = 0; d < r; ++d) {
      out[d] = s[d] + pads_[d] + pads_[d + r];
      if (out[d] < 0) throw ShapeError("pads " + to_string(pads_) + " crop more than dimension " + std::to_string(d) + " has");
      if (mode_ != "constant" && s[d] == 0 && out[d] > 0) throw ShapeError("cannot " + mode_ + "-pad an empty dimension");
      if (mode_ == "reflect" && s[d] > 1 && std::max(pads_[d], pads_[d + r]) >= s[d])
        throw ShapeError("reflect pads must be smaller than the dimension they pad");
    }
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape& s = in[0]->shape();
    Tensor out(output_shapes({s})[0]);
    const size_t r = s.size();
    std::vector<std::vector<int64_t>> maps(r);
    for (size_t d = 0; d < r; ++d)
      for (int64_t o = 0; o < out.shape()[d]; ++o) maps[d].push_back(source(o - pads_[d], s[d]));
    gather_by_maps(ctx, in[0]->f32(), s, maps, value_, out.f32());
    return {out};
  }

 private:
  // The input index an output position reads, or -1 for the constant.
  int64_t source(int64_t i, int64_t n) const {
    if (i >= 0 && i < n) return i;
    if (mode_ == "constant") return -1;
    if (mode_ == "edge") return i < 0 ? 0 : n - 1;
    if (n == 1) return 0;
    return i < 0 ? -i : 2 * (n - 1) - i;  // reflect, excluding the edge itself
  }

  std::string mode_;
  std::vector<int64_t> pads_;
  float value_ = 0.f;
};

}  // namespace

std::unique_ptr<Layer> make_pad_layer() { return std::make_unique<Pad>(); }

}  // namespace dnn
