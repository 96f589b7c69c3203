#include "engine/model.h"

#include "core/error.h"
#include "format/dnns.h"
#include "layers/layer.h"
#include "onnx/onnx_import.h"

namespace dnn {

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Graph load_model(const std::string& path, const LoadSpec& spec) {
  Graph g;
  if (ends_with(path, ".dnns")) {
    g = read_dnns(path, spec);
  } else if (ends_with(path, ".onnx")) {
    g = import_onnx(path);
    if (spec.node_begin != 0 || spec.node_end != LoadSpec::kToEnd || spec.shard) g = slice_graph(g, spec);
  } else {
    throw ModelError(path + ": unknown model type (expected a .onnx or .dnns file)");
  }
  for (auto& n : g.nodes)
    if (!is_supported_op(n.op))
      throw ModelError(path + ": unsupported operator " + n.op + " in node '" + n.name + "'");
  return g;
}

}  // namespace dnn
