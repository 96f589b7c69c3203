// Expand (broadcast to a shape: what PyTorch's x.repeat / expand export to) and Tile (repeat along
// each axis), for float and int64 tensors. Both are pure data movement: each output index along a
// dimension reads one input index (0 for a broadcast dimension, i mod n for a tiled one), so a per
// dimension table of input offsets drives one gather loop. The shape or repeats must be constant.
#include "layers/common.h"

namespace dnn {
namespace {

class Expand : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    tile_ = node.op == "Tile";
    if (node.inputs.size() < 2 || consts.size() < 2 || !consts[1])
      throw ModelError(std::string("its ") + (tile_ ? "repeats" : "shape") + " (input 1) must be a constant");
    operand_ = consts[1]->to_i64_vector();
    for (int64_t v : operand_)
      if (v < 0) throw ModelError("negative " + std::string(tile_ ? "repeat " : "dimension ") + std::to_string(v));
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override { return {out_shape(in.at(0))}; }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Shape& s = x.shape();
    Shape out = out_shape(s);
    auto y = Tensor::uninitialized(out, x.dtype());
    if (y.numel() == 0) return {y};
    // offsets[d][i]: the input element offset that output index i along dimension d reads.
    const int r = static_cast<int>(out.size()), lead = r - static_cast<int>(s.size());
    std::vector<std::vector<int64_t>> offsets(r);
    int64_t stride = 1;
    for (int d = r - 1; d >= 0; --d) {
      const int64_t n = d >= lead ? s[d - lead] : 1;
      offsets[d].resize(out[d]);
      for (int64_t i = 0; i < out[d]; ++i) offsets[d][i] = (n == 1 ? 0 : i % n) * stride;
      stride *= n;
    }
    if (x.dtype() == DType::i64) gather(ctx, x.i64(), offsets, out, y.i64());
    else gather(ctx, x.f32(), offsets, out, y.f32());
    return {y};
  }

 private:
  Shape out_shape(const Shape& s) const {
    if (tile_) {
      if (operand_.size() != s.size())
        throw ShapeError("Tile repeats has " + std::to_string(operand_.size()) + " entries for an input of rank " +
                         std::to_string(s.size()));
      Shape out = s;
      for (size_t d = 0; d < s.size(); ++d) out[d] *= operand_[d];
      return out;
    }
    // Expand: NumPy broadcasting of the input against the shape operand.
    const size_t r = std::max(s.size(), operand_.size());
    Shape out(r);
    for (size_t i = 0; i < r; ++i) {
      const int64_t a = i < r - s.size() ? 1 : s[i - (r - s.size())];
      const int64_t b = i < r - operand_.size() ? 1 : operand_[i - (r - operand_.size())];
      if (a != b && a != 1 && b != 1)
        throw ShapeError("cannot expand " + to_string(s) + " to " + to_string(Shape(operand_.begin(), operand_.end())));
      out[i] = a == 1 ? b : a;
    }
    return out;
  }

  template <class T>
  static void gather(RunContext& ctx, const T* src, const std::vector<std::vector<int64_t>>& offsets, const Shape& out, T* dst) {
    const int r = static_cast<int>(out.size());
    if (r == 0) {
      dst[0] = src[0];
      return;
    }
    const int64_t n = out[r - 1], rows = numel(out) / n;
    const int64_t* last = offsets[r - 1].data();
    parallel_chunks(ctx, rows, std::max<int64_t>(1, 8192 / n), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        int64_t base = 0, rem = row;
        for (int d = r - 2; d >= 0; --d) {
          base += offsets[d][rem % out[d]];
          rem /= out[d];
        }
        T* y = dst + row * n;
        for (int64_t i = 0; i < n; ++i) y[i] = src[base + last[i]];
      }
    });
  }

  bool tile_ = false;
  std::vector<int64_t> operand_;
};

}  // namespace

std::unique_ptr<Layer> make_expand_layer() { return std::make_unique<Expand>(); }

}  // namespace dnn
