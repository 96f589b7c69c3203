// MaxPool, AveragePool (1-3 spatial dimensions; strides, pads incl. asymmetric, dilations for MaxPool,
// ceil_mode, count_include_pad, auto_pad) and GlobalAveragePool / GlobalMaxPool.
// Window geometry is worked out per spatial dimension once per call: for each output position the
// first in-bounds tap, the number of in-bounds taps and the divisor. Each output row then reduces
// the input rows under its window vertically (contiguous, vectorised) into a row padded with the
// identity (-inf or 0), and the window slides along that row without bounds checks.
// Planes (n, c) are split across the pool.
#include <cmath>
#include <limits>

#include "layers/common.h"

namespace dnn {
namespace {

// y[c] = op over k of t[c * stride + k * dil], k < kw: the window sliding along one padded row.
// Tap-major, so each pass is a vector op; strides 1 and 2 (nearly every CNN pool) are compile-time
// constants so the loads vectorise.
template <int64_t Stride, class Op>
void slide_fixed(const float* t, int64_t kw, int64_t stride, int64_t dil, float* y, int64_t ow, float identity, Op op) {
  const int64_t s = Stride ? Stride : stride;
  std::fill(y, y + ow, identity);
  for (int64_t k = 0; k < kw; ++k) {
    const float* tk = t + k * dil;
    for (int64_t c = 0; c < ow; ++c) y[c] = op(y[c], tk[c * s]);
  }
}

template <class Op>
void slide(const float* t, int64_t kw, int64_t stride, int64_t dil, float* y, int64_t ow, float identity, Op op) {
  // The common 3-wide windows in one pass each, rather than one pass per tap.
  if (kw == 3 && dil == 1 && (stride == 1 || stride == 2)) {
    if (stride == 1)
      for (int64_t c = 0; c < ow; ++c) y[c] = op(op(t[c], t[c + 1]), t[c + 2]);
    else
      for (int64_t c = 0; c < ow; ++c) y[c] = op(op(t[2 * c], t[2 * c + 1]), t[2 * c + 2]);
    return;
  }
  if (stride == 1)
    slide_fixed<1>(t, kw, stride, dil, y, ow, identity, op);
  else if (stride == 2)
    slide_fixed<2>(t, kw, stride, dil, y, ow, identity, op);
  else
    slide_fixed<0>(t, kw, stride, dil, y, ow, identity, op);
}

// Per output position along one spatial dimension.
struct Taps {
  std::vector<int64_t> first, count, padded_count;  // first in-bounds input index, in-bounds taps, taps incl. pads
  int64_t pad_begin = 0;                             // after auto_pad is resolved
};

class Pool : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    max_ = node.op == "MaxPool";
    if (node.outputs.size() > 1) throw ModelError("the Indices output of MaxPool is not supported");
    kernel_ = node.attrs.ints("kernel_shape");
    const size_t r = kernel_.size();
    if (r < 1 || r > 3) throw ModelError("kernel_shape must have 1 to 3 dimensions");
    strides_ = node.attrs.ints("strides", std::vector<int64_t>(r, 1));
    dilations_ = node.attrs.ints("dilations", std::vector<int64_t>(r, 1));
    pads_ = node.attrs.ints("pads", std::vector<int64_t>(2 * r, 0));
    auto_pad_ = node.attrs.s("auto_pad", "NOTSET");
    ceil_ = node.attrs.i("ceil_mode", 0) != 0;
    include_pad_ = node.attrs.i("count_include_pad", 0) != 0;
    if (strides_.size() != r || dilations_.size() != r || pads_.size() != 2 * r)
      throw ModelError("strides/dilations/pads do not match kernel_shape");
    for (size_t d = 0; d < r; ++d)
      if (kernel_[d] < 1 || strides_[d] < 1 || dilations_[d] < 1 || pads_[d] < 0 || pads_[d + r] < 0)
        throw ModelError("kernel_shape, strides and dilations must be positive and pads non-negative");
    if (!max_ && std::any_of(dilations_.begin(), dilations_.end(), [](int64_t d) { return d != 1; }))
      throw ModelError("AveragePool with dilations is not supported");
    if (auto_pad_ != "NOTSET" && auto_pad_ != "VALID" && auto_pad_ != "SAME_UPPER" && auto_pad_ != "SAME_LOWER")
      throw ModelError("auto_pad '" + auto_pad_ + "' is not supported");
    // A 1-element window moving one step with no pads (AlexNet's adaptive pool on a 6x6 input)
    // passes its input through.
    auto all = [](const std::vector<int64_t>& v, int64_t x) {
      return std::all_of(v.begin(), v.end(), [x](int64_t e) { return e == x; });
    };
    passthrough_ = all(kernel_, 1) && all(strides_, 1) && all(pads_, 0);
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    const size_t r = kernel_.size();
    if (s.size() != r + 2) throw ShapeError("input " + to_string(s) + " does not have " + std::to_string(r) + " spatial dimensions");
    Shape out = {s[0], s[1]};
    for (size_t d = 0; d < r; ++d) out.push_back(extent(d, s[d + 2]).out);
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    if (passthrough_) return {*in[0]};  // a view, as Identity returns
    const Shape& s = in[0]->shape();
    Shape out_shape = output_shapes({s})[0];
    Tensor out(out_shape);
    // Treat every pool as 3-D: missing leading spatial dimensions have size 1 and a single tap.
    // The taps depend only on the input shape, so they are kept for the next call (small models
    // would otherwise spend much of a pool's time recomputing them).
    const size_t r = kernel_.size();
    if (s != taps_shape_) {
      for (size_t d = 0; d < 3; ++d) taps_[d] = d + r < 3 ? Taps{{0}, {1}, {1}, 0} : geometry(d + r - 3, s[d + r - 1]);
      taps_shape_ = s;
    }
    const Taps* taps = taps_;
    int64_t in_dim[3] = {1, 1, 1}, dil[3] = {1, 1, 1};
    for (size_t d = 3 - r; d < 3; ++d) {
      in_dim[d] = s[d + r - 1];
      dil[d] = dilations_[d + r - 3];
    }
    const int64_t od = taps[0].first.size(), oh = taps[1].first.size(), ow = taps[2].first.size();
    const int64_t in_plane = in_dim[0] * in_dim[1] * in_dim[2], out_plane = od * oh * ow, W = in_dim[2];
    const int64_t kw = kernel_[r - 1], sw = strides_[r - 1], pw = taps[2].pad_begin;
    const int64_t ahead = (r >= 2 ? strides_[r - 2] : 1) * W;  // input floats one output row on
    const int64_t row_len = std::max(pw + W, (ow - 1) * sw + (kw - 1) * dil[2] + 1);
    const float identity = max_ ? -std::numeric_limits<float>::infinity() : 0.f;
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, s[0] * s[1], 1, [&](int64_t p0, int64_t p1) {
      // One input row reduced over the window's depth and height taps, padded with the identity
      // so the horizontal pass needs no bounds checks.
      std::vector<float> padded(row_len, identity);
      float* row = padded.data() + pw;
      for (int64_t p = p0; p < p1; ++p) {
        const float* xp = x + p * in_plane;
        float* yp = y + p * out_plane;
        for (int64_t a = 0; a < od; ++a)
          for (int64_t b = 0; b < oh; ++b) {
            // The input rows under the window, reduced into `row` three at a time (one pass
            // for the usual 2- or 3-row window, not one per row).
            const float* src[3];
            int n = 0;
            bool first = true;
            auto reduce = [&] {
              const float *s0 = src[0], *s1 = n > 1 ? src[1] : src[0], *s2 = n > 2 ? src[2] : s1;
              if (first && max_)
                for (int64_t w = 0; w < W; ++w) row[w] = std::max(std::max(s0[w], s1[w]), s2[w]);
              else if (max_)
                for (int64_t w = 0; w < W; ++w) row[w] = std::max(std::max(row[w], s0[w]), std::max(s1[w], s2[w]));
              else  // sums keep their order: row, then each source row in turn
                for (int64_t w = 0; w < W; ++w) {
                  float v = first ? s0[w] : row[w] + s0[w];
                  if (n > 1) v += s1[w];
                  if (n > 2) v += s2[w];
                  row[w] = v;
                }
              first = false;
              n = 0;
            };
            for (int64_t i = 0; i < taps[0].count[a]; ++i)
              for (int64_t j = 0; j < taps[1].count[b]; ++j) {
                src[n] = xp + ((taps[0].first[a] + i * dil[0]) * in_dim[1] + taps[1].first[b] + j * dil[1]) * W;
                // The rows two output rows ahead: this loop waits on memory (a large input
                // is usually a convolution's output that has left the cache).
                for (int64_t w = 0; w < W; w += 16) __builtin_prefetch(src[n] + 2 * ahead + w);
                if (++n == 3) reduce();
              }
            if (n > 0) reduce();
            if (first) std::fill(row, row + W, identity);  // a window wholly in the padding
            const float* t = padded.data();
            if (max_) {
              slide(t, kw, sw, dil[2], yp, ow, identity, [](float u, float v) { return std::max(u, v); });
            } else {
              // The divisor: taps inside the input, or inside the padded input (count_include_pad).
              const auto& n = include_pad_ ? &Taps::padded_count : &Taps::count;
              const int64_t outer = (taps[0].*n)[a] * (taps[1].*n)[b];
              slide(t, kw, sw, 1, yp, ow, 0.f, [](float u, float v) { return u + v; });
              for (int64_t c = 0; c < ow; ++c) yp[c] /= static_cast<float>(outer * (taps[2].*n)[c]);
            }
            yp += ow;
          }
      }
    });
    return {out};
  }

  // One MAC per window element per output (a compare or an add).
  int64_t macs(const std::vector<Shape>& in) const override {
    int64_t window = 1;
    for (int64_t k : kernel_) window *= k;
    return numel(output_shapes(in)[0]) * window;
  }

 private:
  // Output size and the pads in effect (auto_pad resolved) along spatial dimension d of extent `in`.
  struct Extent {
    int64_t out, pad_begin, pad_end;
  };
  Extent extent(size_t d, int64_t in) const {
    const size_t r = kernel_.size();
    const int64_t s = strides_[d], span = (kernel_[d] - 1) * dilations_[d] + 1;
    int64_t pb = pads_[d], pe = pads_[d + r], out;
    if (auto_pad_ == "NOTSET") {
      const int64_t room = in + pb + pe - span;
      if (room < 0) throw ShapeError("pooling window " + std::to_string(span) + " is larger than the padded input " + std::to_string(in + pb + pe));
      out = (ceil_ ? (room + s - 1) / s : room / s) + 1;
      // A window that would start in the end padding is dropped (ONNX/PyTorch ceil_mode rule).
      if (ceil_ && (out - 1) * s >= in + pb) --out;
    } else if (auto_pad_ == "VALID") {
      pb = pe = 0;
      if (in < span) throw ShapeError("pooling window is larger than the input");
      out = (in - span) / s + 1;
    } else {  // SAME_UPPER / SAME_LOWER: out = ceil(in / s), the odd pad at the end / start
      out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in);
      pb = auto_pad_ == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
    }
    return {out, pb, pe};
  }

  // For each output position along spatial dimension d of extent `in`, its taps.
  Taps geometry(size_t d, int64_t in) const {
    const int64_t k = kernel_[d], s = strides_[d], dil = dilations_[d];
    const int64_t span = (k - 1) * dil + 1;
    const auto [out, pb, pe] = extent(d, in);
    Taps t;
    t.pad_begin = pb;
    t.first.reserve(out), t.count.reserve(out), t.padded_count.reserve(out);
    for (int64_t o = 0; o < out; ++o) {
      const int64_t start = o * s - pb;
      // Taps start + i*dil for i in [0, k): keep those inside [0, in).
      int64_t lo = start < 0 ? (-start + dil - 1) / dil : 0;
      int64_t hi = std::min<int64_t>(k, (in - 1 - start) / dil + 1);
      if (in - 1 - start < 0) hi = 0;
      t.first.push_back(start + lo * dil);
      t.count.push_back(std::max<int64_t>(0, hi - lo));
      // count_include_pad divides by the window clipped to the padded input (as PyTorch and ONNX do).
      t.padded_count.push_back(std::min(start + span, in + pe) - start);
    }
    return t;
  }

  bool max_ = false, ceil_ = false, include_pad_ = false, passthrough_ = false;
  std::vector<int64_t> kernel_, strides_, dilations_, pads_;
  std::string auto_pad_;
  Shape taps_shape_;  // the input shape taps_ were computed for
  Taps taps_[3];
};

// GlobalAveragePool / GlobalMaxPool: one value per (n, c) plane, output [N, C, 1, ...].
class GlobalPool : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    max_ = node.op == "GlobalMaxPool";
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    Shape s = in.at(0);
    if (s.size() < 3) throw ShapeError("input " + to_string(s) + " has no spatial dimensions");
    for (size_t d = 2; d < s.size(); ++d) s[d] = 1;
    return {s};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Shape& s = in[0]->shape();
    Tensor out(output_shapes({s})[0]);
    const int64_t planes = s[0] * s[1], plane = in[0]->numel() / std::max<int64_t>(1, planes);
    const float* x = in[0]->f32();
    float* y = out.f32();
    parallel_chunks(ctx, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plane)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const float* xp = x + p * plane;
        if (max_) {
          y[p] = row_reduce(xp, plane, -std::numeric_limits<float>::infinity(), [](float a, float b) { return std::max(a, b); });
        } else {
          y[p] = row_sum(xp, plane) / static_cast<float>(plane);
        }
      }
    });
    return {out};
  }

  // One MAC per input element.
  int64_t macs(const std::vector<Shape>& in) const override { return numel(in.at(0)); }

 private:
  bool max_ = false;
};

}  // namespace

std::unique_ptr<Layer> make_pool_layer() { return std::make_unique<Pool>(); }
std::unique_ptr<Layer> make_global_pool_layer() { return std::make_unique<GlobalPool>(); }

}  // namespace dnn
