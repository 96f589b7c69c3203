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

namespace {
// The multi-index of `row` over the first r - 1 dimensions of `shape` (the last one is the row).
std::vector<int64_t> row_index(int64_t row, const Shape& shape) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d) {
    idx[d] = row % shape[d];
    row /= shape[d];
  }
  return idx;
}

// Advances idx to the next row (an odometer over all but the last dimension).
void next_row(std::vector<int64_t>& idx, const Shape& shape) {
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d) {
    if (++idx[d] < shape[d]) return;
    idx[d] = 0;
  }
}

constexpr int64_t kCopyGrain = 1 << 15;  // elements worth a thread
}  // namespace

void strided_copy(RunContext& ctx, const float* src, const Shape& shape_in, const std::vector<int64_t>& strides_in,
                  float* dst) {
  if (numel(shape_in) == 0) return;
  Shape shape = shape_in;
  std::vector<int64_t> strides = strides_in;
  collapse_dims(shape, {&strides});
  const int r = static_cast<int>(shape.size());
  const int64_t n = shape[r - 1], s = strides[r - 1];
  parallel_chunks(ctx, numel(shape) / n, std::max<int64_t>(1, kCopyGrain / n), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx = row_index(r0, shape);
    for (int64_t row = r0; row < r1; ++row, next_row(idx, shape)) {
      int64_t off = 0;
      for (int d = 0; d < r - 1; ++d) off += idx[d] * strides[d];
      float* y = dst + row * n;
      if (s == 1)
        std::memcpy(y, src + off, n * sizeof(float));
      else
        for (int64_t i = 0; i < n; ++i) y[i] = src[off + i * s];
    }
  });
}

void parallel_copies(RunContext& ctx, const std::vector<Copy>& copies) {
  std::vector<int64_t> start(copies.size() + 1, 0);  // prefix sums: copy k covers [start[k], start[k+1])
  for (size_t k = 0; k < copies.size(); ++k) start[k + 1] = start[k] + copies[k].n;
  parallel_chunks(ctx, start.back(), kCopyGrain, [&](int64_t b, int64_t e) {
    size_t k = std::upper_bound(start.begin(), start.end(), b) - start.begin() - 1;
    for (; k < copies.size() && start[k] < e; ++k) {
      const int64_t from = std::max(b, start[k]) - start[k], to = std::min(e, start[k + 1]) - start[k];
      if (to > from) std::memcpy(copies[k].dst + from, copies[k].src + from, (to - from) * sizeof(float));
    }
  });
}

void gather_by_maps(RunContext& ctx, const float* src, const Shape& src_shape,
                    const std::vector<std::vector<int64_t>>& maps, float fill, float* dst) {
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
  parallel_chunks(ctx, numel(out_shape) / n, std::max<int64_t>(1, kCopyGrain / n), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx = row_index(r0, out_shape);
    for (int64_t row = r0; row < r1; ++row, next_row(idx, out_shape)) {
      float* y = dst + row * n;
      int64_t off = 0;
      bool inside = true;
      for (int d = 0; d < r - 1 && inside; ++d) {
        const int64_t m = maps[d][idx[d]];
        inside = m >= 0;
        off += m * stride[d];
      }
      if (!inside) {
        std::fill(y, y + n, fill);
        continue;
      }
      const float* x = src + off;
      for (int64_t i = 0; i < n; ++i) y[i] = inner[i] >= 0 ? x[inner[i]] : fill;
    }
  });
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError("shapes " + to_string(a) + " and " + to_string(b) + " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t stride = 1;
  for (size_t k = 0; k < s.size(); ++k) {
    size_t d = out.size() - 1 - k, sd = s.size() - 1 - k;
    st[d] = s[sd] == 1 ? 0 : stride;
    stride *= s[sd];
  }
  return st;
}

}  // namespace dnn
