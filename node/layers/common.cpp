#include "layers/common.h"

#include <algorithm>
#include <cstring>

namespace dnn {

int normalize_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank)
    throw ShapeError("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

namespace {
// The constant at input `index`, null when that input is absent; throws when it is an activation.
const Tensor* constant_input(const Node& node, const std::vector<const Tensor*>& consts, size_t index,
                             const std::string& what) {
  if (index >= node.inputs.size() || node.inputs[index].empty()) return nullptr;
  if (index >= consts.size() || !consts[index])
    throw ModelError("input " + std::to_string(index) + " ('" + what + "') must be a constant, got a value computed at run time");
  return consts[index];
}
}  // namespace

bool int_operand(const Node& node, const std::vector<const Tensor*>& consts, const std::string& name,
                 size_t index, std::vector<int64_t>& out) {
  if (node.attrs.has(name)) {
    out = node.attrs.ints(name);
    return true;
  }
  const Tensor* t = constant_input(node, consts, index, name);
  if (!t) return false;
  out = t->to_i64_vector();
  return true;
}

bool float_operand(const Node& node, const std::vector<const Tensor*>& consts, const std::string& name,
                   size_t index, std::vector<float>& out) {
  if (node.attrs.has(name)) {
    // A scalar attribute (Clip's min) or a list (Resize's scales).
    auto& v = node.attrs.all().at(name);
    out = std::holds_alternative<std::vector<float>>(v) ? node.attrs.floats(name)
                                                         : std::vector<float>{node.attrs.f(name, 0.f)};
    return true;
  }
  const Tensor* t = constant_input(node, consts, index, name);
  if (!t) return false;
  out.resize(t->numel());
  for (int64_t i = 0; i < t->numel(); ++i)
    out[i] = t->dtype() == DType::f32 ? t->f32()[i] : static_cast<float>(t->i64()[i]);
  return true;
}

void require_activation(const Node& node, const std::vector<const Tensor*>& consts, size_t index) {
  if (index < consts.size() && consts[index])
    throw ModelError("input " + std::to_string(index) + " is a constant; this layer expects an activation "
                     "(constant-only subgraphs should have been folded at import)");
}

void parallel_chunks(RunContext& ctx, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (ctx.pool)
    ctx.pool->parallel_for(n, fn, grain);
  else if (n > 0)
    fn(0, n);
}

void collapse_dims(Shape& shape, std::vector<std::vector<int64_t>*> strides) {
  Shape s;
  std::vector<std::vector<int64_t>> st(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !s.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k) merge = st[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      s.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) st[k].back() = (*strides[k])[d];
    } else {
      s.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) st[k].push_back((*strides[k])[d]);
    }
  }
  if (s.empty()) {  // a single element
    s.push_back(1);
    for (auto& v : st) v.push_back(0);
  }
  shape = s;
  for (size_t k = 0; k < strides.size(); ++k) *strides[k] = st[k];
}

void strided_copy(const float* src, const Shape& shape_in, const std::vector<int64_t>& strides_in, float* dst) {
  if (numel(shape_in) == 0) return;
  Shape shape = shape_in;
  std::vector<int64_t> strides = strides_in;
  collapse_dims(shape, {&strides});
  const int r = static_cast<int>(shape.size());
  const int64_t n = shape[r - 1], s = strides[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t done = 0, total = numel(shape); done < total; done += n) {
    if (s == 1)
      std::memcpy(dst, src + off, n * sizeof(float));
    else
      for (int64_t i = 0; i < n; ++i) dst[i] = src[off + i * s];
    dst += n;
    // Odometer over the outer dimensions.
    for (int d = r - 2; d >= 0; --d) {
      off += strides[d];
      if (++idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

void gather_by_maps(const float* src, const Shape& src_shape, const std::vector<std::vector<int64_t>>& maps,
                    float fill, float* dst) {
  const int r = static_cast<int>(src_shape.size());
  Shape out_shape(r);
  for (int d = 0; d < r; ++d) out_shape[d] = static_cast<int64_t>(maps[d].size());
  if (numel(out_shape) == 0) return;
  if (r == 0) {
    dst[0] = src[0];
    return;
  }
  std::vector<int64_t> stride(r, 1);
  for (int d = r - 2; d >= 0; --d) stride[d] = stride[d + 1] * src_shape[d + 1];
  const auto& inner = maps[r - 1];
  const int64_t n = out_shape[r - 1];
  std::vector<int64_t> idx(r, 0);
  for (int64_t done = 0, total = numel(out_shape); done < total; done += n, dst += n) {
    int64_t row = 0;
    bool inside = true;
    for (int d = 0; d < r - 1 && inside; ++d) {
      int64_t m = maps[d][idx[d]];
      inside = m >= 0;
      row += m * stride[d];
    }
    if (!inside) {
      std::fill(dst, dst + n, fill);
    } else {
      const float* x = src + row;
      for (int64_t i = 0; i < n; ++i) dst[i] = inner[i] >= 0 ? x[inner[i]] : fill;
    }
    for (int d = r - 2; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace dnn
