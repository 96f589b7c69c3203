// dnnswarm convert: ONNX (or .dnns) in, .dnns out — the format a device can load a slice of.
#include <cstdio>

#include "cli/common.h"
#include "engine/model.h"
#include "format/dnns.h"

namespace dnn::cli {

int cmd_convert(int argc, char** argv) {
  po::options_description opts("options");
  std::string model, output;
  opts.add_options()
      ("model,m", po::value(&model)->required(), "model to convert (.onnx, or .dnns to rewrite)")
      ("output,o", po::value(&output)->required(), "the .dnns file to write");
  po::variables_map vm;
  if (!parse(argc, argv, "--model in.onnx --output out.dnns", opts, vm)) return 0;

  // load_model imports, folds and fuses, and refuses operators no layer runs: a converted model
  // always loads.
  const Graph g = load_model(model);
  write_dnns(g, output);
  size_t weight_bytes = 0;
  for (auto& kv : g.constants) weight_bytes += kv.second.bytes();
  std::fprintf(stderr, "convert: %s -> %s: %zu nodes, %zu constants, %.1f MB of weights\n", model.c_str(),
               output.c_str(), g.nodes.size(), g.constants.size(), weight_bytes / 1e6);
  return 0;
}

}  // namespace dnn::cli
