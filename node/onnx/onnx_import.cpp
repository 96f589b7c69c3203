// import_onnx: ModelProto -> canonical dnn::Graph.
//
// 1. Read the file (model_file.cpp: weights go straight into tensors) and check the opset.
// 2. Fold constants on the protobuf graph, round by round: ONNX shape inference gives every value's
//    shape (symbolic dims for a dynamic batch), then every node computable at import is evaluated and
//    replaced by its value (fold.cpp). Repeat until nothing changes: each round's folded shapes let
//    shape inference see further.
// 3. Convert to dnn::Graph and run the canonicalisation and fusion passes (canonical.cpp, passes.cpp).
#include "onnx/onnx_import.h"

#include <onnx/shape_inference/implementation.h>

#include <cstdint>
#include <set>

#include "core/error.h"
#include "onnx/passes.h"
#include "onnx/proto_util.h"

namespace dnn {

Shape to_shape(const SymShape& s) {
  Shape out;
  for (auto& d : s) out.push_back(d.known() ? d.value : -1);
  return out;
}

SymShape to_sym_shape(const Shape& s) {
  SymShape out;
  for (int64_t d : s) out.push_back(Dim{d, ""});
  return out;
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
  for (auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
bool has_attr(const onnx::NodeProto& n, const std::string& name) { return find_attr(n, name) != nullptr; }
int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t dflt) {
  auto a = find_attr(n, name);
  return a ? a->i() : dflt;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name) {
  auto a = find_attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}

namespace {

std::string describe(const onnx::NodeProto& n) { return "node '" + n.name() + "' (" + n.op_type() + ")"; }
bool is_standard_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

int standard_opset(const onnx::ModelProto& m, const std::string& path) {
  for (auto& o : m.opset_import())
    if (is_standard_domain(o.domain())) {
      int v = int(o.version());
      if (v < kMinOpset || v > kMaxOpset)
        throw ModelError("'" + path + "' uses ONNX opset " + std::to_string(v) + "; dnnswarm supports opsets " +
                         std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + " (re-export the model)");
      return v;
    }
  throw ModelError("'" + path + "' declares no standard ONNX opset");
}

AttrValue attr_value(const onnx::AttributeProto& a, const std::string& where) {
  using A = onnx::AttributeProto;
  switch (a.type()) {
    case A::INT: return a.i();
    case A::FLOAT: return a.f();
    case A::STRING: return a.s();
    case A::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case A::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case A::TENSOR: {
      Tensor t = tensor_from_proto(a.t(), where + " attribute '" + a.name() + "'");
      if (t.numel() == 1) return t.dtype() == DType::f32 ? AttrValue(t.f32()[0]) : AttrValue(t.i64()[0]);
      break;
    }
    default: break;
  }
  throw ModelError(where + ": attribute '" + a.name() + "' of type " + A::AttributeType_Name(a.type()) +
                   " is not supported");
}

// Integer constants are shapes, axes, pads and indices here (activations are float). A magnitude
// beyond 2^31 is a corrupt file, and libonnx's shape inference takes time linear in such a dim (a
// minute at 2^40); only the INT64_MAX / INT64_MIN sentinels exporters put in Slice bounds pass.
void check_plausible(const Tensor& t, const std::string& what) {
  if (t.dtype() != DType::i64) return;
  constexpr int64_t limit = int64_t(1) << 31;
  const int64_t* v = t.i64();
  for (int64_t i = 0; i < t.numel(); ++i)
    if ((v[i] > limit || v[i] < -limit) && v[i] != INT64_MAX && v[i] != INT64_MIN && v[i] != INT64_MIN + 1)
      throw ModelError(what + " holds the implausible integer " + std::to_string(v[i]));
}

class Importer {
 public:
  Importer(OnnxFile& file, int opset) : model_(file.model), g_(*file.model.mutable_graph()), opset_(opset) {
    if (g_.sparse_initializer_size() > 0) throw ModelError("sparse initializers are not supported");
    for (auto& kv : file.weights) {
      initializers_.insert(kv.first);
      check_plausible(kv.second, "initializer '" + kv.first + "'");
      known_[kv.first] = FoldValue{std::move(kv.second), {}};
    }
    file.weights.clear();
  }

  Graph run() {
    name_nodes();
    name_unknown_input_dims();
    fold_round();  // Constant nodes and weight transforms first: inference then sees their values
    for (int round = 0; round < 100; ++round) {
      check_window_attributes();
      infer_shapes();
      bool changed = opset18_as_opset13();  // takes effect at the next inference
      changed |= fold_round();
      if (!changed) break;
    }
    Graph g = to_graph();
    canonicalize(g, opset_, shapes_);
    remove_passthrough_nodes(g);
    gemm_weights_canonical(g, shapes_);
    fold_batchnorm(g);
    fuse_residual_add(g, shapes_);
    recognise_hardswish(g);
    fuse_activation(g);
    finalize(g);
    g.validate();
    return g;
  }

 private:
  // Every node gets a unique name before anything can report on it: an unnamed one is op_<its index
  // in the file>, a repeated name gets _2, _3, ...
  void name_nodes() {
    std::set<std::string> used;
    for (int k = 0; k < g_.node_size(); ++k) {
      onnx::NodeProto& n = *g_.mutable_node(k);
      const std::string base = n.name().empty() ? "op_" + std::to_string(k) : n.name();
      std::string name = base;
      for (int suffix = 2; used.count(name); ++suffix) name = base + "_" + std::to_string(suffix);
      used.insert(name);
      n.set_name(name);
      if (n.op_type().empty() || n.output_size() == 0)
        throw ModelError(describe(n) + " has no operator type or no output");
    }
  }

  // Unknown input dims get a name, so shape inference carries them and Shape(x) of any value whose
  // batch comes from that input refers to the same symbol.
  void name_unknown_input_dims() {
    for (auto& in : *g_.mutable_input()) {
      if (!in.type().has_tensor_type() || !in.type().tensor_type().has_shape()) continue;
      auto* dims = in.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim();
      for (int i = 0; i < dims->size(); ++i) {
        auto& d = (*dims)[i];
        if (!d.has_dim_value() && !d.has_dim_param()) d.set_dim_param("?" + in.name() + ":" + std::to_string(i));
      }
    }
  }

  // libonnx 1.12's convolution/pooling shape inference trusts its attributes: it divides by strides,
  // and reads the kernel size from W's shape unchecked. Check them first, and write kernel_shape out
  // from W (the spec requires them to match) so inference compares it with the input's rank.
  void check_window_attributes() {
    static const std::set<std::string> windowed = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"};
    for (auto& n : *g_.mutable_node()) {
      if (!windowed.count(n.op_type())) continue;
      for (const char* name : {"strides", "dilations", "kernel_shape"})
        for (int64_t v : attr_ints(n, name))
          if (v < 1) throw ModelError(describe(n) + ": " + name + " must be positive, got " + std::to_string(v));
      for (int64_t v : attr_ints(n, "pads"))
        if (v < 0) throw ModelError(describe(n) + ": negative pads");
      if (n.op_type().rfind("Conv", 0) != 0 || n.input_size() < 2) continue;
      auto w = known_.find(n.input(1));
      if (w == known_.end() || !w->second.known())
        throw ModelError(describe(n) + ": weights '" + n.input(1) + "' are computed at run time; dnnswarm needs them constant");
      const Shape& ws = w->second.t.shape();
      if (ws.size() < 3) throw ModelError(describe(n) + ": weights of shape " + to_string(ws) + " (rank 3 or more expected)");
      if (!has_attr(n, "kernel_shape")) set_ints_attr(n, "kernel_shape", Shape(ws.begin() + 2, ws.end()));
    }
  }

  // libonnx 1.12 has schemas up to opset 17, so for an opset-18 model it infers shapes with the older
  // schema of each op that changed in 18: Reduce* (axes moved to an input), Split (num_outputs) and
  // Pad (axes input). Those nodes are rewritten into the older form where it means the same, so the
  // next inference reads them right. Returns true if it rewrote any. Nodes it cannot rewrite (axes
  // not constant) fail canonicalisation later.
  bool opset18_as_opset13() {
    if (opset_ < 18) return false;
    bool changed = false;
    for (auto& n : *g_.mutable_node()) {
      const std::string& op = n.op_type();
      if (op.rfind("Reduce", 0) == 0 && op != "ReduceSum" && n.input_size() > 1) {
        auto axes = constant_ints(n, 1);
        if (!axes) continue;
        set_ints_attr(n, "axes", *axes);
        n.mutable_input()->DeleteSubrange(1, n.input_size() - 1);
        changed = true;
      } else if (op == "Split" && has_attr(n, "num_outputs")) {
        auto* attrs = n.mutable_attribute();
        for (int i = attrs->size() - 1; i >= 0; --i)
          if ((*attrs)[i].name() == "num_outputs") attrs->DeleteSubrange(i, 1);
        changed = true;
      } else if (op == "Pad" && n.input_size() > 3 && !n.input(3).empty()) {
        auto pads = constant_ints(n, 1), axes = constant_ints(n, 3);
        auto data = shapes_.find(n.input(0));
        if (!pads || !axes || data == shapes_.end() || pads->size() != 2 * axes->size()) continue;
        const int64_t rank = int64_t(data->second.size());
        std::vector<int64_t> full(2 * rank, 0);
        for (size_t k = 0; k < axes->size(); ++k) {
          int64_t a = (*axes)[k] < 0 ? (*axes)[k] + rank : (*axes)[k];
          if (a < 0 || a >= rank) throw ModelError(describe(n) + ": axis out of range");
          full[a] = (*pads)[k], full[a + rank] = (*pads)[k + axes->size()];
        }
        std::string name = n.output(0) + "/full_pads";
        store(name, FoldValue{Tensor::from_i64({2 * rank}, full), {}});
        n.set_input(1, name);
        n.mutable_input()->DeleteSubrange(3, n.input_size() - 3);
        changed = true;
      }
    }
    return changed;
  }

  // Input i of `n` when it is a fully known constant.
  std::optional<std::vector<int64_t>> constant_ints(const onnx::NodeProto& n, int i) const {
    if (i >= n.input_size() || n.input(i).empty()) return std::nullopt;
    auto it = known_.find(n.input(i));
    if (it == known_.end() || !it->second.known()) return std::nullopt;
    return it->second.t.to_i64_vector();
  }

  static void set_ints_attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  void infer_shapes() {
    g_.clear_value_info();
    try {
      onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(),
                                         onnx::ShapeInferenceOptions(false, 0, false));
    } catch (const std::exception&) {
      // Inference is best effort: without it, only Shape(x) of inputs with declared shapes folds.
    }
    shapes_.clear();
    auto record = [this](const onnx::ValueInfoProto& v) {
      if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
      SymShape s;
      int i = 0;
      for (auto& d : v.type().tensor_type().shape().dim()) {
        if (d.has_dim_value()) s.push_back(Dim{d.dim_value(), ""});
        else if (d.has_dim_param()) s.push_back(Dim{-1, d.dim_param()});
        else s.push_back(Dim{-1, "?" + v.name() + ":" + std::to_string(i)});  // equal only to itself
        ++i;
      }
      shapes_[v.name()] = s;
    };
    for (auto& v : g_.input()) record(v);
    for (auto& v : g_.value_info()) record(v);
    for (auto& v : g_.output()) record(v);
    for (auto& kv : known_) shapes_[kv.first] = to_sym_shape(kv.second.t.shape());
  }

  void store(const std::string& name, FoldValue v) {
    check_plausible(v.t, "value '" + name + "'");
    if (v.known()) {  // shape inference sees the value (only the shape of a big one)
      onnx::TensorProto* p = g_.add_initializer();
      if (v.t.numel() <= kKeepInProtoElements) {
        *p = tensor_to_proto(v.t, name);
      } else {
        p->set_name(name);
        p->set_data_type(v.t.dtype() == DType::f32 ? onnx::TensorProto::FLOAT : onnx::TensorProto::INT64);
        for (int64_t d : v.t.shape()) p->add_dims(d);
      }
    }
    known_[name] = std::move(v);
  }

  FoldValue constant_value(const onnx::NodeProto& n, const std::string& where) {
    if (n.attribute_size() != 1) throw ModelError(where + ": a Constant needs exactly one value attribute");
    const auto& a = n.attribute(0);
    const std::string& k = a.name();
    if (k == "value") return {tensor_from_proto(a.t(), where), {}};
    if (k == "value_float") return {Tensor::from_f32({}, {a.f()}), {}};
    if (k == "value_int") return {Tensor::from_i64({}, {a.i()}), {}};
    if (k == "value_floats") {
      std::vector<float> v(a.floats().begin(), a.floats().end());
      return {Tensor::from_f32({int64_t(v.size())}, v), {}};
    }
    if (k == "value_ints") {
      std::vector<int64_t> v(a.ints().begin(), a.ints().end());
      return {Tensor::from_i64({int64_t(v.size())}, v), {}};
    }
    throw ModelError(where + ": Constant attribute '" + k + "' is not supported");
  }

  // Evaluates `n` if every input is known (Shape/Size: if the input's shape is). Returns true when
  // the node is replaced by its values.
  bool try_fold(const onnx::NodeProto& n) {
    const std::string where = describe(n);
    if (!is_standard_domain(n.domain())) return false;
    if (n.op_type() == "Constant") {
      store(n.output(0), constant_value(n, where));
      return true;
    }
    if (!is_foldable_op(n.op_type())) return false;
    const bool reads_shape_only = n.op_type() == "Shape" || n.op_type() == "Size";
    std::vector<const FoldValue*> in;
    for (int i = 0; i < n.input_size(); ++i) {
      auto it = known_.find(n.input(i));
      if (n.input(i).empty() || (reads_shape_only && i == 0)) in.push_back(nullptr);
      else if (it != known_.end()) in.push_back(&it->second);
      else return false;
    }
    const SymShape* in_shape = nullptr;
    if (reads_shape_only) {
      auto it = shapes_.find(n.input(0));
      if (it == shapes_.end()) return false;
      in_shape = &it->second;
    }
    auto out = fold_node(n, in, in_shape, where);
    if (!out) return false;
    if (int(out->size()) < n.output_size()) return false;
    for (int i = 0; i < n.output_size(); ++i)
      if (!n.output(i).empty()) store(n.output(i), (*out)[i]);
    return true;
  }

  // Reshape(x, shape) where `shape` holds unknown dims (Concat(Gather(Shape(x), 0), [-1])): an unknown
  // at position i that is x's own dim i becomes 0, ONNX's "copy this dimension", so the target is
  // constant again.
  bool make_reshape_static(onnx::NodeProto& n) {
    if (n.op_type() != "Reshape" || n.input_size() < 2 || attr_int(n, "allowzero", 0)) return false;
    auto target = known_.find(n.input(1));
    auto data = shapes_.find(n.input(0));
    if (target == known_.end() || target->second.known() || data == shapes_.end()) return false;
    std::vector<int64_t> dims = target->second.t.to_i64_vector();
    for (size_t i = 0; i < dims.size(); ++i) {
      const std::string& sym = target->second.symbols[i];
      if (sym.empty()) continue;
      if (i >= data->second.size() || data->second[i].known() || data->second[i].symbol != sym) return false;
      dims[i] = 0;
    }
    std::string name = n.output(0) + "/static_shape";
    store(name, FoldValue{Tensor::from_i64({int64_t(dims.size())}, dims), {}});
    n.set_input(1, name);
    return true;
  }

  bool fold_round() {
    bool changed = false;
    google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
    for (auto& n : *g_.mutable_node()) {
      if (try_fold(n)) {
        changed = true;
        continue;
      }
      changed |= make_reshape_static(n);
      kept.Add()->Swap(&n);
    }
    g_.mutable_node()->Swap(&kept);
    return changed;
  }

  Graph to_graph() {
    Graph out;
    out.name = g_.name();
    for (auto& v : g_.input()) {
      if (initializers_.count(v.name()) || known_.count(v.name())) continue;
      ValueInfo vi{v.name(), {}};
      for (auto& d : v.type().tensor_type().shape().dim()) vi.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      out.inputs.push_back(vi);
    }
    for (auto& v : g_.output()) {
      auto it = shapes_.find(v.name());
      out.outputs.push_back({v.name(), it != shapes_.end() ? to_shape(it->second) : Shape{}});
    }
    for (const onnx::NodeProto& p : g_.node()) {
      Node n;
      n.name = p.name();  // unique since name_nodes()
      n.op = p.op_type();
      const std::string where = "node '" + n.name + "' (" + n.op + ")";
      if (!is_standard_domain(p.domain()))
        throw ModelError(where + " is from operator domain '" + p.domain() + "', which dnnswarm does not support");
      check_inputs_resolved(p, where);
      n.inputs.assign(p.input().begin(), p.input().end());
      n.outputs.assign(p.output().begin(), p.output().end());
      for (auto& a : p.attribute()) n.attrs.set(a.name(), attr_value(a, where));
      out.nodes.push_back(std::move(n));
    }
    for (auto& n : out.nodes)
      for (auto& in : n.inputs)
        if (known_.count(in)) out.constants[in] = known_[in].t;
    for (auto& o : out.outputs)
      if (known_.count(o.name)) out.constants[o.name] = known_[o.name].t;
    return out;
  }

  // A node left after folding must compute on at least one activation, and any shape operand must
  // have become a constant.
  void check_inputs_resolved(const onnx::NodeProto& p, const std::string& where) {
    bool has_activation = false;
    for (auto& in : p.input()) {
      if (in.empty()) continue;
      auto it = known_.find(in);
      if (it == known_.end()) {
        has_activation = true;
      } else if (!it->second.known()) {
        throw ModelError(where + ": input '" + in + "' depends on a dimension known only at run time; "
                         "dnnswarm needs it fixed at import");
      }
    }
    if (p.op_type() == "Shape" || p.op_type() == "Size")
      throw ModelError(where + ": the shape of '" + p.input(0) + "' is not known at import");
    if (!has_activation)
      throw ModelError(where + " has only constant inputs, but dnnswarm cannot evaluate " + p.op_type() +
                       " at import");
  }

  onnx::ModelProto& model_;
  onnx::GraphProto& g_;
  int opset_;
  std::set<std::string> initializers_;
  std::map<std::string, FoldValue> known_;  // constants, and shape values with unknown dims
  ShapeMap shapes_;
};

Graph import_model(OnnxFile& file, const std::string& path) {
  int opset = standard_opset(file.model, path);
  try {
    return Importer(file, opset).run();
  } catch (const ModelError& e) {
    throw ModelError("'" + path + "': " + e.what());
  } catch (const ShapeError& e) {
    throw ModelError("'" + path + "': " + e.what());
  }
}

}  // namespace

Graph import_onnx(const std::string& path) {
  try {
    OnnxFile file = read_onnx_file(path);  // its errors name the path already
    return import_model(file, path);
  } catch (const IoError&) {
    throw;
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {
    // A check this importer lacks (found by fuzzing): still an error naming the file, never a crash.
    throw ModelError("'" + path + "': malformed model (" + e.what() + ")");
  }
}

}  // namespace dnn
