// Slice: starts/ends/axes/steps (attributes, or constant inputs 1-4) select a strided box of the
// input, copied with one strided walk. Bounds follow ONNX: negative values count from the end and
// are clamped to the dimension, negative steps walk backwards.
#include "layers/common.h"

namespace dnn {
namespace {

class Slice : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    if (!int_operand(node, consts, "starts", 1, starts_) || !int_operand(node, consts, "ends", 2, ends_))
      throw ModelError("starts and ends are required");
    int_operand(node, consts, "axes", 3, axes_);
    int_operand(node, consts, "steps", 4, steps_);
    if (ends_.size() != starts_.size() || (!axes_.empty() && axes_.size() != starts_.size()) ||
        (!steps_.empty() && steps_.size() != starts_.size()))
      throw ModelError("starts, ends, axes and steps must have the same length");
    for (int64_t st : steps_)
      if (st == 0) throw ModelError("steps must not be 0");
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {box(in.at(0)).shape}; }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    Box b = box(in[0]->shape());
    Tensor out(b.shape);
    if (out.numel()) strided_copy(ctx, in[0]->f32() + b.offset, b.shape, b.strides, out.f32());
    return {out};
  }

 private:
  struct Box {
    Shape shape;
    std::vector<int64_t> strides;  // element strides in the input, step included
    int64_t offset = 0;            // first element
  };

  Box box(const Shape& s) const {
    const int r = static_cast<int>(s.size());
    std::vector<int64_t> start(r, 0), step(r, 1);
    Box b;
    b.shape = s;
    std::vector<bool> seen(r, false);
    for (size_t i = 0; i < starts_.size(); ++i) {
      const int d = normalize_axis(axes_.empty() ? static_cast<int64_t>(i) : axes_[i], r);
      if (seen[d]) throw ShapeError("axis " + std::to_string(d) + " is sliced twice");
      seen[d] = true;
      const int64_t n = s[d], st = steps_.empty() ? 1 : steps_[i];
      int64_t lo = starts_[i] < 0 ? starts_[i] + n : starts_[i];
      int64_t hi = ends_[i] < 0 ? ends_[i] + n : ends_[i];
      if (st > 0) {
        lo = std::clamp<int64_t>(lo, 0, n);
        hi = std::clamp<int64_t>(hi, 0, n);
        b.shape[d] = hi > lo ? (hi - lo + st - 1) / st : 0;
      } else {
        lo = std::clamp<int64_t>(lo, 0, n - 1);
        hi = std::clamp<int64_t>(hi, -1, n - 1);
        b.shape[d] = lo > hi ? (lo - hi - st - 1) / -st : 0;
      }
      start[d] = lo;
      step[d] = st;
    }
    b.strides.resize(r);
    int64_t stride = 1;
    for (int d = r - 1; d >= 0; stride *= s[d], --d) {
      b.strides[d] = stride * step[d];
      b.offset += stride * start[d];
    }
    return b;
  }

  std::vector<int64_t> starts_, ends_, axes_, steps_;
};

}  // namespace

std::unique_ptr<Layer> make_slice_layer() { return std::make_unique<Slice>(); }

}  // namespace dnn
