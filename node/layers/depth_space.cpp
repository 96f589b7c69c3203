// DepthToSpace (DCR and CRD modes) and SpaceToDepth: a reshape to 6-D, a transpose and a reshape back,
// done as one strided copy.
#include "layers/common.h"

namespace dnn {
namespace {

class DepthSpace : public Layer {
 public:
  void load(const Node& node, const std::vector<const Tensor*>& consts) override {
    require_activation(node, consts, 0);
    to_space_ = node.op == "DepthToSpace";
    b_ = node.attrs.i("blocksize", 0);
    if (b_ < 1) throw ModelError("blocksize must be at least 1");
    const std::string mode = node.attrs.s("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") throw ModelError("mode '" + mode + "' is not DCR or CRD");
    crd_ = mode == "CRD";
  }

  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    const Shape& s = in.at(0);
    if (s.size() != 4) throw ShapeError("expects [N, C, H, W], got " + to_string(s));
    if (to_space_) {
      if (s[1] % (b_ * b_)) throw ShapeError("channels " + std::to_string(s[1]) + " not divisible by blocksize^2");
      return {{s[0], s[1] / (b_ * b_), s[2] * b_, s[3] * b_}};
    }
    if (s[2] % b_ || s[3] % b_) throw ShapeError("height and width must be multiples of blocksize, got " + to_string(s));
    return {{s[0], s[1] * b_ * b_, s[2] / b_, s[3] / b_}};
  }

  std::vector<Tensor> forward(const std::vector<const Tensor*>& in, RunContext& ctx) override {
    const Tensor& x = *in[0];
    Shape out = output_shapes({x.shape()})[0];
    auto y = Tensor::uninitialized(out);
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), b = b_;
    // The input viewed as 6-D (row-major), and the order its axes take in the output.
    Shape view;
    std::vector<int> perm;
    if (to_space_ && !crd_) view = {n, b, b, c / (b * b), h, w}, perm = {0, 3, 4, 1, 5, 2};
    else if (to_space_) view = {n, c / (b * b), b, b, h, w}, perm = {0, 1, 4, 2, 5, 3};
    else view = {n, c, h / b, b, w / b, b}, perm = {0, 3, 5, 1, 2, 4};
    std::vector<int64_t> st(6, 1), strides(6);
    Shape shape(6);
    for (int d = 4; d >= 0; --d) st[d] = st[d + 1] * view[d + 1];
    for (int d = 0; d < 6; ++d) shape[d] = view[perm[d]], strides[d] = st[perm[d]];
    strided_copy(ctx, x.f32(), shape, strides, y.f32());
    return {y};
  }

 private:
  bool to_space_ = true, crd_ = false;
  int64_t b_ = 1;
};

}  // namespace

std::unique_ptr<Layer> make_depth_space_layer() { return std::make_unique<DepthSpace>(); }

}  // namespace dnn
