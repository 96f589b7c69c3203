// dnnswarm: one executable, one subcommand per job. Each subcommand lives in its own file in this
// folder and parses its own options (Boost.Program_options), so `dnnswarm <cmd> --help` works.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/common.h"

namespace dnn::cli {
int cmd_run(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_plan(int argc, char** argv);
int cmd_node(int argc, char** argv);
int cmd_infer(int argc, char** argv);
int cmd_swarm(int argc, char** argv);
int cmd_acl(int argc, char** argv);
int cmd_homeassistant(int argc, char** argv);
}  // namespace dnn::cli

namespace {

struct Subcommand {
  const char* name;
  int (*fn)(int, char**);
  const char* summary;
};

const Subcommand kSubcommands[] = {
    {"run", dnn::cli::cmd_run, "run a model on a .npy input on this machine"},
    {"bench", dnn::cli::cmd_bench, "measure single-device speed and memory (one JSON line)"},
    {"convert", dnn::cli::cmd_convert, "write a model as .dnns, the format devices load slices of"},
    {"inspect", dnn::cli::cmd_inspect, "per layer: shape, params, weight bytes, MACs, bytes a cut sends"},
    {"plan", dnn::cli::cmd_plan, "propose a deployment plan for N devices (JSON)"},
    {"node", dnn::cli::cmd_node, "run one device of a swarm: its slice of the model, over MQTT"},
    {"infer", dnn::cli::cmd_infer, "send frames to a swarm, collect results, print latency and throughput"},
    {"swarm", dnn::cli::cmd_swarm, "local broker + emulated devices running a plan end to end (the demo)"},
    {"acl", dnn::cli::cmd_acl, "broker logins and least-privilege ACL for a plan's nodes and clients"},
    {"homeassistant", dnn::cli::cmd_homeassistant, "remove a decommissioned node's or sensor's Home Assistant entities"},
};

void usage(std::ostream& o) {
  o << "usage: dnnswarm <command> [options]   (dnnswarm <command> --help for its options; dnnswarm --version)\n\ncommands:\n";
  for (auto& s : kSubcommands) o << "  " << s.name << std::string(15 - std::min<size_t>(14, std::strlen(s.name)), ' ') << s.summary << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "dnnswarm " << DNN_VERSION << "\n";
    return 0;
  }
  for (auto& s : kSubcommands)
    if (argv[1] == std::string(s.name)) return dnn::cli::guarded(s.name, s.fn, argc - 1, argv + 1);
  std::cerr << "dnnswarm: unknown command '" << argv[1] << "'\n\n";
  usage(std::cerr);
  return 2;
}
