// Internal to node/onnx: what the importer's files share (attribute access on ONNX protos, shapes
// with symbolic dimensions, the constant evaluator's value type).
#pragma once
#include <onnx/onnx_pb.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/operators.h"  // is_foldable_op: the operators fold_node evaluates
#include "core/tensor.h"

namespace dnn {

// A dimension from shape inference: a known size, or an unknown one named by `symbol` (the exporter's
// dim_param such as "batch", or one we make up). Two unknown dims are equal only if their symbols are.
struct Dim {
  int64_t value = -1;
  std::string symbol;
  bool known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return known() ? value == o.value : !o.known() && symbol == o.symbol; }
};
using SymShape = std::vector<Dim>;
using ShapeMap = std::map<std::string, SymShape>;  // value name -> inferred shape (absent: rank unknown)

Shape to_shape(const SymShape& s);  // unknown dims become -1
SymShape to_sym_shape(const Shape& s);

// A value known at import: a constant tensor, or a shape vector some of whose elements are unknown
// dimensions (Shape(x) of an activation with a dynamic batch). Only int64 values carry symbols.
struct FoldValue {
  Tensor t;
  std::vector<std::string> symbols;  // empty when fully known, else one per element ("" = known)
  bool known() const { return symbols.empty(); }
};

// Evaluates one ONNX node at import. `in[i]` is null for an omitted optional input; `in_shape` is the
// inferred shape of input 0 (used by Shape and Size). Returns nothing when the op is not one the
// evaluator knows or the result would depend on an unknown dimension in a way it cannot carry.
// Throws ModelError for a malformed node.
std::optional<std::vector<FoldValue>> fold_node(const onnx::NodeProto& n, const std::vector<const FoldValue*>& in,
                                                const SymShape* in_shape, const std::string& where);

// Element count of a shape read from a file or computed at import; ModelError for negative dims or
// more than kMaxElements (a corrupt file must not turn into a huge allocation).
constexpr int64_t kMaxElements = int64_t(1) << 32;
int64_t checked_numel(const Shape& shape, const std::string& what);

// A tensor's raw_data kept outside its TensorProto (the file reader leaves weights in the file until
// they are copied into their tensor). `copy_to` writes all `size` bytes; `data` is read only for
// element types that need converting.
struct RawData {
  const char* data;
  size_t size;
  std::function<void(void*)> copy_to;
};
// tensor_from_proto for a TensorProto whose raw_data is `raw` (null: the typed fields hold the values).
Tensor tensor_from_raw(const onnx::TensorProto& meta, const RawData* raw, const std::string& what);

// float32 values rounded to what float16 / bfloat16 can hold (Cast to those types at import).
float round_to_float16(float v);
float round_to_bfloat16(float v);

onnx::TensorProto tensor_to_proto(const Tensor& t, const std::string& name);

// A .onnx file read with each initializer's values once, in `weights`. In `model`, initializers keep
// their name, type and dims, and their values only up to kKeepInProtoElements (shape inference reads
// small constant operands; it needs only the shapes of weights).
struct OnnxFile {
  onnx::ModelProto model;
  std::map<std::string, Tensor> weights;
};
constexpr int64_t kKeepInProtoElements = 4096;
OnnxFile read_onnx_file(const std::string& path);  // IoError / ModelError naming the path

// Attributes of an ONNX node.
const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name);
int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t dflt);
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name);
bool has_attr(const onnx::NodeProto& n, const std::string& name);

}  // namespace dnn
