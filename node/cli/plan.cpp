// dnnswarm plan: proposes a balanced deployment plan for N devices and prints it as JSON (or checks
// an existing plan against its model with --check).
#include <filesystem>
#include <iostream>

#include "cli/common.h"
#include "engine/model.h"
#include "swarm/plan.h"

namespace dnn::cli {

int cmd_plan(int argc, char** argv) {
  po::options_description opts("options");
  std::string model, name, check;
  ProposeOptions o;
  opts.add_options()
      ("model,m", po::value(&model), "model file (.onnx or .dnns)")
      ("devices,n", po::value(&o.devices)->default_value(1), "number of devices")
      ("memory-mb", po::value(&o.memory_mb)->default_value(0),
       "memory of one device in MB (0 = unlimited); layers that do not fit are sharded")
      ("stages", po::value(&o.stages)->default_value(0), "pipeline depth (0 = the fewest stages that fit)")
      ("name", po::value(&name), "model name in topics (default: the file name without extension)")
      ("check", po::value(&check), "validate this plan file against its model instead of proposing one");
  po::variables_map vm;
  if (!parse(argc, argv, "--model M --devices N [--memory-mb X] [--stages S] | --check plan.json", opts, vm)) return 0;

  if (!check.empty()) {
    Plan p = read_plan(check);
    const Graph g = load_model_structure(p.model_path);
    resolve_plan(p, g);
    validate_plan(p, g);
    std::cout << plan_to_json(p) << "\n";
    std::cerr << "plan '" << check << "': valid, " << p.stages.size() << " stages, " << p.roles() << " nodes\n";
    return 0;
  }
  if (model.empty()) throw po::required_option("model");
  const Graph g = load_model(model);
  o.model_name = name.empty() ? std::filesystem::path(model).stem().string() : name;
  o.model_path = std::filesystem::absolute(model).lexically_normal().string();
  const Plan p = propose_plan(g, node_costs(g), o);
  validate_plan(p, g);
  std::cout << plan_to_json(p) << "\n";
  return 0;
}

}  // namespace dnn::cli
