// Helpers the layer files share: ONNX axis rules, operands that arrive either as attributes (the
// importer's canonical form) or as constant inputs (opset 10+ form), deterministic parallel loops,
// and two gather loops that every data-movement layer reduces to.
#pragma once
#include <string>
#include <vector>

#include "layers/layer.h"

namespace dnn {

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

// dst[i] = src[sum_d index_d(i) * strides[d]] over `shape` in row-major order: Transpose and Slice.
void strided_copy(const float* src, const Shape& shape, const std::vector<int64_t>& strides, float* dst);

// dst[i] = src[maps[0][i0], ..., maps[r-1][i_{r-1}]] over the output shape {maps[d].size()}, or
// `fill` where any map entry is -1: Pad (constant/reflect/edge) and nearest-neighbour Resize.
void gather_by_maps(const float* src, const Shape& src_shape, const std::vector<std::vector<int64_t>>& maps,
                    float fill, float* dst);

}  // namespace dnn
