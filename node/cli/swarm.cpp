// dnnswarm swarm: a whole swarm on this machine — a private Mosquitto, one `dnnswarm node` process
// per role of a plan (optionally inside emulated devices), the frames sent through it — ending
// with one JSON line on stdout. With no arguments: the bundled LeNet-5 over the 2,000 held-out MNIST
// digits on deploy/lenet5-swarm.json (a pipeline, a replicated stage and a sharded layer).
// With --broker it runs the nodes against that broker instead of its own; with --serve it sends
// nothing and keeps the nodes serving frames from elsewhere until Ctrl-C.
#include <atomic>
#include <csignal>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "swarm/local_swarm.h"

namespace dnn::cli {

namespace {
std::atomic<bool> g_interrupted{false};
void on_signal(int) { g_interrupted = true; }
}  // namespace

int cmd_swarm(int argc, char** argv) {
  SwarmOptions o;
  BrokerFlags broker;
  po::options_description opts("options");
  opts.add_options()
      ("plan,p", po::value(&o.plan_path), "deployment plan (default: deploy/lenet5-swarm.json of the install)")
      ("input,i", po::value(&o.input_path), "frames to send, .npy [N, ...] (default with the default plan: the MNIST test digits)")
      ("labels,l", po::value(&o.labels_path), "int64 .npy of N labels: count top-1 correct answers")
      ("frames,f", po::value(&o.frames)->default_value(0), "frames to send, cycling through the input (0 = each row once)")
      ("devices-cpu", po::value(&o.device.cpu_quota)->default_value(0),
       "CPU quota of every emulated device in cores, e.g. 0.2 (0 = unconstrained); overrides the plan's cpu_quota")
      ("device-memory-mb", po::value(&o.device.memory_mb)->default_value(0),
       "memory limit of every emulated device (0 = none); overrides the plan's memory_mb")
      ("netns", po::bool_switch(&o.device.netns), "give every device its own network namespace and link")
      ("rate-mbit", po::value(&o.device.rate_mbit)->default_value(0),
       "rate limit of each device's link, both ways (implies --netns; 0 = unlimited)")
      ("broker-config", po::value(&o.broker_config), "Mosquitto config to start from (default: broker-config/mosquitto.conf)")
      ("window,w", po::value(&o.window)->default_value(o.window), "requests in flight")
      ("timeout-ms", po::value(&o.timeout_ms)->default_value(o.timeout_ms), "per request; later answers count as lost")
      ("node-arg", po::value(&o.node_args)->composing(), "extra flag for every node (repeatable), e.g. --node-arg=--queue=8")
      ("details", po::bool_switch(&o.details), "add per-node figures (peak RSS, frames processed) to the JSON line")
      ("keep-logs", po::bool_switch(&o.keep_logs), "keep the broker's and nodes' logs")
      ("log-dir", po::value(&o.log_dir), "keep the logs in this folder (default: /tmp/dnnswarm-<pid>, removed at the end)")
      ("quiet,q", "no progress on stderr")
      ("serve", po::bool_switch(&o.serve),
       "send no frames: keep the nodes serving until Ctrl-C (prints where frames go and results come out)")
      ("credentials-dir", po::value(&o.credentials_dir),
       "with --broker: folder of <node id>.password files from `dnnswarm acl`; each node logs in as its id "
       "(default: every node uses --username and the password)");
  add_broker_options(opts, broker, "");
  po::variables_map vm;
  if (!parse(argc, argv,
             "[--plan P --input x.npy] [--frames N] [--devices-cpu C --device-memory-mb M --netns --rate-mbit R]\n"
             "       [--broker URL [--username U --password-file F --cafile CA | --credentials-dir D]] [--serve]",
             opts, vm))
    return 0;
  o.progress = !vm.count("quiet");
  o.external_broker = !broker.broker.empty();
  if (o.external_broker) {
    o.broker = resolve_broker(broker);
  } else {
    for (const char* flag : {"username", "password-file", "cafile", "cert", "key", "credentials-dir"})
      if (vm.count(flag)) throw Error(std::string("--") + flag + " needs --broker (the local broker takes no login)");
  }
  o.cpu_flag_wins = !vm["devices-cpu"].defaulted();
  o.memory_flag_wins = !vm["device-memory-mb"].defaulted();

  // Ctrl-C and SIGTERM end the run in order: nodes and broker stopped, devices removed.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  SwarmResult r;
  try {
    r = run_local_swarm(o, &g_interrupted);
  } catch (const Error&) {
    if (!g_interrupted) throw;
    std::cerr << "swarm: interrupted before any frame was sent\n";   // already torn down
    return 130;
  }
  std::cout << swarm_result_json(r, o.details) << std::endl;
  if (o.serve) return 0;   // Ctrl-C is how serving ends
  if (g_interrupted) {
    std::cerr << "swarm: interrupted\n";
    return 130;
  }
  return r.lost == 0 ? 0 : 3;
}

}  // namespace dnn::cli
