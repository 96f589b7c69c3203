// dnnswarm inspect: per layer, what it costs and what cutting the model after it costs — the numbers
// a deployment plan is made from. Shapes and MACs come from each node's own Layer (built, asked,
// freed one at a time, so inspecting needs no more memory than the model's weights).
#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "core/error.h"
#include "engine/model.h"
#include "layers/layer.h"

namespace dnn::cli {

namespace {

struct LayerRow {
  size_t index;
  const Node* node;
  Shape out_shape;
  int64_t params = 0;        // float32 constant elements (weights, biases)
  int64_t weight_bytes = 0;  // bytes of all its constant inputs
  int64_t macs = 0;
  int64_t cut_bytes = 0;     // float32 activations crossing a cut right after this node
};

// Shapes are propagated from the graph inputs with every run-time dimension set to `batch`.
std::vector<LayerRow> layer_rows(const Graph& g, int64_t batch) {
  std::map<std::string, Shape> shapes;
  for (auto& v : g.inputs) {
    Shape s = v.shape;
    for (auto& d : s)
      if (d < 0) d = batch;
    shapes[v.name] = s;
  }
  for (auto& kv : g.constants) shapes[kv.first] = kv.second.shape();
  auto shape_of = [&](const std::string& value) {
    auto it = shapes.find(value);
    if (it == shapes.end()) throw ModelError("value '" + value + "' has no known shape");
    return it->second;
  };

  std::vector<LayerRow> rows;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    LayerRow row{i, &n, {}};
    std::vector<Shape> in;
    std::vector<const Tensor*> consts;
    for (auto& name : n.inputs) {
      auto c = g.constants.find(name);
      consts.push_back(c == g.constants.end() ? nullptr : &c->second);
      in.push_back(name.empty() ? Shape{} : shape_of(name));
      if (c == g.constants.end()) continue;
      row.weight_bytes += static_cast<int64_t>(c->second.bytes());
      if (c->second.dtype() == DType::f32) row.params += c->second.numel();
    }
    std::vector<Shape> out;
    try {
      auto layer = make_layer(n, consts);
      out = layer->output_shapes(in);
      row.macs = layer->macs(in);
    } catch (const ShapeError& e) {
      throw ShapeError(g.describe(n) + ": " + e.what());
    }
    for (size_t k = 0; k < n.outputs.size() && k < out.size(); ++k) shapes[n.outputs[k]] = out[k];
    if (!out.empty()) row.out_shape = out[0];
    for (auto& v : live_values_at(g, i + 1)) row.cut_bytes += numel(shape_of(v)) * 4;
    rows.push_back(row);
  }
  return rows;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string json_shape(const Shape& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  po::options_description opts("options");
  std::string model;
  int64_t batch = 1;
  opts.add_options()
      ("model,m", po::value(&model)->required(), "model file (.onnx or .dnns)")
      ("batch,b", po::value(&batch)->default_value(1), "batch size for shapes, MACs and cut bytes")
      ("json", "one JSON object per layer, then one with the totals");
  po::variables_map vm;
  if (!parse(argc, argv, "--model M [--json] [--batch N]", opts, vm)) return 0;
  if (batch < 1) throw po::error("--batch must be at least 1");

  const Graph g = load_model(model);
  const std::vector<LayerRow> rows = layer_rows(g, batch);
  int64_t params = 0, weight_bytes = 0, macs = 0;
  for (auto& r : rows) {
    params += r.params;
    weight_bytes += r.weight_bytes;
    macs += r.macs;
  }

  if (vm.count("json")) {
    for (auto& r : rows)
      std::printf("{\"index\":%zu,\"name\":%s,\"op\":%s,\"out_shape\":%s,\"params\":%lld,\"weight_bytes\":%lld,"
                  "\"macs\":%lld,\"cut_bytes\":%lld}\n",
                  r.index, json_string(r.node->name).c_str(), json_string(r.node->op).c_str(),
                  json_shape(r.out_shape).c_str(), (long long)r.params, (long long)r.weight_bytes, (long long)r.macs,
                  (long long)r.cut_bytes);
    std::printf("{\"total\":true,\"model\":%s,\"nodes\":%zu,\"params\":%lld,\"weight_bytes\":%lld,\"macs\":%lld}\n",
                json_string(model).c_str(), rows.size(), (long long)params, (long long)weight_bytes, (long long)macs);
    return 0;
  }
  int name_width = 5;
  for (auto& r : rows) name_width = std::max(name_width, static_cast<int>(r.node->name.size()));
  std::printf("%4s  %-*s %-18s %-18s %12s %14s %15s %12s\n", "#", name_width, "name", "op", "output shape", "params",
              "weight bytes", "MACs", "cut bytes");
  for (auto& r : rows)
    std::printf("%4zu  %-*s %-18s %-18s %12lld %14lld %15lld %12lld\n", r.index, name_width, r.node->name.c_str(),
                r.node->op.c_str(), to_string(r.out_shape).c_str(), (long long)r.params, (long long)r.weight_bytes,
                (long long)r.macs, (long long)r.cut_bytes);
  std::printf("%4s  %-*s %-18s %-18s %12lld %14lld %15lld\n", "", name_width, "total", "", "", (long long)params,
              (long long)weight_bytes, (long long)macs);
  return 0;
}

}  // namespace dnn::cli
