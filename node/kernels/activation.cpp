#include "kernels/activation.h"

#include <cmath>

#include "core/error.h"

namespace dnn {
namespace kernels {

Activation make_activation(const std::string& name, float min, float max, float alpha) {
  Activation a;
  a.min = min;
  a.max = max;
  a.alpha = alpha;
  if (name.empty()) a.kind = ActKind::None;
  else if (name == "Relu") a.kind = ActKind::Relu;
  else if (name == "Clip") a.kind = ActKind::Clip;
  else if (name == "LeakyRelu") a.kind = ActKind::LeakyRelu;
  else if (name == "Sigmoid") a.kind = ActKind::Sigmoid;
  else if (name == "HardSwish") a.kind = ActKind::HardSwish;
  else throw ModelError("unsupported fused activation '" + name + "'");
  return a;
}

namespace {
// One loop per activation kind, written so the compiler vectorises it (no branch on kind inside).
template <class F>
inline void row_loop(float* y, int64_t n, float bias, const float* res, F f) {
  if (res)
    for (int64_t i = 0; i < n; ++i) y[i] = f(y[i] + bias + res[i]);
  else
    for (int64_t i = 0; i < n; ++i) y[i] = f(y[i] + bias);
}
}  // namespace

void finish_row(float* y, int64_t n, float bias, const float* res, const Activation& act) {
  switch (act.kind) {
    case ActKind::None:
      if (bias != 0.f || res) row_loop(y, n, bias, res, [](float v) { return v; });
      break;
    case ActKind::Relu:
      row_loop(y, n, bias, res, [](float v) { return v > 0.f ? v : 0.f; });
      break;
    case ActKind::Clip: {
      const float lo = act.min, hi = act.max;
      row_loop(y, n, bias, res, [lo, hi](float v) { return v < lo ? lo : (v > hi ? hi : v); });
      break;
    }
    case ActKind::LeakyRelu: {
      const float a = act.alpha;
      // max(v,0) + a*min(v,0): the same arithmetic as simd::activate.
      row_loop(y, n, bias, res, [a](float v) { return std::fma(a, v < 0.f ? v : 0.f, v > 0.f ? v : 0.f); });
      break;
    }
    case ActKind::Sigmoid:
      row_loop(y, n, bias, res, [](float v) { return 1.f / (1.f + std::exp(-v)); });
      break;
    case ActKind::HardSwish:
      // ONNX: x * max(0, min(1, x/6 + 1/2))
      row_loop(y, n, bias, res, [](float v) {
        float g = std::fma(v, 1.f / 6.f, 0.5f);
        g = g < 0.f ? 0.f : (g > 1.f ? 1.f : g);
        return v * g;
      });
      break;
  }
}

}  // namespace kernels
}  // namespace dnn
