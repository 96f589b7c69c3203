// dnnswarm inspect: per layer, what it costs and what cutting the model after it costs — the numbers
// a deployment plan is made from. Shapes and MACs come from each node's own Layer (built, asked,
// freed one at a time, so inspecting needs no more memory than the model's weights).
#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "core/error.h"
#include "engine/model.h"
#include "engine/graph_stats.h"

namespace dnn::cli {

namespace {

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
  const std::vector<NodeStats> rows = node_stats(g, batch);
  int64_t params = 0, weight_bytes = 0, macs = 0;
  for (auto& r : rows) {
    params += r.params;
    weight_bytes += r.weight_bytes;
    macs += r.macs;
  }

  if (vm.count("json")) {
    for (size_t i = 0; i < rows.size(); ++i) {
      const NodeStats& r = rows[i];
      std::printf("{\"index\":%zu,\"name\":%s,\"op\":%s,\"out_shape\":%s,\"params\":%lld,\"weight_bytes\":%lld,"
                  "\"macs\":%lld,\"cut_bytes\":%lld}\n",
                  i, json_string(g.nodes[i].name).c_str(), json_string(g.nodes[i].op).c_str(),
                  json_shape(r.out_shapes.at(0)).c_str(), (long long)r.params, (long long)r.weight_bytes, (long long)r.macs,
                  (long long)r.cut_bytes);
    }
    std::printf("{\"total\":true,\"model\":%s,\"nodes\":%zu,\"params\":%lld,\"weight_bytes\":%lld,\"macs\":%lld}\n",
                json_string(model).c_str(), rows.size(), (long long)params, (long long)weight_bytes, (long long)macs);
    return 0;
  }
  int name_width = 5;
  for (auto& n : g.nodes) name_width = std::max(name_width, static_cast<int>(n.name.size()));
  std::printf("%4s  %-*s %-18s %-18s %12s %14s %15s %12s\n", "#", name_width, "name", "op", "output shape", "params",
              "weight bytes", "MACs", "cut bytes");
  for (size_t i = 0; i < rows.size(); ++i) {
    const NodeStats& r = rows[i];
    std::printf("%4zu  %-*s %-18s %-18s %12lld %14lld %15lld %12lld\n", i, name_width, g.nodes[i].name.c_str(),
                g.nodes[i].op.c_str(), to_string(r.out_shapes.at(0)).c_str(), (long long)r.params, (long long)r.weight_bytes,
                (long long)r.macs, (long long)r.cut_bytes);
  }
  std::printf("%4s  %-*s %-18s %-18s %12lld %14lld %15lld\n", "", name_width, "total", "", "", (long long)params,
              (long long)weight_bytes, (long long)macs);
  return 0;
}

}  // namespace dnn::cli
