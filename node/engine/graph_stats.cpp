#include "engine/graph_stats.h"

#include <map>

#include "layers/layer.h"

namespace dnn {

std::vector<NodeStats> node_stats(const Graph& g, int64_t batch) {
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

  std::vector<NodeStats> stats;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    NodeStats s;
    std::vector<Shape> in;
    std::vector<const Tensor*> consts;
    for (auto& name : n.inputs) {
      auto c = g.constants.find(name);
      consts.push_back(c == g.constants.end() ? nullptr : &c->second);
      in.push_back(name.empty() ? Shape{} : shape_of(name));
      if (c == g.constants.end()) continue;
      s.weight_bytes += static_cast<int64_t>(c->second.bytes());
      if (c->second.dtype() == DType::f32) s.params += c->second.numel();
    }
    try {
      auto layer = make_layer(n, consts);
      s.out_shapes = layer->output_shapes(in);
      s.macs = layer->macs(in);
    } catch (const ShapeError& e) {
      throw ShapeError(g.describe(n) + ": " + e.what());
    }
    for (size_t k = 0; k < n.outputs.size() && k < s.out_shapes.size(); ++k) {
      shapes[n.outputs[k]] = s.out_shapes[k];
      s.output_bytes += numel(s.out_shapes[k]) * static_cast<int64_t>(sizeof(float));
    }
    for (auto& v : live_values_at(g, i + 1)) s.cut_bytes += numel(shape_of(v)) * static_cast<int64_t>(sizeof(float));
    stats.push_back(std::move(s));
  }
  return stats;
}

}  // namespace dnn
