// GlobalLpPool (over the spatial axes, keeping them as 1) and ReduceMean, ReduceSum, ReduceMax,
// ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare over `axes` (attribute or constant input 1; none = all,
// or the identity with noop_with_empty_axes), keepdims (default 1). The reduced axes are moved last
// (a strided copy, skipped when they already are, as in the usual mean over H and W), so every
// output element reduces one contiguous row.
#include <cmath>
#include <limits>

#include "layers/common.h"

namespace dnn {
namespace {

enum class Kind { Mean, Sum, Max, Min, Prod, L1, L2, SumSquare, Lp };

class Reduce : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    static const std::map<std::string, Kind> kinds = {
        {"ReduceMean", Kind::Mean}, {"ReduceSum", Kind::Sum}, {"ReduceMax", Kind::Max}, {"ReduceMin", Kind::Min},
        {"ReduceProd", Kind::Prod}, {"ReduceL1", Kind::L1},  {"ReduceL2", Kind::L2},   {"ReduceSumSquare", Kind::SumSquare},
        {"GlobalLpPool", Kind::Lp}};
    kind_ = kinds.at(node.op);
    spatial_ = kind_ == Kind::Lp;  // GlobalLpPool: (sum |x|^p)^(1/p) over every axis after N and C
    p_ = float(node.attrs.i("p", 2));
    if (spatial_ && p_ < 1) throw ModelError("p must be at least 1");
    int_operand(node, consts, "axes", 1, axes_);
    keepdims_ = node.attrs.i("keepdims", 1) != 0;
    noop_ = axes_.empty() && node.attrs.i("noop_with_empty_axes", 0) != 0;
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    auto reduced = reduced_dims(s.size());
    Shape out;
    for (size_t d = 0; d < s.size(); ++d)
      if (!reduced[d])
        out.push_back(s[d]);
      else if (keepdims_)
        out.push_back(1);
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    if (noop_) return {*in[0]};
    const Shape& s = in[0]->shape();
    Tensor out(output_shapes({s})[0]);
    auto reduced = reduced_dims(s.size());
    // Kept dimensions first, reduced ones last, each group in its original order.
    std::vector<size_t> order;
    for (int pass = 0; pass < 2; ++pass)
      for (size_t d = 0; d < s.size(); ++d)
        if (reduced[d] == (pass == 1)) order.push_back(d);
    const float* x = in[0]->f32();
    Tensor moved;
    if (!std::is_sorted(order.begin(), order.end())) {
      std::vector<int64_t> stride(s.size()), moved_stride(s.size());
      Shape moved_shape(s.size());
      for (int64_t d = static_cast<int64_t>(s.size()) - 1, st = 1; d >= 0; st *= s[d], --d) stride[d] = st;
      for (size_t k = 0; k < order.size(); ++k) moved_shape[k] = s[order[k]], moved_stride[k] = stride[order[k]];
      moved = Tensor(moved_shape);
      strided_copy(ctx, x, moved_shape, moved_stride, moved.f32());
      x = moved.f32();
    }
    const int64_t rows = out.numel(), m = rows ? in[0]->numel() / rows : 0;
    float* y = out.f32();
    parallel_chunks(ctx, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, m)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) y[r] = reduce_row(x + r * m, m);
    });
    return {out};
  }

  // One MAC per input element.
  int64_t macs(const std::vector<Shape>& in) const override { return numel(in.at(0)); }

 private:
  std::vector<bool> reduced_dims(size_t r) const {
    std::vector<bool> reduced(r, axes_.empty() && !noop_);
    if (spatial_)
      for (size_t d = 0; d < r; ++d) reduced[d] = d >= 2;
    for (int64_t a : axes_) reduced[normalize_axis(a, static_cast<int>(r))] = true;
    return reduced;
  }

  float reduce_row(const float* x, int64_t m) const {
    switch (kind_) {
      case Kind::Max:
        return row_reduce(x, m, -std::numeric_limits<float>::infinity(), [](float a, float b) { return std::max(a, b); });
      case Kind::Min:
        return row_reduce(x, m, std::numeric_limits<float>::infinity(), [](float a, float b) { return std::min(a, b); });
      case Kind::Lp: {
        double v = 0;
        for (int64_t i = 0; i < m; ++i) v += std::pow(std::fabs(double(x[i])), double(p_));
        return float(std::pow(v, 1.0 / p_));
      }
      case Kind::Prod:
        return row_reduce(x, m, 1.f, [](float a, float b) { return a * b; });
      case Kind::L1:
        return row_reduce(x, m, 0.f, [](float a, float b) { return a + std::fabs(b); });  // lanes >= 0: safe
      case Kind::L2:
      case Kind::SumSquare: {
        float v = 0.f;  // not row_reduce: its lanes are combined with the same op, which squares again
        for (int64_t i = 0; i < m; ++i) v += x[i] * x[i];
        return kind_ == Kind::L2 ? std::sqrt(v) : v;
      }
      default: {
        const float v = row_sum(x, m);
        return kind_ == Kind::Mean ? v / static_cast<float>(m) : v;
      }
    }
  }

  Kind kind_ = Kind::Mean;
  std::vector<int64_t> axes_;
  bool keepdims_ = true, noop_ = false, spatial_ = false;
  float p_ = 2.f;
};

}  // namespace

std::unique_ptr<Layer> make_reduce_layer() { return std::make_unique<Reduce>(); }

}  // namespace dnn
