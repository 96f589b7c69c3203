// Shape-only layers: Reshape, Flatten, Squeeze, Unsqueeze. Each returns a view of its input (same
// storage, new shape); no element is copied. Reshape's `shape` and the axes of (Un)Squeeze arrive as
// attributes (the importer's canonical form) or as constant inputs.
#include <algorithm>

#include "layers/common.h"

namespace dnn {
namespace {

enum class Kind { Reshape, Flatten, Squeeze, Unsqueeze };

class ReshapeLayer : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    static const std::map<std::string, Kind> kinds = {
        {"Reshape", Kind::Reshape}, {"Flatten", Kind::Flatten}, {"Squeeze", Kind::Squeeze}, {"Unsqueeze", Kind::Unsqueeze}};
    kind_ = kinds.at(node.op);
    switch (kind_) {
      case Kind::Reshape:
        if (!int_operand(node, consts, "shape", 1, dims_)) throw ModelError("the target shape is missing");
        allow_zero_ = node.attrs.i("allowzero", 0) != 0;
        break;
      case Kind::Flatten:
        axis_ = node.attrs.i("axis", 1);
        break;
      case Kind::Squeeze:
        has_axes_ = int_operand(node, consts, "axes", 1, dims_);
        break;
      case Kind::Unsqueeze:
        if (!int_operand(node, consts, "axes", 1, dims_)) throw ModelError("axes are missing");
        break;
    }
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    const int r = static_cast<int>(s.size());
    switch (kind_) {
      case Kind::Reshape: return {reshape(s)};
      case Kind::Flatten: {
        const int axis = axis_ == r ? r : normalize_axis(axis_, r);
        return {{numel(Shape(s.begin(), s.begin() + axis)), numel(Shape(s.begin() + axis, s.end()))}};
      }
      case Kind::Squeeze: {
        std::vector<bool> drop(r, false);
        if (!has_axes_)
          for (int d = 0; d < r; ++d) drop[d] = s[d] == 1;
        for (int64_t a : dims_) {
          int d = normalize_axis(a, r);
          if (s[d] != 1) throw ShapeError("cannot squeeze dimension " + std::to_string(d) + " of " + to_string(s));
          drop[d] = true;
        }
        Shape out;
        for (int d = 0; d < r; ++d)
          if (!drop[d]) out.push_back(s[d]);
        return {out};
      }
      case Kind::Unsqueeze: {
        const int out_rank = r + static_cast<int>(dims_.size());
        std::vector<bool> inserted(out_rank, false);
        for (int64_t a : dims_) {
          int d = normalize_axis(a, out_rank);
          if (inserted[d]) throw ShapeError("axis " + std::to_string(a) + " is repeated");
          inserted[d] = true;
        }
        Shape out;
        for (int d = 0, k = 0; d < out_rank; ++d) out.push_back(inserted[d] ? 1 : s[k++]);
        return {out};
      }
    }
    return {};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    return {in[0]->reshaped(output_shapes({in[0]->shape()})[0])};
  }

 private:
  // ONNX Reshape: 0 copies the input dimension (unless allowzero), -1 is inferred from the rest.
  Shape reshape(const Shape& s) const {
    Shape out(dims_.begin(), dims_.end());
    int infer = -1;
    for (size_t d = 0; d < out.size(); ++d) {
      if (out[d] == 0 && !allow_zero_) {
        if (d >= s.size()) throw ShapeError("shape " + to_string(dims_) + " copies dimension " + std::to_string(d) + " of " + to_string(s));
        out[d] = s[d];
      } else if (out[d] == -1) {
        if (infer >= 0) throw ShapeError("shape " + to_string(dims_) + " has more than one -1");
        infer = static_cast<int>(d);
      } else if (out[d] < 0) {
        throw ShapeError("shape " + to_string(dims_) + " has a negative dimension");
      }
    }
    if (infer >= 0) {
      out[infer] = 1;
      const int64_t known = numel(out);
      if (known == 0 || numel(s) % known != 0)
        throw ShapeError("cannot reshape " + to_string(s) + " to " + to_string(dims_));
      out[infer] = numel(s) / known;
    }
    if (numel(out) != numel(s)) throw ShapeError("cannot reshape " + to_string(s) + " to " + to_string(dims_));
    return out;
  }

  Kind kind_ = Kind::Reshape;
  std::vector<int64_t> dims_;  // Reshape: target shape; (Un)Squeeze: axes
  int64_t axis_ = 1;
  bool allow_zero_ = false, has_axes_ = false;
};

}  // namespace

std::unique_ptr<Layer> make_reshape_layer() { return std::make_unique<ReshapeLayer>(); }

}  // namespace dnn
