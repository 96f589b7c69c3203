// Broadcasting elementwise operators over float and int64 tensors (ONNX bool values are int64 0/1):
// comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual) and logic (And, Or, Xor, Not)
// giving 0/1 masks, Where, Pow, the variadic Min, Max, Sum, Mean, and Cast between float and integer. Masks and index arithmetic are
// small, so one simple loop computes every element in double through per-operand broadcast strides;
// Add/Sub/Mul/Div on float activations keep their vectorised layer (binary.cpp).
#include <cmath>

#include "layers/common.h"

namespace dnn {
namespace {

enum class Op { Cast, Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, Not, Where, Pow, Min, Max, Sum, Mean };

double element(const Tensor& t, int64_t i) { return t.dtype() == DType::f32 ? double(t.f32()[i]) : double(t.i64()[i]); }

class Elementwise : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    static const std::map<std::string, Op> ops = {
        {"Equal", Op::Equal}, {"Less", Op::Less}, {"Greater", Op::Greater}, {"LessOrEqual", Op::LessOrEqual},
        {"GreaterOrEqual", Op::GreaterOrEqual}, {"And", Op::And}, {"Or", Op::Or}, {"Xor", Op::Xor}, {"Not", Op::Not},
        {"Cast", Op::Cast}, {"Where", Op::Where}, {"Pow", Op::Pow}, {"Min", Op::Min}, {"Max", Op::Max}, {"Sum", Op::Sum}, {"Mean", Op::Mean}};
    op_ = ops.at(node.op);
    if (op_ == Op::Cast) load_cast(node.attrs.i("to", 0));
    const size_t want = op_ == Op::Not || op_ == Op::Cast ? 1 : op_ == Op::Where ? 3 : 2;
    const bool variadic = op_ == Op::Min || op_ == Op::Max || op_ == Op::Sum || op_ == Op::Mean;
    if (variadic ? node.inputs.empty() : node.inputs.size() != want)
      throw ModelError("expects " + std::to_string(want) + " inputs, got " + std::to_string(node.inputs.size()));
    consts_.resize(node.inputs.size());
    for (size_t i = 0; i < consts.size() && i < consts_.size(); ++i)
      if (consts[i]) consts_[i] = *consts[i];
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    Shape out;
    for (auto& s : in) out = broadcast_shapes(out, s);
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    std::vector<const Tensor*> x(in.size());
    Shape shape;
    for (size_t k = 0; k < in.size(); ++k) {
      x[k] = in[k] ? in[k] : &consts_.at(k);
      shape = broadcast_shapes(shape, x[k]->shape());
    }
    Tensor y = Tensor::uninitialized(shape, out_dtype(x));
    const int r = static_cast<int>(shape.size());
    std::vector<std::vector<int64_t>> strides;
    for (auto* t : x) strides.push_back(broadcast_strides(t->shape(), shape));
    const int64_t n = y.numel();
    parallel_chunks(ctx, n, 4096, [&](int64_t b, int64_t e) {
      std::vector<double> v(x.size());
      for (int64_t i = b; i < e; ++i) {
        int64_t rem = i;
        std::vector<int64_t> off(x.size(), 0);
        for (int d = r - 1; d >= 0; --d) {
          const int64_t idx = rem % shape[d];
          rem /= shape[d];
          for (size_t k = 0; k < x.size(); ++k) off[k] += idx * strides[k][d];
        }
        for (size_t k = 0; k < x.size(); ++k) v[k] = element(*x[k], off[k]);
        const double z = apply(v);
        if (y.dtype() == DType::f32) y.f32()[i] = float(z);
        else y.i64()[i] = int64_t(z);
      }
    });
    return {y};
  }

 private:
  // ONNX TensorProto element types: float32 and double become float32; integers and bool int64.
  void load_cast(int64_t to) {
    enum : int64_t { FLOAT = 1, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL, FLOAT16, DOUBLE, UINT32, UINT64 };
    if (to == FLOAT || to == DOUBLE) cast_to_ = DType::f32;
    else if ((to >= UINT8 && to <= INT64) || to == UINT32 || to == UINT64) cast_to_ = DType::i64;
    else if (to == BOOL) cast_to_ = DType::i64, cast_bool_ = true;
    else throw ModelError("Cast to element type " + std::to_string(to) + " is not supported (float, double, integers, bool)");
  }

  DType out_dtype(const std::vector<const Tensor*>& x) const {
    switch (op_) {
      case Op::Cast: return cast_to_;
      case Op::Pow: return x[0]->dtype();  // the base's type
      case Op::Where: return x[1]->dtype() == DType::f32 || x[2]->dtype() == DType::f32 ? DType::f32 : DType::i64;
      case Op::Min: case Op::Max: case Op::Sum: case Op::Mean:
        for (auto* t : x)
          if (t->dtype() == DType::f32) return DType::f32;
        return DType::i64;
      default: return DType::i64;  // a 0/1 mask
    }
  }

  double apply(const std::vector<double>& v) const {
    switch (op_) {
      case Op::Cast: return cast_bool_ ? double(v[0] != 0) : cast_to_ == DType::i64 ? std::trunc(v[0]) : v[0];
      case Op::Equal: return v[0] == v[1];
      case Op::Less: return v[0] < v[1];
      case Op::Greater: return v[0] > v[1];
      case Op::LessOrEqual: return v[0] <= v[1];
      case Op::GreaterOrEqual: return v[0] >= v[1];
      case Op::And: return v[0] != 0 && v[1] != 0;
      case Op::Or: return v[0] != 0 || v[1] != 0;
      case Op::Xor: return (v[0] != 0) != (v[1] != 0);
      case Op::Not: return v[0] == 0;
      case Op::Where: return v[0] != 0 ? v[1] : v[2];
      case Op::Pow: return std::pow(v[0], v[1]);
      case Op::Min: case Op::Max: case Op::Sum: case Op::Mean: {
        double r = v[0];
        for (size_t k = 1; k < v.size(); ++k) r = op_ == Op::Min ? std::min(r, v[k]) : op_ == Op::Max ? std::max(r, v[k]) : r + v[k];
        return op_ == Op::Mean ? r / double(v.size()) : r;
      }
    }
    return 0;
  }

  Op op_ = Op::Equal;
  DType cast_to_ = DType::f32;
  bool cast_bool_ = false;
  std::vector<Tensor> consts_;
};

}  // namespace

std::unique_ptr<Layer> make_elementwise_layer() { return std::make_unique<Elementwise>(); }

}  // namespace dnn
