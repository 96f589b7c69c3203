// Upsample and Resize, nearest-neighbour only (the mode CNN classifiers and FPN-style heads use).
// Output size from `sizes`, else from `scales` (attributes in the canonical graph, or constant inputs:
// Upsample takes scales as input 1, Resize-11+ roi, scales, sizes as inputs 1-3). Each output
// dimension maps to a source index per coordinate_transformation_mode and nearest_mode (defaults:
// Upsample asymmetric/floor, Resize the opset-11 half_pixel/round_prefer_floor, so an opset-10
// Resize must carry asymmetric/floor as attributes); one gather builds the output.
#include <cmath>
#include <set>

#include "layers/common.h"

namespace dnn {
namespace {

class Resize : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    const bool upsample = node.op == "Upsample";
    if (node.attrs.s("mode", "nearest") != "nearest")
      throw ModelError("mode '" + node.attrs.s("mode", "") + "' is not supported (nearest only)");
    coord_ = node.attrs.s("coordinate_transformation_mode", upsample ? "asymmetric" : "half_pixel");
    nearest_ = node.attrs.s("nearest_mode", upsample ? "floor" : "round_prefer_floor");
    static const std::set<std::string> coords = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                                 "tf_half_pixel_for_nn"};
    static const std::set<std::string> roundings = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    if (!coords.count(coord_)) throw ModelError("coordinate_transformation_mode '" + coord_ + "' is not supported");
    if (!roundings.count(nearest_)) throw ModelError("nearest_mode '" + nearest_ + "' is not supported");
    if (node.attrs.has("axes")) throw ModelError("attribute 'axes' is not supported");
    float_operand(node, consts, "scales", upsample ? 1 : 2, scales_);
    if (!upsample) int_operand(node, consts, "sizes", 3, sizes_);
    if (scales_.empty() && sizes_.empty()) throw ModelError("neither scales nor sizes is given");
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    const size_t r = s.size();
    if (!sizes_.empty()) {
      if (sizes_.size() != r) throw ShapeError("sizes " + to_string(sizes_) + " do not match rank " + std::to_string(r));
      return {Shape(sizes_.begin(), sizes_.end())};
    }
    if (scales_.size() != r) throw ShapeError("scales do not match rank " + std::to_string(r));
    Shape out(r);
    for (size_t d = 0; d < r; ++d) out[d] = static_cast<int64_t>(std::floor(s[d] * scales_[d]));
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape& s = in[0]->shape();
    Tensor out(output_shapes({s})[0]);
    std::vector<std::vector<int64_t>> maps(s.size());
    for (size_t d = 0; d < s.size(); ++d) {
      const int64_t n_out = out.shape()[d];
      // With sizes given, the effective scale is out/in (ONNX).
      const double scale = sizes_.empty() ? scales_[d] : static_cast<double>(n_out) / s[d];
      for (int64_t o = 0; o < n_out; ++o) maps[d].push_back(source(o, scale, s[d], n_out));
    }
    gather_by_maps(in[0]->f32(), s, maps, 0.f, out.f32());
    return {out};
  }

 private:
  int64_t source(int64_t o, double scale, int64_t n_in, int64_t n_out) const {
    double x;
    if (coord_ == "half_pixel")
      x = (o + 0.5) / scale - 0.5;
    else if (coord_ == "pytorch_half_pixel")
      x = n_out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    else if (coord_ == "align_corners")
      x = n_out > 1 ? o * static_cast<double>(n_in - 1) / (n_out - 1) : 0.0;
    else if (coord_ == "tf_half_pixel_for_nn")
      x = (o + 0.5) / scale;
    else  // asymmetric
      x = o / scale;
    int64_t i;
    if (nearest_ == "floor")
      i = static_cast<int64_t>(std::floor(x));
    else if (nearest_ == "ceil")
      i = static_cast<int64_t>(std::ceil(x));
    else if (x == std::floor(x) + 0.5)  // a tie
      i = static_cast<int64_t>(nearest_ == "round_prefer_ceil" ? std::ceil(x) : std::floor(x));
    else
      i = static_cast<int64_t>(std::round(x));
    return std::clamp<int64_t>(i, 0, n_in - 1);
  }

  std::string coord_, nearest_;
  std::vector<float> scales_;
  std::vector<int64_t> sizes_;
};

}  // namespace

std::unique_ptr<Layer> make_resize_layer() { return std::make_unique<Resize>(); }

}  // namespace dnn
