// Pad in all three modes on a float batch (the conformance cases for reflect and edge are int32),
// and negative pads, which crop.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Node pad_node(const char* mode, std::vector<int64_t> pads, float value = 0.f) {
  Attrs a;
  a.set("mode", std::string(mode));
  a.set("pads", pads);
  a.set("value", value);
  return make_node("Pad", 1, a);
}

// numpy.pad's definition for each mode, one output element at a time.
Tensor reference(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, float value) {
  const size_t r = x.shape().size();
  Shape out_shape(r);
  for (size_t d = 0; d < r; ++d) out_shape[d] = x.shape()[d] + pads[d] + pads[d + r];
  Tensor y(out_shape);
  auto st = strides_of(x.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    auto idx = unflatten(i, out_shape);
    int64_t src = 0;
    bool inside = true;
    for (size_t d = 0; d < r; ++d) {
      int64_t k = idx[d] - pads[d], n = x.shape()[d];
      if (k < 0 || k >= n) {
        if (mode == "constant") inside = false;
        if (mode == "edge") k = k < 0 ? 0 : n - 1;
        if (mode == "reflect") k = k < 0 ? -k : 2 * (n - 1) - k;
      }
      src += k * st[d];
    }
    y.f32()[i] = inside ? x.f32()[src] : value;
  }
  return y;
}

TEST(Pad, AllModesOnABatch) {
  Tensor x = random_tensor({2, 3, 4, 5}, 1);
  const std::vector<int64_t> pads = {0, 0, 2, 1, 0, 1, 3, 4};
  for (const char* mode : {"constant", "reflect", "edge"}) {
    SCOPED_TRACE(mode);
    expect_close(run_unary(pad_node(mode, pads, 1.5f), x), reference(x, pads, mode, 1.5f));
  }
}

TEST(Pad, TwoThreadsGiveTheSameResult) {
  Tensor x = random_tensor({2, 32, 56, 56}, 3);
  const std::vector<int64_t> pads = {0, 0, 1, 2, 0, 0, 2, 1};
  for (const char* mode : {"constant", "reflect"}) {
    Tensor one = run_unary(pad_node(mode, pads), x, 1);
    expect_identical(run_unary(pad_node(mode, pads), x, 2), one);
    expect_close(one, reference(x, pads, mode, 0.f));
  }
}

TEST(Pad, NegativePadsCrop) {
  Tensor x = random_tensor({1, 2, 5, 5}, 2);
  Tensor y = run_unary(pad_node("constant", {0, 0, -1, 0, 0, 0, -2, 1}), x);
  ASSERT_EQ((Shape{1, 2, 2, 6}), y.shape());
  EXPECT_EQ(x.f32()[1 * 5 + 0], y.f32()[0]);
  EXPECT_EQ(0.f, y.f32()[5]);
}

TEST(Pad, ReflectWiderThanTheInputIsAShapeError) {
  Tensor x({1, 1, 2, 2});
  EXPECT_THROW(run_unary(pad_node("reflect", {0, 0, 2, 0, 0, 0, 0, 0}), x), ShapeError);
}

}  // namespace
}  // namespace dnn::test
