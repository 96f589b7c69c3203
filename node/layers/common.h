// Helpers the layer files share: ONNX axis rules, operands that arrive either as attributes (the
// importer's canonical form) or as constant inputs (opset 10+ form), deterministic parallel loops,
// and two gather loops that every data-movement layer reduces to.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace dnn {

// NumPy broadcasting of two shapes; throws ShapeError when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Element strides of `s` aligned to the right of `out`, 0 along broadcast dimensions.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out);

// Maps a possibly negative ONNX axis into [0, rank); throws ShapeError when it is out of range.
int normalize_axis(int64_t axis, int rank);

// An int-list operand: attribute `name` if present, else the constant input `index` (e.g. Reshape's
// `shape`). Returns false when neither is given; throws ModelError when the input is not a constant.
bool int_operand(const Node& node, const std::vector<const Tensor*>& consts, const std::string& name,
                 size_t index, std::vector<int64_t>& out);
// The same for a float operand (Clip's min/max, Pad's value, Resize's scales).
bool float_operand(const Node& node, const std::vector<const Tensor*>& consts, const std::string& name,
                   size_t index, std::vector<float>& out);

// Throws ModelError when input `index` is a constant: the importer folds constant-only subgraphs, so
// a layer that reads activations only never expects one.
void require_activation(const Node& node, const std::vector<const Tensor*>& consts, size_t index);

// fn(begin, end) over [0, n) in equal chunks across the pool (none if the pool is null); chunks
// depend only on n and the thread count, so results are deterministic.
void parallel_chunks(RunContext& ctx, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Drops size-1 dimensions and merges neighbours that are contiguous in every operand, so inner loops
// run as long as possible. strides[k] holds the k-th operand's element stride per dimension (0 where
// it is broadcast). Leaves at least one dimension.
void collapse_dims(Shape& shape, std::vector<std::vector<int64_t>*> strides);

// dst[i] = src[sum_d index_d(i) * strides[d]] over `shape` in row-major order: Transpose, Slice,
// Reduce*. Rows are split across the pool.
void strided_copy(RunContext& ctx, const float* src, const Shape& shape, const std::vector<int64_t>& strides, float* dst);

// Many memcpy's of floats (Concat's and Split's blocks), spread over the pool by element count.
struct Copy {
  const float* src;
  float* dst;
  int64_t n;
};
void parallel_copies(RunContext& ctx, const std::vector<Copy>& copies);

// dst[i] = src[maps[0][i0], ..., maps[r-1][i_{r-1}]] over the output shape {maps[d].size()}, or
// `fill` where any map entry is -1: Pad (constant/reflect/edge) and nearest-neighbour Resize. Rows
// are split across the pool.
void gather_by_maps(RunContext& ctx, const float* src, const Shape& src_shape,
                    const std::vector<std::vector<int64_t>>& maps, float fill, float* dst);

// e^x within a few ulp (Cephes' expf polynomial), branch-free so that loops calling it vectorise,
// which libm's expf does not. Overflows to +inf like expf; underflows through denormals to 0.
inline float vexp(float x) {
  x = std::min(std::max(x, -104.f), 89.f);
  // n = round(x / ln2): adding and removing 1.5 * 2^23 rounds, and unlike floor() it vectorises.
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // x - n ln2, ln2 split for exactness
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  // Times 2^n as 2^a * 2^b (a + b = n), so every n in [-150, 128] has valid exponent bits.
  const int32_t ni = static_cast<int32_t>(n), a = ni / 2, b = ni - a;
  const int32_t ea = (a + 127) << 23, eb = (b + 127) << 23;
  return p * __builtin_bit_cast(float, ea) * __builtin_bit_cast(float, eb);
}

// op(...op(identity, x[0])..., x[n-1]) with 16 independent lanes, so the loop vectorises (the
// compiler will not reorder a float reduction itself). Sums of long rows also lose fewer digits.
template <class Op>
float row_reduce(const float* x, int64_t n, float identity, Op op) {
  float lane[16];
  std::fill(lane, lane + 16, identity);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) lane[k] = op(lane[k], x[i + k]);
  for (; i < n; ++i) lane[0] = op(lane[0], x[i]);
  float r = identity;
  for (float v : lane) r = op(r, v);
  return r;
}

inline float row_sum(const float* x, int64_t n) { return row_reduce(x, n, 0.f, [](float a, float b) { return a + b; }); }

}  // namespace dnn
