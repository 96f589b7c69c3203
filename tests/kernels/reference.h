// Straightforward double-precision reference loops and comparison helpers for the kernel and layer
// tests (tests/kernels, tests/layers/conv-test, gemm-test).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/activation.h"
#include "kernels/conv2d.h"

namespace dnn {
namespace testref {

inline std::vector<float> random_floats(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

inline double activate(const kernels::Activation& a, double v) {
  switch (a.kind) {
    case kernels::ActKind::None: return v;
    case kernels::ActKind::Relu: return v > 0 ? v : 0;
    case kernels::ActKind::Clip: return std::min<double>(std::max<double>(v, a.min), a.max);
    case kernels::ActKind::LeakyRelu: return v < 0 ? v * a.alpha : v;
    case kernels::ActKind::Sigmoid: return 1.0 / (1.0 + std::exp(-v));
    case kernels::ActKind::HardSwish: return v * std::min(1.0, std::max(0.0, v / 6.0 + 0.5));
  }
  return v;
}

// NCHW convolution; weight out_ch x in_ch/groups x kh x kw; bias and residual may be null.
inline std::vector<double> conv(const kernels::ConvParams& p, const float* x, int64_t batch, int64_t h, int64_t w,
                                const float* weight, const float* bias, const float* residual,
                                const kernels::Activation& act) {
  const int64_t oh = p.out_h(h), ow = p.out_w(w), cg = p.in_ch / p.groups, mg = p.out_ch / p.groups;
  std::vector<double> y(batch * p.out_ch * oh * ow);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t m = 0; m < p.out_ch; ++m) {
      const int64_t g = m / mg;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = bias ? bias[m] : 0.0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ky = 0; ky < p.kh; ++ky)
              for (int64_t kx = 0; kx < p.kw; ++kx) {
                const int64_t iy = oy * p.stride_h - p.pad_t + ky * p.dil_h;
                const int64_t ix = ox * p.stride_w - p.pad_l + kx * p.dil_w;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += double(x[((n * p.in_ch + g * cg + c) * h + iy) * w + ix]) *
                     weight[((m * cg + c) * p.kh + ky) * p.kw + kx];
              }
          const int64_t i = ((n * p.out_ch + m) * oh + oy) * ow + ox;
          if (residual) s += residual[i];
          y[i] = activate(act, s);
        }
    }
  return y;
}

// The project's numerics bar: |y - ref| <= 1e-4 * max|ref| + 1e-5.
inline void expect_close(const float* y, const std::vector<double>& ref, const std::string& what) {
  double mx = 0;
  for (double r : ref) mx = std::max(mx, std::abs(r));
  const double tol = 1e-4 * mx + 1e-5;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    if (!(std::abs(y[i] - ref[i]) <= tol)) {
      if (bad++ < 3) ADD_FAILURE() << what << ": element " << i << " = " << y[i] << ", reference " << ref[i];
    }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.size() << " elements off (tol " << tol << ")";
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace testref
}  // namespace dnn
