// Activations fused into the epilogue of a kernel (conv, GEMM, depthwise, fully-connected): applied
// while the output tile is still in cache instead of in a separate pass over memory.
#pragma once
#include <cstdint>
#include <string>

namespace dnn {
namespace kernels {

enum class ActKind { None, Relu, Clip, LeakyRelu, Sigmoid, HardSwish };

struct Activation {
  ActKind kind = ActKind::None;
  float min = 0.f, max = 0.f;  // Clip bounds
  float alpha = 0.f;           // LeakyRelu slope
};

// From the fusion attributes the importer writes (dnn.activation, dnn.act_min/max/alpha): name is
// "" (none), "Relu", "Clip", "LeakyRelu", "Sigmoid" or "HardSwish". Throws ModelError otherwise.
Activation make_activation(const std::string& name, float min, float max, float alpha);

// y[i] = act(y[i] + bias + (res ? res[i] : 0)) for i in [0, n): the epilogue of one output row.
void finish_row(float* y, int64_t n, float bias, const float* res, const Activation& act);

}  // namespace kernels
}  // namespace dnn
