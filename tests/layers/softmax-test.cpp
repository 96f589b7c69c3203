// Softmax/LogSoftmax along a middle axis (inner > 1) of a batch, against a direct reference.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Tensor reference(const Tensor& x, int axis, bool log) {
  const Shape& s = x.shape();
  Tensor y(s);
  auto st = strides_of(s);
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = unflatten(i, s);
    const int64_t base = i - idx[axis] * st[axis];
    double peak = -1e30, sum = 0;
    for (int64_t k = 0; k < s[axis]; ++k) peak = std::max<double>(peak, x.f32()[base + k * st[axis]]);
    for (int64_t k = 0; k < s[axis]; ++k) sum += std::exp(x.f32()[base + k * st[axis]] - peak);
    y.f32()[i] = static_cast<float>(log ? x.f32()[i] - peak - std::log(sum) : std::exp(x.f32()[i] - peak) / sum);
  }
  return y;
}

TEST(Softmax, EveryAxisOfABatch) {
  Tensor x = random_tensor({2, 5, 3, 4}, 1, -20.f, 20.f);
  for (int64_t axis : {0, 1, 2, 3, -1, -3})
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      SCOPED_TRACE(std::string(op) + " axis " + std::to_string(axis));
      Attrs a;
      a.set("axis", axis);
      expect_close(run_unary(make_node(op, 1, a), x), reference(x, static_cast<int>(axis < 0 ? axis + 4 : axis), op[0] == 'L'));
    }
}

TEST(Softmax, DefaultAxisIsTheLast) {
  Tensor x = random_tensor({3, 10}, 2);
  expect_close(run_unary(make_node("Softmax", 1), x), reference(x, 1, false));
}

TEST(Softmax, ThreadCountDoesNotChangeTheResult) {
  Tensor x = random_tensor({64, 1000}, 3);
  expect_identical(run_unary(make_node("Softmax", 1), x, 1), run_unary(make_node("Softmax", 1), x, 2));
}

}  // namespace
}  // namespace dnn::test
