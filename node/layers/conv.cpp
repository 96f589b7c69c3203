// Conv (1-D and 2-D, NCHW): any stride, dilation, padding (explicit, asymmetric, or auto_pad), group
// count; optional bias; an optional 4th input added after the bias (a residual the importer fused in);
// fused activation from the dnn.activation attributes. Weights are packed at load and not kept.
#include <cmath>
#include <memory>

#include "kernels/conv2d.h"
#include "layers/layer.h"

namespace dnn {
namespace {

class ConvLayer : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    inputs_ = node.inputs.size();
    if (node.inputs.size() < 2 || !consts.at(1))
      throw ModelError("Conv weights must be a constant (initializer)");
    const Tensor& w = *consts[1];
    spatial_ = w.rank() - 2;
    if (spatial_ != 1 && spatial_ != 2)
      throw ModelError("only 1-D and 2-D Conv are supported (weights " + to_string(w.shape()) + ")");
    const Attrs& a = node.attrs;
    auto ints = [&](const char* name, int64_t dflt, size_t n) {
      std::vector<int64_t> v = a.ints(name, std::vector<int64_t>(n, dflt));
      if (v.size() != n) throw ModelError(std::string("attribute ") + name + " has the wrong length");
      return v;
    };
    const auto strides = ints("strides", 1, spatial_), dil = ints("dilations", 1, spatial_);
    const auto pads = ints("pads", 0, 2 * spatial_);
    if (a.has("kernel_shape")) {
      const auto ks = ints("kernel_shape", 1, spatial_);
      for (int d = 0; d < spatial_; ++d)
        if (ks[d] != w.dim(2 + d)) throw ModelError("kernel_shape does not match the weights " + to_string(w.shape()));
    }
    auto_pad_ = a.s("auto_pad", "NOTSET");
    if (auto_pad_ != "NOTSET" && auto_pad_ != "VALID" && auto_pad_ != "SAME_UPPER" && auto_pad_ != "SAME_LOWER")
      throw ModelError("unknown auto_pad '" + auto_pad_ + "'");
    kernels::ConvParams& p = params_;
    p.groups = a.i("group", 1);
    p.out_ch = w.dim(0);
    if (p.groups < 1 || p.out_ch % p.groups != 0) throw ModelError("group does not divide the output channels");
    p.in_ch = w.dim(1) * p.groups;
    // A 1-D conv is a 2-D conv with a height of 1.
    const int h = spatial_ == 2 ? 0 : -1;  // index of the height entry, -1: none
    p.kh = h < 0 ? 1 : w.dim(2);
    p.kw = w.dim(-1);
    p.stride_h = h < 0 ? 1 : strides[0];
    p.stride_w = strides.back();
    p.dil_h = h < 0 ? 1 : dil[0];
    p.dil_w = dil.back();
    p.pad_t = h < 0 ? 0 : pads[0];
    p.pad_l = pads[spatial_ - 1];
    p.pad_b = h < 0 ? 0 : pads[spatial_];
    p.pad_r = pads[2 * spatial_ - 1];
    if (p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1 || p.pad_t < 0 || p.pad_l < 0 || p.pad_b < 0 ||
        p.pad_r < 0)
      throw ModelError("strides and dilations must be >= 1 and pads >= 0");

    const float* bias = nullptr;
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      if (!consts[2]) throw ModelError("Conv bias must be a constant (initializer)");
      if (consts[2]->numel() != p.out_ch) throw ModelError("Conv bias has " + std::to_string(consts[2]->numel()) +
                                                            " values for " + std::to_string(p.out_ch) + " channels");
      bias = consts[2]->f32();
    }
    if (node.inputs.size() > 3 && !node.inputs[3].empty() && consts[3]) residual_const_ = *consts[3];
    const auto act = kernels::make_activation(a.s("dnn.activation", ""), a.f("dnn.act_min", -INFINITY),
                                              a.f("dnn.act_max", INFINITY), a.f("dnn.act_alpha", 0.01f));
    conv_ = std::make_unique<kernels::Conv2d>(p, w.f32(), bias, act);
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& x = in.at(0);
    if (static_cast<int>(x.size()) != spatial_ + 2 || x[1] != params_.in_ch)
      throw ShapeError(where_ + ": input " + to_string(x) + " does not match " + std::to_string(params_.in_ch) +
                       " input channels and " + std::to_string(spatial_) + " spatial dims");
    const kernels::ConvParams p = resolved(x);
    const int64_t h = spatial_ == 2 ? x[2] : 1, w = x.back();
    const int64_t oh = p.out_h(h), ow = p.out_w(w);
    if (oh < 1 || ow < 1) throw ShapeError(where_ + ": input " + to_string(x) + " is smaller than the kernel");
    Shape out = spatial_ == 2 ? Shape{x[0], p.out_ch, oh, ow} : Shape{x[0], p.out_ch, ow};
    if (in.size() > 3 && !in[3].empty() && in[3] != out)
      throw ShapeError(where_ + ": residual input " + to_string(in[3]) + " does not match output " + to_string(out));
    return {out};
  }

  void prepare(const std::vector<Shape>& in) override {
    const Shape& x = in.at(0);
    const kernels::ConvParams p = resolved(x);
    conv_->set_padding(p.pad_t, p.pad_l, p.pad_b, p.pad_r);
    conv_->prepare(spatial_ == 2 ? x[2] : 1, x.back());
  }

  // A 1x1 convolution absorbs the depthwise convolution it feeds, then the 1x1 projection that
  // follows (MobileNet's inverted residuals). The projection's residual input, if any, comes
  // after this layer's own inputs (Layer::absorb).
  bool absorb(Layer& next) override {
    auto* conv = dynamic_cast<ConvLayer*>(&next);
    if (!conv || project_ || spatial_ != 2 || conv->spatial_ != 2 || auto_pad_ != "NOTSET" ||
        conv->auto_pad_ != "NOTSET" || !residual_const_.empty() || !conv->residual_const_.empty())
      return false;
    if (!next_ && conv->inputs_ <= 3 && conv_->can_feed_depthwise(*conv->conv_))  // (a depthwise with a residual: no)
      next_ = conv;
    else if (next_ && next_->conv_->can_feed_projection(*conv->conv_))
      project_ = conv;
    else
      return false;
    return true;
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& x = *in.at(0);
    if (next_) {
      const Shape mid = next_->output_shapes(output_shapes({x.shape()}))[0];
      const Tensor* res = project_ && in.size() > inputs_ ? in[inputs_] : nullptr;
      std::vector<Shape> shapes = {mid};
      if (res) shapes = {mid, {}, {}, res->shape()};
      auto out = Tensor::uninitialized(project_ ? project_->output_shapes(shapes)[0] : mid);
      conv_->forward_into_depthwise(*next_->conv_, x.f32(), x.dim(0), x.dim(2), x.dim(3), out.f32(), *ctx.pool,
                                    project_ ? project_->conv_.get() : nullptr, res ? res->f32() : nullptr);
      return {out};
    }
    const Tensor* res = in.size() > 3 && in[3] ? in[3] : (residual_const_.empty() ? nullptr : &residual_const_);
    std::vector<Shape> shapes = {x.shape()};
    if (res) shapes = {x.shape(), {}, {}, res->shape()};
    auto out = Tensor::uninitialized(output_shapes(shapes)[0]);
    const kernels::ConvParams p = resolved(x.shape());
    conv_->set_padding(p.pad_t, p.pad_l, p.pad_b, p.pad_r);
    const int64_t h = spatial_ == 2 ? x.dim(2) : 1;
    conv_->forward(x.f32(), x.dim(0), h, x.dim(-1), res ? res->f32() : nullptr, out.f32(), *ctx.pool);
    return {out};
  }

  int64_t macs(const std::vector<Shape>& in) const override {
    const Shape out = output_shapes({in.at(0)})[0];
    int64_t macs = numel(out) * (params_.in_ch / params_.groups) * params_.kh * params_.kw;
    if (next_) macs += next_->macs({out});
    if (project_) macs += project_->macs(next_->output_shapes({out}));
    return macs;
  }

 private:
  ConvLayer* next_ = nullptr;     // an absorbed depthwise convolution (owned by the executor)
  ConvLayer* project_ = nullptr;  // and the absorbed projection after it
  size_t inputs_ = 0;             // the node's own inputs

  // The parameters with auto_pad resolved for this input shape.
  kernels::ConvParams resolved(const Shape& x) const {
    kernels::ConvParams p = params_;
    if (auto_pad_ == "NOTSET") return p;
    auto same = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t& begin, int64_t& end) {
      const int64_t total = auto_pad_ == "VALID" ? 0 : std::max<int64_t>(0, ((in + s - 1) / s - 1) * s + (k - 1) * d + 1 - in);
      begin = auto_pad_ == "SAME_LOWER" ? total - total / 2 : total / 2;
      end = total - begin;
    };
    if (spatial_ == 2) same(x[2], p.kh, p.stride_h, p.dil_h, p.pad_t, p.pad_b);
    same(x.back(), p.kw, p.stride_w, p.dil_w, p.pad_l, p.pad_r);
    return p;
  }

  int spatial_ = 2;
  std::string auto_pad_;
  kernels::ConvParams params_;
  Tensor residual_const_;
  std::unique_ptr<kernels::Conv2d> conv_;
};

}  // namespace

std::unique_ptr<Layer> make_conv_layer() { return std::make_unique<ConvLayer>(); }

}  // namespace dnn
