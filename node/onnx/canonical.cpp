// Canonicalisation: ONNX let operands move between attributes and inputs across opsets 7..18
// (Clip's min/max, Pad's pads, Slice's starts/ends, Reshape's shape, axes of Squeeze/Unsqueeze/
// Reduce*, Split's split, Upsample/Resize scales). After constant folding those operands are
// constants, so each becomes the attribute of the same ONNX name and the input is removed: layers
// implement one form only. Defaults are written out too (see docs/model-format.md, "Canonical graph").
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "onnx/passes.h"

namespace dnn {

namespace {

const Tensor* operand(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
  auto it = g.constants.find(n.inputs[i]);
  if (it == g.constants.end())
    throw ModelError(g.describe(n) + ": operand " + std::to_string(i) + " ('" + n.inputs[i] +
                     "') is computed at run time; dnnswarm needs it constant");
  return &it->second;
}

const Tensor& required_operand(const Graph& g, const Node& n, size_t i) {
  const Tensor* t = operand(g, n, i);
  if (!t) throw ModelError(g.describe(n) + ": required input " + std::to_string(i) + " is missing");
  return *t;
}

bool has_input(const Node& n, size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); }

std::vector<float> to_floats(const Tensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.dtype() == DType::f32 ? t.f32()[i] : float(t.i64()[i]));
  return v;
}

// Rank of a value, or -1 when shape inference could not tell.
int rank_of(const ShapeMap& shapes, const std::string& v) {
  auto it = shapes.find(v);
  return it == shapes.end() ? -1 : int(it->second.size());
}

void canonical_clip(const Graph& g, Node& n) {
  float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  if (n.inputs.size() > 1) {  // opset 11+: min and max are optional inputs
    if (auto t = operand(g, n, 1)) lo = to_floats(*t).at(0);
    if (auto t = operand(g, n, 2)) hi = to_floats(*t).at(0);
    n.inputs.resize(1);
  } else {
    lo = n.attrs.f("min", lo), hi = n.attrs.f("max", hi);
  }
  n.attrs.set("min", lo);
  n.attrs.set("max", hi);
}

void canonical_pad(const Graph& g, Node& n, const ShapeMap& shapes) {
  std::vector<int64_t> pads = n.attrs.ints("pads");
  float value = n.attrs.f("value", 0.f);
  if (n.inputs.size() > 1) {  // opset 11+: pads, constant_value, axes (18) as inputs
    pads = required_operand(g, n, 1).to_i64_vector();
    if (auto t = operand(g, n, 2)) value = to_floats(*t).at(0);
    if (auto axes_t = operand(g, n, 3)) {
      int rank = rank_of(shapes, n.inputs[0]);
      if (rank < 0) throw ModelError(g.describe(n) + ": Pad with axes needs the input rank");
      auto axes = axes_t->to_i64_vector();
      std::vector<int64_t> full(2 * rank, 0);
      if (pads.size() != 2 * axes.size()) throw ModelError(g.describe(n) + ": pads do not match axes");
      for (size_t k = 0; k < axes.size(); ++k) {
        int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (a < 0 || a >= rank) throw ModelError(g.describe(n) + ": axis out of range");
        full[a] = pads.at(k), full[a + rank] = pads.at(k + axes.size());
      }
      pads = full;
    }
    n.inputs.resize(1);
  }
  n.attrs.set("pads", pads);
  n.attrs.set("value", value);
  n.attrs.set("mode", n.attrs.s("mode", "constant"));
}

void canonical_slice(const Graph& g, Node& n, const ShapeMap& shapes) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.inputs.size() > 1) {  // opset 10+
    starts = required_operand(g, n, 1).to_i64_vector();
    ends = required_operand(g, n, 2).to_i64_vector();
    if (auto t = operand(g, n, 3)) axes = t->to_i64_vector();
    if (auto t = operand(g, n, 4)) steps = t->to_i64_vector();
    n.inputs.resize(1);
  } else {
    starts = n.attrs.ints("starts"), ends = n.attrs.ints("ends"), axes = n.attrs.ints("axes");
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  int rank = rank_of(shapes, n.inputs[0]);
  if (rank > 0)
    for (auto& a : axes) a = a < 0 ? a + rank : a;
  n.attrs.set("starts", starts);
  n.attrs.set("ends", ends);
  n.attrs.set("axes", axes);
  n.attrs.set("steps", steps);
}

// Axes given as input 1 (Squeeze/Unsqueeze from opset 13, ReduceSum 13, other Reduce* 18).
void axes_to_attr(const Graph& g, Node& n) {
  if (n.inputs.size() > 1) {
    if (auto t = operand(g, n, 1)) n.attrs.set("axes", t->to_i64_vector());
    n.inputs.resize(1);
  }
}

void canonical_squeeze(const Graph& g, Node& n, const ShapeMap& shapes) {
  axes_to_attr(g, n);
  auto it = shapes.find(n.inputs[0]);
  if (n.attrs.has("axes") || it == shapes.end()) return;
  std::vector<int64_t> axes;  // no axes: every dimension of size 1
  for (size_t i = 0; i < it->second.size(); ++i)
    if (it->second[i].known() && it->second[i].value == 1) axes.push_back(int64_t(i));
  n.attrs.set("axes", axes);
}

void canonical_split(const Graph& g, Node& n, const ShapeMap& shapes) {
  std::vector<int64_t> split = n.attrs.ints("split");
  if (has_input(n, 1)) split = operand(g, n, 1)->to_i64_vector();
  n.inputs.resize(1);
  int64_t axis = n.attrs.i("axis", 0);
  auto it = shapes.find(n.inputs[0]);
  if (it != shapes.end() && axis < 0) axis += int64_t(it->second.size());
  n.attrs.set("axis", axis);
  if (split.empty() && it != shapes.end() && axis >= 0 && axis < int64_t(it->second.size()) && it->second[axis].known()) {
    // Equal parts; from opset 18 (num_outputs) the last part may be smaller.
    int64_t d = it->second[axis].value, parts = int64_t(n.outputs.size()), len = (d + parts - 1) / parts;
    for (int64_t k = 0; k < parts; ++k) split.push_back(std::max<int64_t>(0, std::min(len, d - k * len)));
  }
  if (!split.empty()) n.attrs.set("split", split);
}

void canonical_resize(const Graph& g, Node& n) {
  if (n.op == "Upsample") {  // opset 9: scales as input 1; opset 7: attribute
    if (auto t = operand(g, n, 1)) n.attrs.set("scales", to_floats(*t));
    n.inputs.resize(1);
    return;
  }
  // Resize(X, roi, scales, sizes); opset 10 had Resize(X, scales)
  size_t scales_at = n.inputs.size() == 2 ? 1 : 2;
  if (auto t = operand(g, n, scales_at); t && t->numel() > 0) n.attrs.set("scales", to_floats(*t));
  if (scales_at == 2)
    if (auto t = operand(g, n, 3); t && t->numel() > 0) n.attrs.set("sizes", t->to_i64_vector());
  if (n.attrs.s("coordinate_transformation_mode", "") == "tf_crop_and_resize")
    if (auto t = operand(g, n, 1)) n.attrs.set("roi", to_floats(*t));
  n.inputs.resize(1);
}

// Conv and pooling: explicit kernel_shape, strides, dilations and pads; auto_pad resolved.
void canonical_window(const Graph& g, Node& n, const ShapeMap& shapes) {
  std::vector<int64_t> kernel = n.attrs.ints("kernel_shape");
  if (kernel.empty() && n.op == "Conv" && has_input(n, 1)) {
    auto w = g.constants.find(n.inputs[1]);
    if (w != g.constants.end() && w->second.rank() > 2) kernel.assign(w->second.shape().begin() + 2, w->second.shape().end());
  }
  if (kernel.empty()) return;  // Conv with run-time weights: left to the layer
  const size_t sp = kernel.size();
  auto strides = n.attrs.ints("strides", std::vector<int64_t>(sp, 1));
  auto dilations = n.attrs.ints("dilations", std::vector<int64_t>(sp, 1));
  auto pads = n.attrs.ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (strides.size() != sp || dilations.size() != sp || pads.size() != 2 * sp)
    throw ModelError(g.describe(n) + ": strides, dilations or pads do not match kernel_shape");
  std::string auto_pad = n.attrs.s("auto_pad", "NOTSET");
  if (auto_pad == "VALID") {
    pads.assign(2 * sp, 0);
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    auto it = shapes.find(n.inputs[0]);
    for (size_t i = 0; i < sp; ++i) {
      if (it == shapes.end() || it->second.size() != sp + 2 || !it->second[i + 2].known())
        throw ModelError(g.describe(n) + ": auto_pad " + auto_pad + " needs the input's spatial size at import");
      int64_t in = it->second[i + 2].value, out = (in + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in);
      int64_t begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[i] = begin, pads[i + sp] = total - begin;
    }
  } else if (auto_pad != "NOTSET") {
    throw ModelError(g.describe(n) + ": unknown auto_pad '" + auto_pad + "'");
  }
  n.attrs.set("auto_pad", std::string("NOTSET"));
  n.attrs.set("kernel_shape", kernel);
  n.attrs.set("strides", strides);
  n.attrs.set("pads", pads);
  if (n.op != "AveragePool") n.attrs.set("dilations", dilations);
  if (n.op == "Conv") n.attrs.set("group", n.attrs.i("group", 1));
}

// Before opset 13, Softmax/LogSoftmax/Hardmax flattened the input to 2-D at `axis` and normalised
// over the whole trailing block. Same as the new per-axis form when axis is the last dimension;
// otherwise rewritten as Flatten -> op(axis=1) -> Reshape back.
std::vector<Node> canonical_softmax(const Graph& g, Node n, int opset, const ShapeMap& shapes) {
  auto it = shapes.find(n.inputs[0]);
  int rank = it == shapes.end() ? -1 : int(it->second.size());
  int64_t axis = n.attrs.i("axis", opset < 13 ? 1 : -1);
  if (rank > 0 && axis < 0) axis += rank;
  if (opset >= 13 || (rank > 0 && axis == rank - 1)) {
    n.attrs.set("axis", rank > 0 ? axis : n.attrs.i("axis", -1));
    return {n};
  }
  if (rank < 0) throw ModelError(g.describe(n) + ": opset " + std::to_string(opset) + " " + n.op + " needs the input rank");
  std::vector<int64_t> back;  // the original shape; a run-time dim (the batch) becomes -1, inferred
  for (auto& d : it->second) back.push_back(d.known() ? d.value : -1);
  if (std::count(back.begin(), back.end(), -1) > 1)
    throw ModelError(g.describe(n) + ": opset " + std::to_string(opset) + " " + n.op + " over more than one run-time dimension");
  Node flatten{n.name + "/flatten", "Flatten", {n.inputs[0]}, {n.outputs[0] + "/2d"}, {}};
  flatten.attrs.set("axis", axis);
  Node reshape{n.name + "/reshape", "Reshape", {n.outputs[0] + "/2d_out"}, {n.outputs[0]}, {}};
  reshape.attrs.set("shape", back);
  n.inputs[0] = flatten.outputs[0];
  n.outputs[0] = reshape.inputs[0];
  n.attrs.set("axis", int64_t(1));
  return {flatten, n, reshape};
}

// Inference-mode Dropout passes its input through (the pass after this removes it); the ratio does
// not matter. Training mode (opset 12+: a true training_mode input) is refused, not ignored.
void canonical_dropout(const Graph& g, Node& n) {
  if (has_input(n, 2)) {
    const Tensor& training = required_operand(g, n, 2);
    if (training.numel() != 1 || training.to_i64_vector()[0] != 0)
      throw ModelError(g.describe(n) + ": training-mode Dropout is not supported");
  }
  n.inputs.resize(1);
}

}  // namespace

void canonicalize(Graph& g, int opset, const ShapeMap& shapes) {
  std::vector<Node> out;
  for (Node& n : g.nodes) {
    const std::string& op = n.op;
    if (op == "Clip") canonical_clip(g, n);
    else if (op == "Pad") canonical_pad(g, n, shapes);
    else if (op == "Slice") canonical_slice(g, n, shapes);
    else if (op == "Reshape") {
      if (n.inputs.size() > 1) n.attrs.set("shape", required_operand(g, n, 1).to_i64_vector());
      n.inputs.resize(1);
    } else if (op == "Squeeze") canonical_squeeze(g, n, shapes);
    else if (op == "Unsqueeze" || op.rfind("Reduce", 0) == 0) axes_to_attr(g, n);
    else if (op == "Split") canonical_split(g, n, shapes);
    else if (op == "Upsample" || op == "Resize") canonical_resize(g, n);
    else if (op == "Conv" || op == "MaxPool" || op == "AveragePool" || op == "LpPool") canonical_window(g, n, shapes);
    else if (op == "Flatten") n.attrs.set("axis", n.attrs.i("axis", 1));
    else if (op == "Dropout") canonical_dropout(g, n);
    else if (op == "BatchNormalization" && n.attrs.i("training_mode", 0))
      throw ModelError(g.describe(n) + ": training-mode BatchNormalization is not supported");
    else if (op == "BatchNormalization" && n.attrs.i("spatial", 1) == 0)  // opset 7-8: per-element statistics
      throw ModelError(g.describe(n) + ": BatchNormalization with spatial=0 is not supported");
    if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
      for (auto& m : canonical_softmax(g, n, opset, shapes)) out.push_back(std::move(m));
      continue;
    }
    out.push_back(std::move(n));
  }
  g.nodes = std::move(out);
}

}  // namespace dnn
