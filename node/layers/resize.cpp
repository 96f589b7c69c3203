// Upsample and Resize, modes nearest, linear (N-linear: bilinear for images) and cubic. Output size from
// `sizes`, else from `scales` (attributes in the canonical graph, or constant inputs: Upsample takes
// scales as input 1, Resize-11+ roi, scales, sizes as inputs 1-3). Each output coordinate maps back
// to the input per coordinate_transformation_mode (defaults: Upsample asymmetric/floor, Resize the
// opset-11 half_pixel/round_prefer_floor, so an opset-10 Resize must carry asymmetric/floor as
// attributes). Nearest: one gather through per-dimension index maps. Linear and cubic: separable, one
// pass per resized dimension blending 2 or 4 neighbours (indices clamped to the edge, as ONNX does;
// tf_crop_and_resize writes extrapolation_value where a coordinate leaves the input).
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
    mode_ = node.attrs.s("mode", "nearest");
    if (mode_ != "nearest" && mode_ != "linear" && mode_ != "cubic")
      throw ModelError("mode '" + mode_ + "' is not supported");
    cubic_a_ = node.attrs.f("cubic_coeff_a", -0.75f);
    exclude_outside_ = node.attrs.i("exclude_outside", 0) != 0;
    coord_ = node.attrs.s("coordinate_transformation_mode", upsample ? "asymmetric" : "half_pixel");
    nearest_ = node.attrs.s("nearest_mode", upsample ? "floor" : "round_prefer_floor");
    static const std::set<std::string> coords = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                                 "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const std::set<std::string> roundings = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    if (!coords.count(coord_)) throw ModelError("coordinate_transformation_mode '" + coord_ + "' is not supported");
    if (!roundings.count(nearest_)) throw ModelError("nearest_mode '" + nearest_ + "' is not supported");
    if (node.attrs.has("axes")) throw ModelError("attribute 'axes' is not supported");
    if (node.attrs.i("antialias", 0) != 0) throw ModelError("antialias is not supported");
    if (node.attrs.s("keep_aspect_ratio_policy", "stretch") != "stretch")
      throw ModelError("keep_aspect_ratio_policy '" + node.attrs.s("keep_aspect_ratio_policy", "") + "' is not supported");
    float_operand(node, consts, "scales", upsample ? 1 : 2, scales_);
    if (!upsample) int_operand(node, consts, "sizes", 3, sizes_);
    if (coord_ == "tf_crop_and_resize") {
      if (mode_ == "nearest") throw ModelError("tf_crop_and_resize is supported with linear and cubic modes only");
      if (!float_operand(node, consts, "roi", 1, roi_)) throw ModelError("tf_crop_and_resize needs roi");
      extrapolation_ = node.attrs.f("extrapolation_value", 0.f);
    }
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
    const Shape out_shape = output_shapes({s})[0];
    if (mode_ != "nearest") return {interpolate(*in[0], out_shape)};
    Tensor out(out_shape);
    std::vector<std::vector<int64_t>> maps(s.size());
    for (size_t d = 0; d < s.size(); ++d)
      for (int64_t o = 0; o < out_shape[d]; ++o) maps[d].push_back(nearest(coordinate(o, d, s[d], out_shape[d]), s[d]));
    gather_by_maps(ctx, in[0]->f32(), s, maps, 0.f, out.f32());
    return {out};
  }

 private:
  // The input taps of one output position along one dimension: indices (clamped to the edge) and weights.
  struct Taps {
    int64_t index[4];
    float weight[4];
    int count;
  };

  Taps taps(double x, int64_t n_in) const {
    Taps t{};
    if (coord_ == "tf_crop_and_resize" && (x < 0 || x > n_in - 1)) return t;  // no taps: the extrapolation value
    if (mode_ == "linear") {  // the clamped coordinate blends its two neighbours
      x = std::clamp(x, 0.0, static_cast<double>(n_in - 1));
      const int64_t lo = static_cast<int64_t>(std::floor(x));
      t.count = 2;
      t.index[0] = lo, t.index[1] = std::min(lo + 1, n_in - 1);
      t.weight[1] = static_cast<float>(x - lo), t.weight[0] = 1.f - t.weight[1];
      return t;
    }
    // cubic: neighbours floor(x)-1 .. floor(x)+2, ONNX's Keys kernel with coefficient A
    const int64_t base = static_cast<int64_t>(std::floor(x));
    const double r = x - base, A = cubic_a_;
    const double w[4] = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
                         ((A + 2) * r - (A + 3)) * r * r + 1,
                         ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
                         ((A * (2 - r) - 5 * A) * (2 - r) + 8 * A) * (2 - r) - 4 * A};
    double sum = 0;
    t.count = 4;
    for (int k = 0; k < 4; ++k) {
      const int64_t i = base - 1 + k;
      const bool outside = i < 0 || i >= n_in;
      t.index[k] = std::clamp<int64_t>(i, 0, n_in - 1);
      t.weight[k] = exclude_outside_ && outside ? 0.f : static_cast<float>(w[k]);
      sum += t.weight[k];
    }
    if (exclude_outside_)
      for (float& v : t.weight) v = static_cast<float>(v / sum);
    return t;
  }

  // Linear and cubic are separable: resize one dimension at a time, each output slice a weighted
  // sum of a few input slices. Dimensions that keep their size and coordinates are skipped.
  Tensor interpolate(const Tensor& x, const Shape& out_shape) const {
    Tensor cur = x;
    for (size_t d = 0; d < out_shape.size(); ++d) {
      const Shape& s = cur.shape();
      const int64_t n_in = s[d], n_out = out_shape[d];
      std::vector<Taps> per_output(n_out);
      bool identity = n_in == n_out;
      for (int64_t o = 0; o < n_out; ++o) {
        per_output[o] = taps(coordinate(o, d, n_in, n_out), n_in);
        identity &= per_output[o].count > 0;
        for (int k = 0; k < per_output[o].count; ++k)
          identity &= per_output[o].weight[k] == 0.f || (per_output[o].index[k] == o && per_output[o].weight[k] == 1.f);
      }
      if (identity) continue;
      Shape next_shape = s;
      next_shape[d] = n_out;
      Tensor next(next_shape);
      const int64_t outer = numel(Shape(s.begin(), s.begin() + d)), inner = numel(Shape(s.begin() + d + 1, s.end()));
      const float* src = cur.f32();
      float* dst = next.f32();
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t o = 0; o < n_out; ++o, dst += inner) {
          const Taps& t = per_output[o];
          if (t.count == 0) std::fill(dst, dst + inner, extrapolation_);
          for (int k = 0; k < t.count; ++k) {
            const float* p = src + (a * n_in + t.index[k]) * inner;
            const float w = t.weight[k];
            if (k == 0)
              for (int64_t i = 0; i < inner; ++i) dst[i] = p[i] * w;
            else
              for (int64_t i = 0; i < inner; ++i) dst[i] += p[i] * w;
          }
        }
      cur = next;
    }
    return cur.raw() == x.raw() ? x.clone() : cur;
  }

  // The input coordinate output position o of dimension d maps to.
  double coordinate(int64_t o, size_t d, int64_t n_in, int64_t n_out) const {
    // With sizes given, the effective scale is out/in (ONNX).
    const double scale = sizes_.empty() ? scales_[d] : static_cast<double>(n_out) / n_in;
    const double resized = n_in * scale;  // ONNX: not rounded to the output size
    double x;
    if (coord_ == "half_pixel")
      x = (o + 0.5) / scale - 0.5;
    else if (coord_ == "pytorch_half_pixel")
      x = resized > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    else if (coord_ == "align_corners")
      x = resized > 1 ? o * (n_in - 1) / (resized - 1) : 0.0;
    else if (coord_ == "tf_crop_and_resize") {
      const size_t r = roi_.size() / 2;
      if (roi_.size() != 2 * r || d >= r) throw ShapeError("roi does not match the input rank");
      const double start = roi_[d], end = roi_[d + r];
      x = resized > 1 ? start * (n_in - 1) + o * (end - start) * (n_in - 1) / (resized - 1) : 0.5 * (start + end) * (n_in - 1);
    } else if (coord_ == "tf_half_pixel_for_nn")
      x = (o + 0.5) / scale;
    else  // asymmetric
      x = o / scale;
    return x;
  }

  int64_t nearest(double x, int64_t n_in) const {
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

  std::string mode_, coord_, nearest_;
  float cubic_a_ = -0.75f, extrapolation_ = 0.f;
  std::vector<float> roi_;  // tf_crop_and_resize: [starts..., ends...] as fractions of each dimension
  bool exclude_outside_ = false;
  std::vector<float> scales_;
  std::vector<int64_t> sizes_;
};

}  // namespace

std::unique_ptr<Layer> make_resize_layer() { return std::make_unique<Resize>(); }

}  // namespace dnn
