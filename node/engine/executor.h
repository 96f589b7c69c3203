// Runs a contiguous range of a graph's nodes: the whole model on one device, or one pipeline stage.
// Activations are freed after their last use, so peak memory is the weights plus the live tensors.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/thread_pool.h"
#include "layers/layer.h"

namespace dnn {

struct ExecOptions {
  int threads = 1;
  // Freed activation buffers kept for the next frame (set_buffer_cache_limit). Measured: 32 MB
  // covers MobileNetV2 and ResNet18, VGG16 needs 64 MB to stop faulting (it spent 18 % of its time
  // in page faults at 32). A device short of memory lowers it.
  size_t buffer_cache_bytes = size_t(64) << 20;
  // Run consecutive layers that have a fused kernel as one step (Layer::absorb); results are
  // identical either way.
  bool fuse = true;
};

class Executor {
 public:
  // Builds the layers of nodes [begin, end). Constants are handed to the layers and each is dropped
  // from `g` right after its last layer is built, so a prepacked layer leaves only the packed form in
  // memory. Pass the graph with std::move to get that saving (a copy shares the tensors' storage).
  Executor(Graph g, size_t begin, size_t end, ExecOptions opt = {});
  explicit Executor(Graph g, ExecOptions opt = {});

  const std::vector<ValueInfo>& inputs() const { return inputs_; }    // what run() takes, in order
  const std::vector<std::string>& outputs() const { return outputs_; }
  // Checks shapes (ShapeError naming the input) and runs; returns outputs() in order.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  // Per-layer wall time summed over every run() since the last reset (for `bench --profile`); a
  // fused run is one entry, named after all its layers, and its absorbed steps have empty names.
  struct LayerTime {
    std::string where;
    double ms = 0;
    int64_t macs = 0;  // of the last run
  };
  void set_profiling(bool on);
  const std::vector<LayerTime>& profile() const { return profile_; }

 private:
  struct Step {
    std::unique_ptr<Layer> layer;
    std::vector<int> in;    // slot per input; -1 for a constant or an omitted optional input
    std::vector<int> out;
    std::vector<int> free_after;  // slots whose last use is this step
    std::string where;
    bool absorbed = false;  // run by the step before it (fusion)
    // Size of the last run (size_for): multiply-accumulates, and work = max(macs, input values).
    bool sized = false;
    Shape sized_for;
    int64_t macs = 0, work = 0;
  };
  std::vector<ValueInfo> inputs_;
  std::vector<std::string> outputs_;
  void fuse_steps(const std::set<int>& keep, const std::map<int, size_t>& last_use);
  static void size_for(Step& st, const std::vector<const Tensor*>& in);

  std::vector<Step> steps_;
  std::vector<Tensor> slots_;  // activations by slot (constants belong to the layers)
  std::vector<int> input_slots_, output_slots_;
  std::unique_ptr<ThreadPool> pool_;
  ThreadPool serial_pool_{1};  // no workers: for layers too small to split
  // Below this many multiply-accumulates (or input values) a layer is not split over threads.
  // Measured: LeNet-5 ran slower on 2 threads than on 1, every layer paying a worker's wake-up.
  static constexpr int64_t kMinParallelWork = 1 << 18;
  bool profiling_ = false;
  std::vector<LayerTime> profile_;  // one per step while profiling
};

}  // namespace dnn
