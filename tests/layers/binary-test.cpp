// Add/Sub/Mul/Div/PRelu: NumPy broadcasting between run-time and constant operands, against an
// index-by-index reference; the conformance cases cover only a few shapes.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

// y[i] = f(a[broadcast index], b[broadcast index]), one element at a time.
template <class F>
Tensor reference(const Tensor& a, const Tensor& b, const Shape& out_shape, F f) {
  Tensor y(out_shape);
  const size_t r = out_shape.size();
  auto sa = strides_of(a.shape()), sb = strides_of(b.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    auto idx = unflatten(i, out_shape);
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < r; ++d) {
      int64_t da = static_cast<int64_t>(d) - static_cast<int64_t>(r - a.shape().size());
      int64_t db = static_cast<int64_t>(d) - static_cast<int64_t>(r - b.shape().size());
      if (da >= 0 && a.shape()[da] != 1) ia += idx[d] * sa[da];
      if (db >= 0 && b.shape()[db] != 1) ib += idx[d] * sb[db];
    }
    y.f32()[i] = f(a.f32()[ia], b.f32()[ib]);
  }
  return y;
}

struct Case {
  Shape a, b, out;
};

TEST(Binary, BroadcastsBothWaysForEveryOp) {
  const Case cases[] = {
      {{2, 3, 4, 5}, {1, 3, 1, 1}, {2, 3, 4, 5}},  // per-channel bias, batch 2
      {{2, 3, 4, 5}, {3, 1, 1}, {2, 3, 4, 5}},     // lower-rank operand
      {{2, 3, 4, 5}, {2, 3, 1, 1}, {2, 3, 4, 5}},  // squeeze-excitation scale
      {{2, 1, 4, 1}, {3, 1, 5}, {2, 3, 4, 5}},     // both operands broadcast
      {{5}, {2, 3, 4, 5}, {2, 3, 4, 5}},           // row vector first
      {{}, {2, 3}, {2, 3}},                        // scalar
      {{2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}},
  };
  const std::pair<const char*, float (*)(float, float)> ops[] = {
      {"Add", [](float u, float v) { return u + v; }},
      {"Sub", [](float u, float v) { return u - v; }},
      {"Mul", [](float u, float v) { return u * v; }},
      {"Div", [](float u, float v) { return u / v; }},
      {"PRelu", [](float u, float v) { return u < 0.f ? u * v : u; }},
  };
  unsigned seed = 1;
  for (auto& c : cases)
    for (auto& [op, f] : ops) {
      SCOPED_TRACE(std::string(op) + " " + to_string(c.a) + " , " + to_string(c.b));
      Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++, 0.5f, 2.f);
      Tensor ref = reference(a, b, c.out, f);
      Node n = make_node(op, 2);
      expect_close(run_layer(n, {nullptr, nullptr}, {&a, &b})[0], ref);
      expect_close(run_layer(n, {nullptr, &b}, {&a, nullptr})[0], ref);  // constant second operand
      expect_close(run_layer(n, {&a, nullptr}, {nullptr, &b})[0], ref);  // constant first operand
    }
}

TEST(Binary, ThreadCountDoesNotChangeTheResult) {
  Tensor a = random_tensor({4, 32, 28, 28}, 7), b = random_tensor({1, 32, 1, 1}, 8);
  Node n = make_node("Mul", 2);
  expect_identical(run_layer(n, {nullptr, nullptr}, {&a, &b}, 1)[0], run_layer(n, {nullptr, nullptr}, {&a, &b}, 2)[0]);
}

TEST(Binary, IncompatibleShapesAreAShapeError) {
  Tensor a({2, 3}), b({4});
  EXPECT_THROW(run_layer(make_node("Add", 2), {nullptr, nullptr}, {&a, &b}), ShapeError);
}

TEST(Binary, IntegerConstantIsUsedAsFloat) {
  Tensor a = Tensor::from_f32({2}, {1.5f, 2.5f});
  Tensor k = Tensor::from_i64({}, {2});
  Tensor y = run_layer(make_node("Mul", 2), {nullptr, &k}, {&a, nullptr})[0];
  EXPECT_EQ(3.f, y.f32()[0]);
  EXPECT_EQ(5.f, y.f32()[1]);
}

}  // namespace
}  // namespace dnn::test
