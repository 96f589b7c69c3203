// The import-time evaluator: computes the small constant subgraphs exporters emit around shapes
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, ConstantOfShape, Range, ...) and any node whose
// inputs are all weights (Transpose of a weight, Mul by a constant). Values are float32 or int64, as
// in dnn::Tensor. Data-movement ops also carry symbolic dimensions through, so that the flatten
// pattern built from Shape(x) of a dynamic batch still folds.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "onnx/onnx_import.h"
#include "onnx/proto_util.h"

namespace dnn {

namespace {

using Values = std::vector<FoldValue>;

// Values computed at import are shape vectors and transformed weights; anything bigger than the
// largest real weight matrix means a corrupt model, not a reason to allocate gigabytes.
constexpr int64_t kMaxFoldedElements = int64_t(1) << 28;

const Shape& checked(const Shape& s, const std::string& where) {
  if (checked_numel(s, where) > kMaxFoldedElements)
    throw ModelError(where + ": computed value of shape " + to_string(s) + " is implausibly large");
  return s;
}
using Inputs = std::vector<const FoldValue*>;

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = int(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const std::string& where) {
  if (axis < -rank || axis >= rank)
    throw ModelError(where + ": axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

// A value whose elements are all known again (Gather of the static dims of a shape) drops its symbols.
FoldValue normalized(FoldValue v) {
  if (std::all_of(v.symbols.begin(), v.symbols.end(), [](const std::string& s) { return s.empty(); }))
    v.symbols.clear();
  return v;
}

// Output element j is source element index[j]: every data-movement op reduces to this, so one
// function moves values and symbols alike for both dtypes.
FoldValue pick(const FoldValue& src, Shape out_shape, const std::vector<int64_t>& index) {
  FoldValue out{Tensor(std::move(out_shape), src.t.dtype()), {}};
  size_t es = dtype_size(src.t.dtype());
  auto from = static_cast<const char*>(src.t.raw());
  auto to = static_cast<char*>(out.t.raw());
  for (size_t j = 0; j < index.size(); ++j) std::memcpy(to + j * es, from + index[j] * es, es);
  if (!src.known()) {
    out.symbols.resize(index.size());
    for (size_t j = 0; j < index.size(); ++j) out.symbols[j] = src.symbols[index[j]];
  }
  return normalized(out);
}

FoldValue with_shape(const FoldValue& v, Shape s) { return FoldValue{v.t.reshaped(std::move(s)), v.symbols}; }

// Source index of every element of `to` when broadcasting `from` (numpy rules) to it.
std::vector<int64_t> broadcast_index(const Shape& from, const Shape& to) {
  int64_t n = numel(to);
  std::vector<int64_t> idx(n);
  auto fst = strides_of(from), tst = strides_of(to);
  size_t off = to.size() - from.size();
  for (int64_t j = 0; j < n; ++j) {
    int64_t src = 0;
    for (size_t d = 0; d < from.size(); ++d) {
      int64_t coord = (j / tst[d + off]) % to[d + off];
      if (from[d] != 1) src += coord * fst[d];
    }
    idx[j] = src;
  }
  return idx;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& where) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ModelError(where + ": shapes " + to_string(a) + " and " + to_string(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return checked(out, where);
}

double element(const Tensor& t, int64_t i) {
  return t.dtype() == DType::f32 ? double(t.f32()[i]) : double(t.i64()[i]);
}

const FoldValue& need(const Inputs& in, size_t i, const std::string& where) {
  if (i >= in.size() || !in[i]) throw ModelError(where + ": missing input " + std::to_string(i));
  return *in[i];
}

// An operand that must be fully known (axes, shapes, indices): its values as int64.
std::optional<std::vector<int64_t>> known_ints(const Inputs& in, size_t i) {
  if (i >= in.size() || !in[i] || !in[i]->known()) return std::nullopt;
  return in[i]->t.to_i64_vector();
}

bool any_symbolic(const Inputs& in) {
  for (auto* v : in)
    if (v && !v->known()) return true;
  return false;
}

// ---- data movement -------------------------------------------------------------------------------

std::vector<int64_t> iota_index(int64_t n) {
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  return idx;
}

Shape reshape_target(const Shape& in, std::vector<int64_t> target, bool allowzero, const std::string& where) {
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allowzero) {
      if (i >= in.size()) throw ModelError(where + ": reshape target copies a dimension the input lacks");
      target[i] = in[i];
    }
    if (target[i] < -1 || target[i] > kMaxFoldedElements)
      throw ModelError(where + ": invalid reshape target " + to_string(target));
    if (target[i] == -1) {
      if (infer_at >= 0) throw ModelError(where + ": reshape target has more than one -1");
      infer_at = int64_t(i);
    } else {
      known *= target[i];
    }
  }
  if (infer_at >= 0) target[infer_at] = known ? numel(in) / known : 0;
  if (numel(target) != numel(in))
    throw ModelError(where + ": cannot reshape " + to_string(in) + " to " + to_string(target));
  return target;
}

std::vector<int64_t> squeeze_axes(const onnx::NodeProto& n, const Inputs& in, bool& ok) {
  ok = true;
  if (has_attr(n, "axes")) return attr_ints(n, "axes");
  if (in.size() > 1 && in[1]) {
    auto axes = known_ints(in, 1);
    if (!axes) ok = false;
    return axes ? *axes : std::vector<int64_t>{};
  }
  return {};
}

std::optional<Values> fold_squeeze(const onnx::NodeProto& n, const Inputs& in, const std::string& where) {
  const FoldValue& x = need(in, 0, where);
  bool ok;
  auto axes = squeeze_axes(n, in, ok);
  if (!ok) return std::nullopt;
  const Shape& s = x.t.shape();
  std::vector<bool> drop(s.size(), false);
  if (axes.empty())
    for (size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
  for (int64_t a : axes) drop[normalize_axis(a, s.size(), where)] = true;
  Shape out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!drop[i]) out.push_back(s[i]);
    else if (s[i] != 1) throw ModelError(where + ": cannot squeeze axis " + std::to_string(i) + " of " + to_string(s));
  }
  return Values{with_shape(x, out)};
}

std::optional<Values> fold_unsqueeze(const onnx::NodeProto& n, const Inputs& in, const std::string& where) {
  const FoldValue& x = need(in, 0, where);
  bool ok;
  auto axes = squeeze_axes(n, in, ok);
  if (!ok) return std::nullopt;
  int64_t rank = x.t.rank() + int64_t(axes.size());
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    int64_t i = normalize_axis(a, rank, where);
    if (inserted[i]) throw ModelError(where + ": repeated axis " + std::to_string(a));
    inserted[i] = true;
  }
  Shape out;
  size_t k = 0;
  for (int64_t i = 0; i < rank; ++i) out.push_back(inserted[i] ? 1 : x.t.shape()[k++]);
  return Values{with_shape(x, out)};
}

FoldValue fold_concat(const Inputs& in, int64_t axis_attr, const std::string& where) {
  std::vector<const FoldValue*> parts;
  for (auto* v : in)
    if (v) parts.push_back(v);
  if (parts.empty()) throw ModelError(where + ": Concat without inputs");
  Shape out = parts[0]->t.shape();
  int64_t axis = normalize_axis(axis_attr, out.size(), where);
  bool symbolic = false;
  DType dtype = parts[0]->t.dtype();
  out[axis] = 0;
  for (auto* p : parts) {
    if (p->t.rank() != int64_t(out.size()) || p->t.dtype() != dtype)
      throw ModelError(where + ": Concat inputs differ in rank or type");
    for (size_t d = 0; d < out.size(); ++d)
      if (int64_t(d) != axis && p->t.shape()[d] != parts[0]->t.shape()[d])
        throw ModelError(where + ": Concat inputs differ outside the axis");
    out[axis] += p->t.shape()[axis];
    symbolic |= !p->known();
  }
  // Concatenate element by element: outer index, then each part's slab along the axis.
  FoldValue r{Tensor(out, dtype), {}};
  if (symbolic) r.symbols.reserve(r.t.numel());
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= out[i];
  size_t es = dtype_size(dtype);
  char* dst = static_cast<char*>(r.t.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (auto* p : parts) {
      int64_t slab = p->t.numel() / std::max<int64_t>(outer, 1);
      std::memcpy(dst, static_cast<const char*>(p->t.raw()) + o * slab * es, slab * es);
      dst += slab * es;
      if (symbolic)
        for (int64_t j = 0; j < slab; ++j) r.symbols.push_back(p->known() ? "" : p->symbols[o * slab + j]);
    }
  return normalized(r);
}

FoldValue fold_gather(const FoldValue& x, const FoldValue& indices, int64_t axis_attr, const std::string& where) {
  const Shape& s = x.t.shape();
  int64_t axis = normalize_axis(axis_attr, s.size(), where);
  auto idx = indices.t.to_i64_vector();
  Shape out(s.begin(), s.begin() + axis);
  out.insert(out.end(), indices.t.shape().begin(), indices.t.shape().end());
  out.insert(out.end(), s.begin() + axis + 1, s.end());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  std::vector<int64_t> index;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k : idx) {
      if (k < -s[axis] || k >= s[axis]) throw ModelError(where + ": Gather index " + std::to_string(k) + " out of range");
      if (k < 0) k += s[axis];
      for (int64_t j = 0; j < inner; ++j) index.push_back((o * s[axis] + k) * inner + j);
    }
  return pick(x, out, index);
}

std::optional<Values> fold_slice(const onnx::NodeProto& n, const Inputs& in, int opset_inputs, const std::string& where) {
  const FoldValue& x = need(in, 0, where);
  const Shape& s = x.t.shape();
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset_inputs) {
    auto st = known_ints(in, 1), en = known_ints(in, 2);
    if (!st || !en) return std::nullopt;
    starts = *st, ends = *en;
    if (in.size() > 3 && in[3]) {
      auto a = known_ints(in, 3);
      if (!a) return std::nullopt;
      axes = *a;
    }
    if (in.size() > 4 && in[4]) {
      auto p = known_ints(in, 4);
      if (!p) return std::nullopt;
      steps = *p;
    }
  } else {
    starts = attr_ints(n, "starts"), ends = attr_ints(n, "ends"), axes = attr_ints(n, "axes");
  }
  if (axes.empty()) axes = iota_index(starts.size());
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    throw ModelError(where + ": Slice starts/ends/axes/steps differ in length");
  // Per axis: first index, step and count (ONNX clamping rules).
  std::vector<int64_t> first(s.size(), 0), step(s.size(), 1);
  Shape out = s;
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t a = normalize_axis(axes[k], s.size(), where), d = s[a], st = steps[k];
    if (st == 0) throw ModelError(where + ": Slice step is 0");
    st = std::clamp<int64_t>(st, -d - 1, d + 1);  // larger steps take one element; avoids overflow
    int64_t b = starts[k] < 0 ? starts[k] + d : starts[k], e = ends[k] < 0 ? ends[k] + d : ends[k];
    if (st > 0) {
      b = std::clamp<int64_t>(b, 0, d), e = std::clamp<int64_t>(e, 0, d);
      out[a] = e > b ? (e - b - 1) / st + 1 : 0;
    } else {
      b = std::clamp<int64_t>(b, 0, d - 1), e = std::clamp<int64_t>(e, -1, d - 1);
      out[a] = b > e ? (b - e - 1) / -st + 1 : 0;
    }
    first[a] = b, step[a] = st;
  }
  auto in_st = strides_of(s), out_st = strides_of(out);
  std::vector<int64_t> index(numel(out));
  for (int64_t j = 0; j < int64_t(index.size()); ++j) {
    int64_t src = 0;
    for (size_t d = 0; d < s.size(); ++d) src += (first[d] + ((j / out_st[d]) % out[d]) * step[d]) * in_st[d];
    index[j] = src;
  }
  return Values{pick(x, out, index)};
}

FoldValue fold_transpose(const FoldValue& x, std::vector<int64_t> perm, const std::string& where) {
  const Shape& s = x.t.shape();
  if (perm.empty())
    for (int64_t i = x.t.rank() - 1; i >= 0; --i) perm.push_back(i);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != iota_index(x.t.rank())) throw ModelError(where + ": perm is not a permutation of the input's axes");
  Shape out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = s[perm[i]];
  auto in_st = strides_of(s), out_st = strides_of(out);
  std::vector<int64_t> index(numel(out));
  for (int64_t j = 0; j < int64_t(index.size()); ++j) {
    int64_t src = 0;
    for (size_t d = 0; d < s.size(); ++d) src += ((j / out_st[d]) % out[d]) * in_st[perm[d]];
    index[j] = src;
  }
  return pick(x, out, index);
}

FoldValue fold_tile(const FoldValue& x, const std::vector<int64_t>& repeats, const std::string& where) {
  const Shape& s = x.t.shape();
  if (repeats.size() != s.size()) throw ModelError(where + ": Tile repeats do not match the input rank");
  Shape out(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (repeats[i] < 0 || repeats[i] > kMaxFoldedElements) throw ModelError(where + ": implausible Tile repeats");
    out[i] = s[i] * repeats[i];
  }
  checked(out, where);
  auto in_st = strides_of(s), out_st = strides_of(out);
  std::vector<int64_t> index(numel(out));
  for (int64_t j = 0; j < int64_t(index.size()); ++j) {
    int64_t src = 0;
    for (size_t d = 0; d < s.size(); ++d) src += (((j / out_st[d]) % out[d]) % s[d]) * in_st[d];
    index[j] = src;
  }
  return pick(x, out, index);
}

Values fold_split(const onnx::NodeProto& n, const FoldValue& x, std::vector<int64_t> sizes, const std::string& where) {
  int64_t axis = normalize_axis(attr_int(n, "axis", 0), x.t.rank(), where);
  int64_t d = x.t.shape()[axis], parts = n.output_size();
  if (sizes.empty()) {
    if (parts == 0 || d % parts) throw ModelError(where + ": cannot split " + std::to_string(d) + " evenly");
    sizes.assign(parts, d / parts);
  }
  int64_t total = 0;
  for (int64_t len : sizes) {
    if (len < 0) throw ModelError(where + ": negative split size");
    total += len;
  }
  if (total != d || int64_t(sizes.size()) != parts)
    throw ModelError(where + ": split sizes do not add up to the axis or do not match the outputs");
  Values out;
  int64_t begin = 0;
  for (int64_t len : sizes) {
    std::vector<int64_t> index;
    Shape os = x.t.shape();
    os[axis] = len;
    auto in_st = strides_of(x.t.shape()), out_st = strides_of(os);
    for (int64_t j = 0; j < numel(os); ++j) {
      int64_t src = 0;
      for (size_t k = 0; k < os.size(); ++k) src += (((j / out_st[k]) % os[k]) + (int64_t(k) == axis ? begin : 0)) * in_st[k];
      index.push_back(src);
    }
    out.push_back(pick(x, os, index));
    begin += len;
  }
  return out;
}

// ---- arithmetic (fully known values only) -------------------------------------------------------

DType result_dtype(const Inputs& in) {
  for (auto* v : in)
    if (v && v->t.dtype() == DType::f32) return DType::f32;
  return DType::i64;
}

// Elementwise over broadcast inputs; `f` gets the operands as double (floats) or int64.
template <class F>
FoldValue elementwise(const Inputs& in, DType out_type, bool as_float, F f, const std::string& where) {
  Shape shape;
  for (auto* v : in) shape = broadcast_shapes(shape, v->t.shape(), where);
  FoldValue r{Tensor(shape, out_type), {}};
  std::vector<std::vector<int64_t>> idx;
  for (auto* v : in) idx.push_back(broadcast_index(v->t.shape(), shape));
  for (int64_t j = 0; j < r.t.numel(); ++j) {
    std::vector<double> fargs;
    std::vector<int64_t> iargs;
    for (size_t k = 0; k < in.size(); ++k) {
      if (as_float) fargs.push_back(element(in[k]->t, idx[k][j]));
      else iargs.push_back(in[k]->t.i64()[idx[k][j]]);
    }
    double v = as_float ? f(fargs) : 0;
    if (!as_float) {
      int64_t iv = f(iargs);
      if (out_type == DType::i64) r.t.i64()[j] = iv;
      else r.t.f32()[j] = float(iv);
    } else if (out_type == DType::i64) {
      r.t.i64()[j] = int64_t(v);
    } else {
      r.t.f32()[j] = float(v);
    }
  }
  return r;
}

std::optional<FoldValue> fold_arith(const std::string& op, const Inputs& in, bool c_style_mod, const std::string& where) {
  const bool is_float = result_dtype(in) == DType::f32;
  const bool compare = op == "Equal" || op == "Less" || op == "Greater" || op == "LessOrEqual" || op == "GreaterOrEqual";
  const bool logical = compare || op == "And" || op == "Or" || op == "Xor" || op == "Not";
  // Pow's result has the base's type (an int64 base with a float exponent stays int64).
  const DType out = logical ? DType::i64 : op == "Pow" ? in.at(0)->t.dtype() : result_dtype(in);
  auto run = [&](auto fn) { return elementwise(in, out, is_float, fn, where); };
  auto binary = [&](auto fn) {
    if (in.size() != 2) throw ModelError(where + ": expects 2 inputs");
    return run([fn](const auto& a) { return fn(a[0], a[1]); });
  };
  auto unary = [&](auto fn) { return run([fn](const auto& a) { return fn(a[0]); }); };
  using std::fmod;
  if (op == "Add") return binary([](auto a, auto b) { return a + b; });
  if (op == "Sub") return binary([](auto a, auto b) { return a - b; });
  if (op == "Mul") return binary([](auto a, auto b) { return a * b; });
  if (op == "Div") return binary([&](auto a, auto b) {
      if (!is_float && b == 0) throw ModelError(where + ": integer division by zero");
      return a / b; });
  if (op == "Mod") return binary([&](auto a, auto b) {
      if (!is_float && b == 0) throw ModelError(where + ": integer division by zero");
      using T = decltype(a);
      if constexpr (std::is_floating_point_v<T>) return fmod(a, b);
      else if (c_style_mod) return T(a % b);  // fmod=1: the dividend's sign
      else return T(((a % b) + b) % b);       // fmod=0: the divisor's sign, like Python
    });
  if (op == "Pow") return binary([](auto a, auto b) { return decltype(a)(std::pow(double(a), double(b))); });
  if (op == "Equal") return binary([](auto a, auto b) { return decltype(a)(a == b); });
  if (op == "Less") return binary([](auto a, auto b) { return decltype(a)(a < b); });
  if (op == "Greater") return binary([](auto a, auto b) { return decltype(a)(a > b); });
  if (op == "LessOrEqual") return binary([](auto a, auto b) { return decltype(a)(a <= b); });
  if (op == "GreaterOrEqual") return binary([](auto a, auto b) { return decltype(a)(a >= b); });
  if (op == "And") return binary([](auto a, auto b) { return decltype(a)(a && b); });
  if (op == "Or") return binary([](auto a, auto b) { return decltype(a)(a || b); });
  if (op == "Xor") return binary([](auto a, auto b) { return decltype(a)(bool(a) != bool(b)); });
  if (op == "Not") return unary([](auto a) { return decltype(a)(!a); });
  if (op == "Neg") return unary([](auto a) { return -a; });
  if (op == "Abs") return unary([](auto a) { return a < 0 ? -a : a; });
  if (op == "Relu") return unary([](auto a) { return a < 0 ? decltype(a)(0) : a; });
  if (op == "Sign") return unary([](auto a) { return decltype(a)((a > 0) - (a < 0)); });
  if (op == "Sqrt") return unary([](auto a) { return decltype(a)(std::sqrt(double(a))); });
  if (op == "Floor") return unary([](auto a) { return decltype(a)(std::floor(double(a))); });
  if (op == "Ceil") return unary([](auto a) { return decltype(a)(std::ceil(double(a))); });
  if (op == "Reciprocal") return unary([](auto a) { return decltype(a)(1.0 / double(a)); });
  if (op == "Min" || op == "Max" || op == "Sum" || op == "Mean")
    return run([&op](const auto& a) {
      auto r = a[0];
      for (size_t k = 1; k < a.size(); ++k) r = op == "Min" ? std::min(r, a[k]) : op == "Max" ? std::max(r, a[k]) : r + a[k];
      return op == "Mean" ? decltype(r)(r / decltype(r)(a.size())) : r;
    });
  if (op == "Where") {
    if (in.size() != 3) throw ModelError(where + ": Where expects 3 inputs");
    Inputs xy{in[1], in[2]};
    Inputs all{in[0], in[1], in[2]};
    const bool f = result_dtype(xy) == DType::f32;
    return elementwise(all, result_dtype(xy), f, [](const auto& a) { return a[0] ? a[1] : a[2]; }, where);
  }
  return std::nullopt;
}

std::optional<FoldValue> fold_reduce(const onnx::NodeProto& n, const Inputs& in, const std::string& where) {
  const FoldValue& x = need(in, 0, where);
  const std::string& op = n.op_type();
  std::vector<int64_t> axes = attr_ints(n, "axes");
  if (!has_attr(n, "axes") && in.size() > 1 && in[1]) {
    auto a = known_ints(in, 1);
    if (!a) return std::nullopt;
    axes = *a;
  }
  const Shape& s = x.t.shape();
  std::vector<bool> reduced(s.size(), axes.empty() && !attr_int(n, "noop_with_empty_axes", 0));
  for (int64_t a : axes) reduced[normalize_axis(a, s.size(), where)] = true;
  Shape out, kept = s;
  for (size_t i = 0; i < s.size(); ++i) {
    if (reduced[i]) kept[i] = 1;
    if (!reduced[i] || attr_int(n, "keepdims", 1)) out.push_back(kept[i]);
  }
  FoldValue r{Tensor(out, x.t.dtype()), {}};
  std::vector<double> acc(r.t.numel(), op == "ReduceProd" ? 1.0 : op == "ReduceMax" ? -INFINITY : op == "ReduceMin" ? INFINITY : 0.0);
  auto dst = broadcast_index(kept, s);  // input element -> output element (dropped dims reduce)
  for (int64_t j = 0; j < x.t.numel(); ++j) {
    double v = element(x.t, j);
    double& a = acc[dst[j]];
    a = op == "ReduceProd" ? a * v : op == "ReduceMax" ? std::max(a, v) : op == "ReduceMin" ? std::min(a, v) : a + v;
  }
  int64_t count = std::max<int64_t>(1, x.t.numel() / std::max<int64_t>(1, r.t.numel()));
  for (int64_t j = 0; j < r.t.numel(); ++j) {
    double v = op == "ReduceMean" ? acc[j] / double(count) : acc[j];
    if (r.t.dtype() == DType::f32) r.t.f32()[j] = float(v);
    else r.t.i64()[j] = int64_t(v);
  }
  return r;
}

FoldValue cast_to(const FoldValue& x, int to) {
  using TP = onnx::TensorProto;
  bool to_float = to == TP::FLOAT || to == TP::DOUBLE || to == TP::FLOAT16 || to == TP::BFLOAT16;
  FoldValue r{Tensor(x.t.shape(), to_float ? DType::f32 : DType::i64), x.symbols};
  for (int64_t j = 0; j < r.t.numel(); ++j) {
    double v = element(x.t, j);
    if (to == TP::FLOAT16) r.t.f32()[j] = round_to_float16(float(v));
    else if (to == TP::BFLOAT16) r.t.f32()[j] = round_to_bfloat16(float(v));
    else if (to_float) r.t.f32()[j] = float(v);
    else if (to == TP::BOOL) r.t.i64()[j] = v != 0;
    else r.t.i64()[j] = x.t.dtype() == DType::i64 ? x.t.i64()[j] : int64_t(v);
  }
  if (to_float && !x.known()) return FoldValue{};  // caller checks: a float can't carry a symbol
  return r;
}

}  // namespace

std::optional<Values> fold_node(const onnx::NodeProto& n, const Inputs& in, const SymShape* in_shape,
                                const std::string& where) {
  const std::string& op = n.op_type();
  if (op == "Shape" || op == "Size") {
    if (!in_shape) return std::nullopt;
    int64_t rank = in_shape->size();
    if (op == "Size") {
      int64_t count = 1;
      for (auto& d : *in_shape) {
        if (!d.known()) return std::nullopt;
        count *= d.value;
      }
      return Values{FoldValue{Tensor::from_i64({}, {count}), {}}};
    }
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", rank);
    start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
    end = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
    std::vector<int64_t> dims;
    std::vector<std::string> symbols;
    bool symbolic = false;
    for (int64_t i = start; i < end; ++i) {
      const Dim& d = (*in_shape)[i];
      dims.push_back(d.known() ? d.value : -1);
      symbols.push_back(d.known() ? "" : d.symbol);
      if (!d.known() && d.symbol.empty()) return std::nullopt;
      symbolic |= !d.known();
    }
    int64_t count = int64_t(dims.size());
    FoldValue v{Tensor::from_i64({count}, dims), {}};
    if (symbolic) v.symbols = symbols;
    return Values{v};
  }

  const FoldValue& x = need(in, 0, where);
  if (op == "Identity") return Values{x};
  if (op == "Flatten") {
    const Shape& s = x.t.shape();
    int64_t axis = attr_int(n, "axis", 1);
    if (axis != int64_t(s.size())) axis = normalize_axis(axis, s.size(), where);  // rank itself is allowed
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= s[i];
    return Values{with_shape(x, {outer, outer ? x.t.numel() / outer : 0})};
  }
  if (op == "Reshape") {
    std::vector<int64_t> target;
    if (n.input_size() > 1) {
      auto t = known_ints(in, 1);
      if (!t) return std::nullopt;
      target = *t;
    } else {
      target = attr_ints(n, "shape");
    }
    return Values{with_shape(x, reshape_target(x.t.shape(), target, attr_int(n, "allowzero", 0), where))};
  }
  if (op == "Squeeze") return fold_squeeze(n, in, where);
  if (op == "Unsqueeze") return fold_unsqueeze(n, in, where);
  if (op == "Concat") return Values{fold_concat(in, attr_int(n, "axis", 0), where)};
  if (op == "Gather") {
    const FoldValue& indices = need(in, 1, where);
    if (!indices.known()) return std::nullopt;
    return Values{fold_gather(x, indices, attr_int(n, "axis", 0), where)};
  }
  if (op == "Slice") return fold_slice(n, in, n.input_size() > 1, where);
  if (op == "Transpose") return Values{fold_transpose(x, attr_ints(n, "perm"), where)};
  if (op == "Expand") {
    auto target = known_ints(in, 1);
    if (!target) return std::nullopt;
    Shape out = broadcast_shapes(x.t.shape(), *target, where);
    return Values{pick(x, out, broadcast_index(x.t.shape(), out))};
  }
  if (op == "Tile") {
    std::vector<int64_t> repeats = has_attr(n, "repeats") ? attr_ints(n, "repeats") : std::vector<int64_t>{};
    if (n.input_size() > 1) {
      auto r = known_ints(in, 1);
      if (!r) return std::nullopt;
      repeats = *r;
    }
    return Values{fold_tile(x, repeats, where)};
  }
  if (op == "Split") {
    std::vector<int64_t> sizes = attr_ints(n, "split");
    if (n.input_size() > 1 && in[1]) {
      auto s = known_ints(in, 1);
      if (!s) return std::nullopt;
      sizes = *s;
    }
    return fold_split(n, x, sizes, where);
  }
  if (op == "Cast") {
    FoldValue r = cast_to(x, int(attr_int(n, "to", onnx::TensorProto::FLOAT)));
    if (r.t.empty()) return std::nullopt;
    return Values{r};
  }

  // Everything below computes on values, so every operand must be fully known.
  if (any_symbolic(in)) return std::nullopt;
  if (op == "ConstantOfShape") {
    Shape shape = checked(x.t.to_i64_vector(), where);
    FoldValue r{Tensor(shape, DType::f32), {}};
    if (auto* a = find_attr(n, "value")) {
      Tensor v = tensor_from_proto(a->t(), where + " value");
      if (v.numel() != 1) throw ModelError(where + ": value must hold one element");
      r.t = Tensor(shape, v.dtype());
      for (int64_t j = 0; j < r.t.numel(); ++j) {
        if (v.dtype() == DType::f32) r.t.f32()[j] = v.f32()[0];
        else r.t.i64()[j] = v.i64()[0];
      }
    }
    return Values{r};
  }
  if (op == "Range") {
    const FoldValue &start = x, &limit = need(in, 1, where), &delta = need(in, 2, where);
    if (start.t.numel() != 1 || limit.t.numel() != 1 || delta.t.numel() != 1)
      throw ModelError(where + ": Range operands must be scalars");
    if (limit.t.dtype() != start.t.dtype() || delta.t.dtype() != start.t.dtype())
      throw ModelError(where + ": Range operands differ in type");
    double s = element(start.t, 0), l = element(limit.t, 0), d = element(delta.t, 0);
    if (d == 0) throw ModelError(where + ": Range delta is 0");
    double steps = std::ceil((l - s) / d);
    if (!(steps < double(kMaxFoldedElements))) throw ModelError(where + ": Range of implausible length");
    int64_t count = std::max<int64_t>(0, int64_t(steps));
    FoldValue r{Tensor({count}, start.t.dtype()), {}};
    for (int64_t j = 0; j < count; ++j) {
      if (r.t.dtype() == DType::f32) r.t.f32()[j] = float(s + j * d);
      else r.t.i64()[j] = start.t.i64()[0] + j * delta.t.i64()[0];
    }
    return Values{r};
  }
  if (op.rfind("Reduce", 0) == 0) {
    auto r = fold_reduce(n, in, where);
    if (!r) return std::nullopt;
    return Values{*r};
  }
  for (auto* v : in)
    if (!v) throw ModelError(where + ": missing input");
  auto r = fold_arith(op, in, attr_int(n, "fmod", 0) != 0, where);
  if (!r) return std::nullopt;
  return Values{*r};
}

}  // namespace dnn
