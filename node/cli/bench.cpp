// dnnswarm bench: single-device throughput, latency and memory of a model, as one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "cli/common.h"
#include "core/memory_stats.h"
#include "engine/executor.h"
#include "engine/model.h"

namespace dnn::cli {
namespace {

// Timing adds a clock read per layer, so the profiled figures above are a hair slower than plain.
void print_profile(const std::vector<Executor::LayerTime>& layers, size_t runs) {
  double total = 0;
  for (auto& l : layers) total += l.ms;
  for (auto& l : layers) {
    if (l.where.empty()) continue;
    const double ms = l.ms / runs;
    std::printf("{\"layer\":\"%s\",\"ms\":%.4f,\"share\":%.4f,\"gflop_per_s\":%.2f}\n", l.where.c_str(), ms,
                total > 0 ? l.ms / total : 0.0, ms > 0 ? 2e-6 * l.macs / ms : 0.0);
  }
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  po::options_description opts("options");
  std::string model;
  int threads = 1;
  double seconds = 5;
  int64_t batch = 1;
  bool profile = false;
  opts.add_options()
      ("model,m", po::value(&model)->required(), "model file (.onnx or .dnns)")
      ("threads,t", po::value(&threads)->default_value(1), "compute threads")
      ("seconds,s", po::value(&seconds)->default_value(5.0), "how long to measure, in 7 equal repetitions after a warm-up run")
      ("batch,b", po::value(&batch)->default_value(1), "frames per forward pass")
      ("profile", po::bool_switch(&profile), "then one JSON line per layer: ms per run, share, GFLOP/s");
  po::variables_map vm;
  if (!parse(argc, argv, "--model M [--threads N] [--seconds S] [--batch B] [--profile]", opts, vm)) return 0;

  Graph g = load_model(model);
  int64_t weight_bytes = 0;
  for (auto& kv : g.constants) weight_bytes += kv.second.bytes();
  Executor ex(std::move(g), ExecOptions{threads});

  // Random input in [0, 1) with the declared shape; unknown dimensions (the batch) become `batch`.
  std::vector<Tensor> inputs;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(0.f, 1.f);
  for (auto& v : ex.inputs()) {
    Shape s = v.shape;
    for (auto& d : s)
      if (d < 0) d = batch;
    if (!s.empty() && s[0] > 0) s[0] = batch;
    Tensor t(s);
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(rng);
    inputs.push_back(t);
  }

  // Same method as the ONNX Runtime baseline (../shared/tools/bench_ort.js): warm up, then 7
  // repetitions of equal length; images/s is the median repetition, latency the per-run percentiles.
  ex.run(inputs);
  ex.set_profiling(profile);
  std::vector<double> ms, rep_ips;
  for (int rep = 0; rep < 7; ++rep) {
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    int runs = 0;
    while (elapsed < seconds / 7 || runs < 1) {
      auto t0 = std::chrono::steady_clock::now();
      ex.run(inputs);
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      elapsed = std::chrono::duration<double>(t1 - start).count();
      ++runs;
    }
    rep_ips.push_back(batch * runs / elapsed);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(rep_ips.begin(), rep_ips.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * ms.size()))]; };
  std::string name = model.substr(model.find_last_of('/') + 1);
  std::printf(
      "{\"model\":\"%s\",\"threads\":%d,\"batch\":%lld,\"images_per_s\":%.2f,\"ms_p50\":%.3f,\"ms_p90\":%.3f,"
      "\"runs\":%zu,\"weight_mb\":%.1f,\"peak_rss_mb\":%.1f}\n",
      name.c_str(), threads, (long long)batch, rep_ips[3], pct(0.5), pct(0.9), ms.size(),
      weight_bytes / 1048576.0, peak_rss_bytes() / 1048576.0);
  if (profile) print_profile(ex.profile(), ms.size());
  return 0;
}

}  // namespace dnn::cli
