#include "kernels/depthwise.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

constexpr int64_t kW = simd::kWidth;

// One output row: acc[x] = sum_t weight[t] * rows[t][x] for x in [0, n) (n rounded up to vectors;
// rows have slack for that). TAPS > 0 fixes the tap count at compile time so the weight vectors
// stay in registers; TAPS == 0 handles any kernel size.
template <int TAPS>
void row_kernel(const float* const* rows, const float* weight, int taps, int64_t n, float* acc) {
  using namespace simd;
  const int T = TAPS > 0 ? TAPS : taps;
  if (TAPS > 0) {
    Vec wv[TAPS > 0 ? TAPS : 1];
    for (int t = 0; t < T; ++t) wv[t] = set1(weight[t]);
    for (int64_t x = 0; x < n; x += kW) {
      Vec a = zero();
#pragma GCC unroll 25
      for (int t = 0; t < TAPS; ++t) a = fma(wv[t], loadu(rows[t] + x), a);
      storeu(acc + x, a);
    }
  } else {
    for (int64_t x = 0; x < n; x += kW) {
      Vec a = zero();
      for (int t = 0; t < T; ++t) a = fma(set1(weight[t]), loadu(rows[t] + x), a);
      storeu(acc + x, a);
    }
  }
}

}  // namespace

void depthwise_conv(const ConvParams& p, const float* weight, const float* bias, const Activation& act,
                    const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
                    ThreadPool& pool) {
  const int64_t C = p.out_ch, oh = p.out_h(h), ow = p.out_w(w), s = p.stride_w;
  const int taps = static_cast<int>(p.kh * p.kw);
  const int64_t ph = h + p.pad_t + p.pad_b, pw = w + p.pad_l + p.pad_r;
  // Phase-plane row length: enough for the widest tap offset plus a whole vector of slack.
  const int64_t qw = (pw + s - 1) / s + kW;
  const int64_t ow_pad = (ow + kW - 1) / kW * kW;
  const int64_t plane_floats = s * ph * qw + kW;

  pool.parallel_for(batch * C, [&](int64_t b, int64_t e) {
    auto planes = alloc_floats(plane_floats);
    auto acc = alloc_floats(ow_pad);
    std::vector<const float*> rows(taps);
    for (int64_t u = b; u < e; ++u) {
      const int64_t c = u % C;
      const float* x = in + u * h * w;
      float* y = out + u * oh * ow;
      const float* res = residual ? residual + u * oh * ow : nullptr;
      const float* wt = weight + c * taps;
      // Zero-padded copy of the plane, split into column phases.
      float* pl = planes.get();
      std::fill(pl, pl + plane_floats, 0.f);
      for (int64_t iy = 0; iy < h; ++iy) {
        const int64_t py = iy + p.pad_t;
        for (int64_t ix = 0; ix < w; ++ix) {
          const int64_t px = ix + p.pad_l;
          pl[((px % s) * ph + py) * qw + px / s] = x[iy * w + ix];
        }
      }
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ky = 0, t = 0; ky < p.kh; ++ky)
          for (int64_t kx = 0; kx < p.kw; ++kx, ++t) {
            const int64_t col = kx * p.dil_w;
            rows[t] = pl + ((col % s) * ph + oy * p.stride_h + ky * p.dil_h) * qw + col / s;
          }
        float* a = acc.get();
        if (taps == 9) row_kernel<9>(rows.data(), wt, taps, ow, a);
        else if (taps == 25) row_kernel<25>(rows.data(), wt, taps, ow, a);
        else row_kernel<0>(rows.data(), wt, taps, ow, a);
        std::memcpy(y + oy * ow, a, ow * sizeof(float));
        finish_row(y + oy * ow, ow, bias[c], res ? res + oy * ow : nullptr, act);
      }
    }
  });
}

}  // namespace kernels
}  // namespace dnn
