// Add, Sub, Mul, Div and PRelu (x < 0 ? x * slope : x) with NumPy broadcasting. Either operand may be a constant given at load (a bias,
// a scale, a normalisation constant). Shapes are collapsed so the inner loop runs over the longest
// run that is contiguous in both operands, with each operand either streaming (stride 1) or fixed
// (stride 0, broadcast): the four inner loops below vectorise.
#include "layers/common.h"

namespace dnn {
namespace {

enum class Op { Add, Sub, Mul, Div, PRelu };

template <class F>
void run_row(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n, F f) {
  if (sa && sb)
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  else if (sb)
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[0], b[i]);
  else if (sa)
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[0]);
  else
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[0], b[0]);
}

class Binary : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    static const std::map<std::string, Op> ops = {{"Add", Op::Add}, {"Sub", Op::Sub}, {"Mul", Op::Mul}, {"Div", Op::Div}, {"PRelu", Op::PRelu}};
    op_ = ops.at(node.op);
    if (node.inputs.size() != 2) throw ModelError("expects 2 inputs, got " + std::to_string(node.inputs.size()));
    for (int i = 0; i < 2; ++i)
      if (i < static_cast<int>(consts.size()) && consts[i]) const_[i] = as_float(*consts[i]);
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    return {broadcast_shapes(in.at(0), in.at(1))};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& a = in[0] ? *in[0] : const_[0];
    const Tensor& b = in[1] ? *in[1] : const_[1];
    Shape shape = broadcast_shapes(a.shape(), b.shape());
    auto out = Tensor::uninitialized(shape);
    if (out.numel() == 0) return {out};
    auto sa = broadcast_strides(a.shape(), shape), sb = broadcast_strides(b.shape(), shape);
    collapse_dims(shape, {&sa, &sb});  // the output is contiguous: row `row` starts at row * n

    const int r = static_cast<int>(shape.size());
    const int64_t n = shape[r - 1], rows = out.numel() / n;
    const float *pa = a.f32(), *pb = b.f32();
    float* py = out.f32();
    parallel_chunks(ctx, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        int64_t oa = 0, ob = 0, rem = row;
        for (int d = r - 2; d >= 0; --d) {
          int64_t i = rem % shape[d];
          rem /= shape[d];
          oa += i * sa[d];
          ob += i * sb[d];
        }
        const float *x = pa + oa, *z = pb + ob;
        float* y = py + row * n;
        switch (op_) {
          case Op::Add: run_row(x, sa[r - 1], z, sb[r - 1], y, n, [](float u, float v) { return u + v; }); break;
          case Op::Sub: run_row(x, sa[r - 1], z, sb[r - 1], y, n, [](float u, float v) { return u - v; }); break;
          case Op::Mul: run_row(x, sa[r - 1], z, sb[r - 1], y, n, [](float u, float v) { return u * v; }); break;
          case Op::Div: run_row(x, sa[r - 1], z, sb[r - 1], y, n, [](float u, float v) { return u / v; }); break;
          case Op::PRelu: run_row(x, sa[r - 1], z, sb[r - 1], y, n, [](float u, float v) { return u < 0.f ? u * v : u; }); break;
        }
      }
    });
    return {out};
  }

 private:
  static Tensor as_float(const Tensor& t) {
    if (t.dtype() == DType::f32) return t;
    Tensor f(t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) f.f32()[i] = static_cast<float>(t.i64()[i]);
    return f;
  }

  Op op_ = Op::Add;
  Tensor const_[2];
};

}  // namespace

std::unique_ptr<Layer> make_binary_layer() { return std::make_unique<Binary>(); }

}  // namespace dnn
