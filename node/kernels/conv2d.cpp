#include "kernels/conv2d.h"

#include <algorithm>
#include <climits>
#include <cstring>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "core/tensor.h"
#include "kernels/channel_lane_conv.h"
#include "kernels/depthwise.h"
#include "kernels/simd.h"
#include "kernels/winograd.h"

namespace dnn {
namespace kernels {

namespace {
using simd::copy_floats;
using simd::zero_floats;

bool is_pointwise(const ConvParams& p) {
  return p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 && p.pad_l == 0 &&
         p.pad_b == 0 && p.pad_r == 0;
}

// dst[t] = src[2t] for t < n, without reading past src[2n - 1].
inline void copy_even_floats(const float* src, float* dst, int64_t n) {
  constexpr int W = simd::kWidth;
  for (int64_t i = 0; i < n; i += W, src += 2 * W) {
    const int m = static_cast<int>(std::min<int64_t>(W, n - i));
    const int first = std::min(W, 2 * m - 1), second = std::max(0, 2 * m - 1 - W);
    simd::Vec even, odd;
    simd::deinterleave2(simd::loadu_n(src, first), simd::loadu_n(src + W, second), even, odd);
    simd::storeu_n(dst + i, even, m);
  }
}
}  // namespace

ColumnPhases::ColumnPhases(const ConvParams& p, int64_t h_, int64_t w_)
    : s(p.stride_w),
      ph(h_ + p.pad_t + p.pad_b),
      qw(row_floats(p, w_)),
      h(h_),
      w(w_),
      pad_t(p.pad_t),
      pad_l(p.pad_l) {
  constexpr int64_t W = simd::kWidth;
  if (s != 2) return;
  for (int64_t j = 0; j < 2 * ((qw - kSlack + W - 1) / W); ++j) {
    const int64_t col = j * W - pad_l;  // the input column lane 0 reads
    const int64_t lo = std::clamp<int64_t>(-col, 0, W), hi = std::clamp<int64_t>(w - col, lo, W);
    lanes_.push_back(simd::lane_range_bits(static_cast<int>(lo), static_cast<int>(hi)));
  }
}

void ColumnPhases::split(const float* plane, float* dst) const {
  constexpr int64_t W = simd::kWidth;
  for (int64_t q = 0; q < s; ++q) {
    zero_floats(dst + q * ph * qw, pad_t * qw);
    zero_floats(dst + (q * ph + pad_t + h) * qw, (ph - pad_t - h) * qw);
  }
  for (int64_t iy = 0; iy < h; ++iy) {
    const float* src = plane + iy * w;
    const int64_t py = iy + pad_t;
    if (s == 2) {
      float* even = dst + py * qw;
      float* odd = dst + (ph + py) * qw;
      // Padded columns [2iW, 2(i+1)W): two masked loads (zeros outside the image), deinterleaved.
      for (int64_t i = 0; i * W < qw - kSlack; ++i) {
        const float* at = src + 2 * i * W - pad_l;
        simd::Vec e, o;
        simd::deinterleave2(simd::loadu_masked(at, simd::lane_bits(lanes_[2 * i])),
                            simd::loadu_masked(at + W, simd::lane_bits(lanes_[2 * i + 1])), e, o);
        const int n = static_cast<int>(std::min(W, qw - i * W));
        simd::storeu_n(even + i * W, e, n);
        simd::storeu_n(odd + i * W, o, n);
      }
      continue;
    }
    for (int64_t q = 0; q < s; ++q) {
      float* d = dst + (q * ph + py) * qw;
      for (int64_t i = 0, col = q - pad_l; i < qw - kSlack; ++i, col += s) d[i] = col >= 0 && col < w ? src[col] : 0.f;
    }
  }
}

Im2colPacker::Im2colPacker(const float* in, int64_t h, int64_t w, const ConvParams& p, const float* phases,
                           const int32_t* taps)
    : in_(in), h_(h), w_(w), oh_(p.out_h(h)), ow_(p.out_w(w)), p_(p), phases_(phases), taps_(taps),
      row_step_(p.stride_h * ColumnPhases::row_floats(p, w)) {}

const float* Im2colPacker::in_place_rows(int64_t k0, int64_t n, const int32_t*& rows) const {
  const int64_t oy = n / ow_, ox = n % ow_;
  if (!phases_ || ox + kNR > ow_) return nullptr;  // the strip crosses a row end
  rows = taps_ + k0;
  return phases_ + oy * row_step_ + ox;
}

void Im2colPacker::pack(int64_t k0, int64_t kc, int64_t n, int64_t cols, float* d, int64_t ld) const {
  const ConvParams& p = p_;
  const int64_t taps = p.kh * p.kw;
  // The strip's columns are output pixels; split them into runs that stay on one output row, so each
  // run reads one input row at a fixed stride.
  struct Run {
    int64_t col, len, oy, ox;
  };
  Run runs[kNR];
  int nruns = 0;
  for (int64_t j = 0, pix = n; j < cols;) {
    const int64_t oy = pix / ow_, ox = pix % ow_, len = std::min(cols - j, ow_ - ox);
    runs[nruns++] = {j, len, oy, ox};
    j += len;
    pix += len;
  }
  if (phases_) {  // copies from the phases: row k of the strip is taps_[k] + the pixel's place
    for (int64_t k = k0; k < k0 + kc; ++k, d += ld) {
      for (int r = 0; r < nruns; ++r)
        copy_floats(phases_ + taps_[k] + runs[r].oy * row_step_ + runs[r].ox, d + runs[r].col, runs[r].len);
      zero_floats(d + cols, ld - cols);
    }
    return;
  }
  int64_t ci = k0 / taps, ky = k0 % taps / p.kw, kx = k0 % p.kw;
  for (int64_t k = 0; k < kc; ++k, d += ld) {
    const float* plane = in_ + ci * h_ * w_;
    for (int r = 0; r < nruns; ++r) {
      const Run& run = runs[r];
      float* o = d + run.col;
      const int64_t iy = run.oy * p.stride_h - p.pad_t + ky * p.dil_h;
      if (iy < 0 || iy >= h_) {
        zero_floats(o, run.len);
        continue;
      }
      const float* src = plane + iy * w_;
      const int64_t ix0 = run.ox * p.stride_w - p.pad_l + kx * p.dil_w, sw = p.stride_w;
      // Positions t with 0 <= ix0 + t*sw < w read the input, the rest are padding.
      int64_t lo, hi;
      if (sw == 1) {  // (no divisions in the common cases: this loop is most of a small conv's time)
        lo = std::clamp<int64_t>(-ix0, 0, run.len);
        hi = std::clamp<int64_t>(w_ - ix0, lo, run.len);
      } else if (sw == 2) {
        lo = std::clamp<int64_t>(ix0 >= 0 ? 0 : (1 - ix0) >> 1, 0, run.len);
        hi = std::clamp<int64_t>(w_ > ix0 ? (w_ - ix0 + 1) >> 1 : 0, lo, run.len);
      } else {
        lo = std::clamp<int64_t>(ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw, 0, run.len);
        hi = std::clamp<int64_t>(w_ > ix0 ? (w_ - ix0 + sw - 1) / sw : 0, lo, run.len);
      }
      zero_floats(o, lo);
      if (sw == 1)
        copy_floats(src + ix0 + lo, o + lo, hi - lo);
      else if (sw == 2)
        copy_even_floats(src + ix0 + 2 * lo, o + lo, hi - lo);
      else
        for (int64_t t = lo; t < hi; ++t) o[t] = src[ix0 + t * sw];
      zero_floats(o + hi, run.len - hi);
    }
    zero_floats(d + cols, ld - cols);
    if (++kx == p.kw) {
      kx = 0;
      if (++ky == p.kh) {
        ky = 0;
        ++ci;
      }
    }
  }
}

Conv2d::Conv2d(const ConvParams& p, const float* weight, const float* bias, const Activation& act)
    : p_(p), act_(act), bias_(p.out_ch, 0.f) {
  if (bias) std::copy(bias, bias + p.out_ch, bias_.begin());
  const int64_t G = p.groups, Mg = p.out_ch / G, K = p.in_ch / G * p.kh * p.kw;
  if (G == p.in_ch) {  // one input channel per group
    method_ = Method::Depthwise;
    depthwise_.assign(weight, weight + p.out_ch * p.kh * p.kw);
    return;
  }
  winograd_candidate_ =
      Winograd::applies(p) && p.in_ch >= kWinogradMinChannels && p.in_ch * p.out_ch <= kWinogradMaxPairs;
  for (int64_t g = 0; g < G; ++g) packed_.emplace_back(weight + g * Mg * K, Mg, K, K, 1);
}

Conv2d::~Conv2d() = default;

void Conv2d::set_padding(int64_t top, int64_t left, int64_t bottom, int64_t right) {
  p_.pad_t = top;
  p_.pad_l = left;
  p_.pad_b = bottom;
  p_.pad_r = right;
}

void Conv2d::choose_method(int64_t h, int64_t w) const {
  if (method_ != Method::Gemm || pinned_gemm_) return;  // Depthwise is fixed at construction
  const int64_t pixels = p_.out_h(h) * p_.out_w(w);
  if (winograd_candidate_ && pixels >= kWinogradMinPixels) {
    // Rebuild the weights from the packed form (the original was not kept).
    std::vector<float> weight(p_.out_ch * p_.in_ch * 9);
    packed_[0].unpack(weight.data());
    winograd_ = std::make_unique<Winograd>(p_, weight.data(), pixels >= kWinogradPerCallPixels);
    method_ = Method::Winograd;
  } else if (ChannelLaneConv::pays(p_, pixels, act_)) {
    lanes_ = std::make_unique<ChannelLaneConv>(packed_[0]);
    method_ = Method::ChannelLanes;
  } else {
    return;
  }
  packed_.clear();
#ifdef __GLIBC__
  malloc_trim(0);  // hand the freed packed and temporary weights back to the OS (peak RSS)
#endif
}

void Conv2d::prepare(int64_t h, int64_t w) const {
  std::call_once(chosen_, [&] { choose_method(h, w); });
}

void Conv2d::forward(const float* in, int64_t batch, int64_t h, int64_t w, const float* residual, float* out,
                     ThreadPool& pool) const {
  prepare(h, w);
  if (method_ == Method::Depthwise)
    depthwise_conv(p_, depthwise_.data(), bias_.data(), act_, in, batch, h, w, residual, out, pool);
  else if (method_ == Method::Winograd)
    winograd_->forward(p_, in, batch, h, w, bias_.data(), residual, act_, out, pool);
  else if (method_ == Method::ChannelLanes)
    lanes_->forward(p_, in, batch, h, w, bias_.data(), residual, act_, out, pool);
  else
    forward_gemm(in, batch, h, w, residual, out, pool);
}

void Conv2d::forward_gemm(const float* in, int64_t batch, int64_t h, int64_t w, const float* residual,
                          float* out, ThreadPool& pool) const {
  const int64_t G = p_.groups, Cg = p_.in_ch / G, Mg = p_.out_ch / G;
  const int64_t N = p_.out_h(h) * p_.out_w(w);
  // A 1x1, stride-1, unpadded convolution multiplies by the input itself: no gather, and full strips
  // are read in place (measured faster than packing for every MobileNetV2 / ResNet shape).
  const bool pointwise = is_pointwise(p_);
  // Image `img`, group `g`: where its input starts, its output starts, and its epilogue.
  auto input = [&](int64_t img, int64_t g) { return in + (img * p_.in_ch + g * Cg) * h * w; };
  auto output_offset = [&](int64_t img, int64_t g) { return (img * p_.out_ch + g * Mg) * N; };
  auto epilogue = [&](int64_t img, int64_t g) {
    Epilogue ep;
    ep.bias = bias_.data() + g * Mg;
    ep.residual = residual ? residual + output_offset(img, g) : nullptr;
    ep.act = act_;
    return ep;
  };
  // A strided window (a 3x3/2 stem, where it is not on channels in lanes: builds without 16-lane
  // vectors, grouped convolutions): the input is split into column phases once, so that strips
  // on one output row read it in place through a table of tap offsets, instead of gathering
  // every strip at a stride. (Not for 1x1/2: it reads a quarter of the input.)
  const bool phased = !pointwise && p_.stride_w > 1 && p_.kh * p_.kw > 1;
  const ColumnPhases geometry(p_, h, w);
  Tensor phases;
  std::vector<int32_t> taps;
  if (phased && int64_t(p_.in_ch) * geometry.floats() < INT32_MAX) {
    phases = Tensor::uninitialized({batch * p_.in_ch * geometry.floats()});
    pool.parallel_for(batch * p_.in_ch, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) geometry.split(in + c * h * w, phases.f32() + c * geometry.floats());
    });
    for (int64_t ci = 0; ci < Cg; ++ci)
      for (int64_t ky = 0; ky < p_.kh; ++ky)
        for (int64_t kx = 0; kx < p_.kw; ++kx)
          taps.push_back(static_cast<int32_t>(ci * geometry.floats() + geometry.tap(p_, 0, ky, kx)));
  }
  auto im2col = [&](int64_t img, int64_t g) {
    if (taps.empty()) return Im2colPacker(input(img, g), h, w, p_);
    return Im2colPacker(input(img, g), h, w, p_, phases.f32() + (img * p_.in_ch + g * Cg) * geometry.floats(),
                        taps.data());
  };
  const GemmTiling tiling(Mg, N, pool.size());
  if (tiling.m_chunks > 1) {  // too few column tiles for the threads: gemm() packs B once for all
    for (int64_t img = 0; img < batch; ++img)
      for (int64_t g = 0; g < G; ++g) {
        float* y = out + output_offset(img, g);
        if (pointwise)
          gemm(packed_[g], MatrixPacker(input(img, g), N, 1, true), N, y, N, epilogue(img, g), pool);
        else
          gemm(packed_[g], im2col(img, g), N, y, N, epilogue(img, g), pool);
      }
    return;
  }
  // Otherwise every unit packs its own strips of B, and images and groups are units too.
  const int64_t per_group = tiling.units();
  pool.parallel_for(batch * G * per_group, [&](int64_t b, int64_t e) {
    float* ws = thread_scratch(0, kGemmWorkspace);
    for (int64_t u = b; u < e; ++u) {
      const int64_t img = u / (G * per_group), g = u / per_group % G;
      int64_t m0, m1, n0, n1;
      tiling.unit(u % per_group, m0, m1, n0, n1);
      float* y = out + output_offset(img, g);
      if (pointwise)
        gemm_block(packed_[g], MatrixPacker(input(img, g), N, 1, true), m0, m1, n0, n1, y, N, epilogue(img, g), ws);
      else
        gemm_block(packed_[g], im2col(img, g), m0, m1, n0, n1, y, N, epilogue(img, g), ws);
    }
  });
}

namespace {
// Floats of expanded activation per band: about half of a 2 MB L2 cache. Smaller expanded images
// stay in cache anyway and run unfused.
constexpr int64_t kBandFloats = 256 * 1024;
}  // namespace

bool Conv2d::can_feed_depthwise(const Conv2d& dw) const {
  const ConvParams& d = dw.p_;
  // Every band must hold at least one real input row: padding no taller than the kernel's reach.
  return (method_ == Method::Gemm || method_ == Method::ChannelLanes) && p_.groups == 1 && is_pointwise(p_) &&
         dw.method_ == Method::Depthwise &&
         d.in_ch == p_.out_ch && d.out_ch == d.in_ch && d.pad_t <= (d.kh - 1) * d.dil_h &&
         d.pad_b <= (d.kh - 1) * d.dil_h;
}

bool Conv2d::can_feed_projection(const Conv2d& project) const {
  return method_ == Method::Depthwise && project.method_ == Method::Gemm && project.p_.groups == 1 &&
         is_pointwise(project.p_) && project.p_.in_ch == p_.out_ch;
}

void Conv2d::forward_into_depthwise(const Conv2d& dw, const float* in, int64_t batch, int64_t h, int64_t w,
                                    float* out, ThreadPool& pool, const Conv2d* project,
                                    const float* residual) const {
  const ConvParams& d = dw.p_;
  const int64_t C = p_.out_ch, oh = d.out_h(h), ow = d.out_w(w), reach = (d.kh - 1) * d.dil_h;
  prepare(h, w);
  if (project) project->prepare(oh, ow);
  const int64_t P = project ? project->p_.out_ch : C;  // channels of `out`
  // Where the depthwise output of image img goes: `out`, or before a projection that does not run
  // band by band, a whole-image buffer.
  const bool banded = C * h * w > kBandFloats && method_ == Method::Gemm;
  const bool project_bands = banded && project && project->method_ == Method::Gemm;
  Tensor mid = project && !project_bands ? Tensor::uninitialized({batch * C * oh * ow}) : Tensor();
  float* dw_out = project && !project_bands ? mid.f32() : out;
  auto project_whole = [&] {
    if (project && !project_bands) project->forward(dw_out, batch, oh, ow, residual, out, pool);
  };
  // Both channels in lanes: the expansion hands its tiles over as they are, with no transposes
  // out of the lanes and back.
  if (method_ == Method::ChannelLanes && depthwise_takes_blocked(d, w, dw.act_)) {
    Tensor expanded = Tensor::uninitialized({C * h * w});
    for (int64_t img = 0; img < batch; ++img) {
      lanes_->forward(p_, in + img * p_.in_ch * h * w, 1, h, w, bias_.data(), nullptr, act_, expanded.f32(), pool, true);
      depthwise_conv(d, dw.depthwise_.data(), dw.bias_.data(), dw.act_, expanded.f32(), 1, h, w, nullptr,
                     dw_out + img * C * oh * ow, pool, 0, true);
    }
    project_whole();
    return;
  }
  // The expanded image fits in cache whole, or the expansion left the banded GEMM: one layer after
  // the other.
  if (!banded) {
    float* expanded = thread_scratch(3, C * h * w);
    for (int64_t img = 0; img < batch; ++img) {
      forward(in + img * p_.in_ch * h * w, 1, h, w, nullptr, expanded, pool);
      dw.forward(expanded, 1, h, w, nullptr, dw_out + img * C * oh * ow, pool);
    }
    project_whole();
    return;
  }
  // Output rows per band, so that the band's expanded input rows stay near kBandFloats, and at least
  // as many bands as threads: each thread runs whole bands on its own, with no barrier inside.
  int64_t band = std::max<int64_t>(1, (kBandFloats / (C * w) - reach - 1) / d.stride_h + 1);
  band = std::min(band, (oh + pool.size() - 1) / pool.size());
  const int64_t bands = (oh + band - 1) / band, expanded_floats = C * ((band - 1) * d.stride_h + reach + 1) * w;
  Epilogue ep;
  ep.bias = bias_.data();
  ep.act = act_;
  pool.parallel_for(batch * bands, [&](int64_t u0, int64_t u1) {
    ThreadPool this_thread(1);
    float* expanded = thread_scratch(3, expanded_floats);
    float* ws = thread_scratch(0, kGemmWorkspace);
    float* dw_band = project_bands ? thread_scratch(5, C * band * ow) : nullptr;
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t img = u / bands, r0 = u % bands * band, r1 = std::min(oh, r0 + band);
      // Input rows [i0, i1] under the band's windows; [a0, a1] of them are inside the image.
      const int64_t i0 = r0 * d.stride_h - d.pad_t, i1 = (r1 - 1) * d.stride_h - d.pad_t + reach;
      const int64_t a0 = std::max<int64_t>(0, i0), a1 = std::min(h - 1, i1), rows = a1 - a0 + 1;
      // The expansion of those rows: its GEMM reads the input rows in place.
      const float* x = in + (img * p_.in_ch * h + a0) * w;
      gemm_block(packed_[0], MatrixPacker(x, h * w, 1, true), 0, C, 0, rows * w, expanded, rows * w, ep, ws);
      // The depthwise convolution of the band, padded only where the band meets the image border.
      ConvParams pb = d;
      pb.pad_t = a0 - i0;
      pb.pad_b = i1 - a1;
      if (!project_bands) {
        depthwise_conv(pb, dw.depthwise_.data(), dw.bias_.data(), dw.act_, expanded, 1, rows, w, nullptr,
                       dw_out + (img * C * oh + r0) * ow, this_thread, oh * ow);
        continue;
      }
      // Then the projection of the band, its GEMM reading the band in place.
      const int64_t n = (r1 - r0) * ow, at = img * P * oh * ow + r0 * ow;
      depthwise_conv(pb, dw.depthwise_.data(), dw.bias_.data(), dw.act_, expanded, 1, rows, w, nullptr, dw_band,
                     this_thread, n);
      Epilogue pe;
      pe.bias = project->bias_.data();
      pe.residual = residual ? residual + at : nullptr;
      pe.act = project->act_;
      gemm_block(project->packed_[0], MatrixPacker(dw_band, n, 1, true), 0, P, 0, n, out + at, oh * ow, pe, ws);
    }
  });
  project_whole();
}

}  // namespace kernels
}  // namespace dnn
