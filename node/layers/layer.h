// One Layer subclass per ONNX operator kind, each in its own file, found through a small registry
// (registry.cpp). A layer is built once per node: load() reads attributes and constant inputs and
// prepacks weights; forward() then runs any number of times, for any batch size.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/graph.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace dnn {

struct RunContext {
  ThreadPool* pool;
};

class Layer {
 public:
  virtual ~Layer() = default;
  // consts[i] is the value of input i when it is a constant (weights, shape operands), else null.
  // Constants are given only here: keep what forward() needs (a Tensor copy shares storage), or
  // prepack it and keep only the packed form, so the original can be freed.
  // Throws ModelError naming the node for attributes or constants it cannot handle.
  virtual void load(const Node& node, const std::vector<const Tensor*>& consts) = 0;
  // Output shapes for these input shapes (constants included). Throws ShapeError.
  virtual std::vector<Shape> output_shapes(const std::vector<Shape>& in) const = 0;
  // Computes the outputs. in[i] is null where input i is a constant or an omitted optional input.
  // A layer may return a view of an input (Reshape, Identity) instead of a copy.
  virtual std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) = 0;
  // Multiply-accumulates of one forward() for these input shapes (inspect and the planner).
  virtual int64_t macs(const std::vector<Shape>& in) const { return 0; }
  // The input shapes the model declares, where it does, given once at load after load(): a layer
  // whose method depends on them (Conv: Winograd, channels in lanes) settles it now, while the rest
  // of the model's weights are not all resident yet, instead of at the first forward().
  virtual void prepare(const std::vector<Shape>& in) {}
  // Fusion, offered by the executor: take over `next`, whose first input is this layer's only
  // output, used by nothing else; forward() then returns next's outputs. next's other non-constant
  // inputs (a residual) come after this layer's own in forward()'s inputs. A layer that took one
  // may be offered the one after. Returns false (the default) where there is no fused kernel.
  virtual bool absorb(Layer& next) { return false; }

 protected:
  std::string where_;  // "node 'conv1' (Conv)", set by make_layer() for error messages
  friend std::unique_ptr<Layer> make_layer(const Node&, const std::vector<const Tensor*>&);
};

// Builds and loads the layer for `node`; throws ModelError "unsupported operator X in node Y".
std::unique_ptr<Layer> make_layer(const Node& node, const std::vector<const Tensor*>& consts);
bool is_supported_op(const std::string& op);
std::vector<std::string> supported_ops();

}  // namespace dnn
