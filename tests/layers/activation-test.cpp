// Elementwise activations against their formulas, with the attributes the importer writes.
#include <functional>

#include "layers/layer_test.h"

namespace dnn::test {
namespace {

void expect_formula(const Node& n, const std::function<float(float)>& f) {
  SCOPED_TRACE(n.op);
  Tensor x = random_tensor({2, 3, 5, 7}, 11, -8.f, 8.f);
  Tensor ref(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) ref.f32()[i] = f(x.f32()[i]);
  expect_close(run_unary(n, x), ref);
}

Attrs attrs(std::initializer_list<std::pair<const std::string, AttrValue>> kv) {
  Attrs a;
  for (auto& [k, v] : kv) a.set(k, v);
  return a;
}

TEST(Activation, MatchesFormulas) {
  expect_formula(make_node("Relu", 1), [](float x) { return x > 0 ? x : 0.f; });
  expect_formula(make_node("LeakyRelu", 1, attrs({{"alpha", 0.1f}})), [](float x) { return x > 0 ? x : 0.1f * x; });
  expect_formula(make_node("LeakyRelu", 1), [](float x) { return x > 0 ? x : 0.01f * x; });
  expect_formula(make_node("Clip", 1, attrs({{"min", 0.f}, {"max", 6.f}})), [](float x) { return std::min(std::max(x, 0.f), 6.f); });
  expect_formula(make_node("Clip", 1, attrs({{"max", 1.5f}})), [](float x) { return std::min(x, 1.5f); });
  expect_formula(make_node("Sigmoid", 1), [](float x) { return 1.f / (1.f + std::exp(-x)); });
  expect_formula(make_node("HardSigmoid", 1), [](float x) { return std::min(std::max(0.2f * x + 0.5f, 0.f), 1.f); });
  expect_formula(make_node("HardSigmoid", 1, attrs({{"alpha", 1.f / 6}, {"beta", 0.5f}})),
                 [](float x) { return std::min(std::max(x / 6.f + 0.5f, 0.f), 1.f); });
  expect_formula(make_node("HardSwish", 1), [](float x) { return x * std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f; });
  expect_formula(make_node("Tanh", 1), [](float x) { return std::tanh(x); });
  expect_formula(make_node("Exp", 1), [](float x) { return std::exp(x); });
}

TEST(Activation, ExpIsAccurateOverTheWholeFloatRange) {
  // Exp and Sigmoid use a vectorised polynomial instead of libm: check it against double precision.
  std::vector<float> xs;
  for (float x = -110.f; x < 95.f; x += 0.0173f) xs.push_back(x);
  Tensor x = Tensor::from_f32({static_cast<int64_t>(xs.size())}, xs);
  Tensor y = run_unary(make_node("Exp", 1), x);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double ref = std::exp(static_cast<double>(xs[i]));
    if (ref > 3.4e38)
      EXPECT_TRUE(std::isinf(y.f32()[i])) << xs[i];
    else if (ref > 1.2e-38)  // normal floats: within 2 ulp
      EXPECT_NEAR(y.f32()[i], ref, 2.4e-7 * ref) << xs[i];
    else
      EXPECT_NEAR(y.f32()[i], ref, 1.5e-45) << xs[i];
  }
}

TEST(Activation, ClipBoundsFromConstantInputs) {
  Tensor lo = Tensor::from_f32({}, {-1.f}), hi = Tensor::from_f32({}, {1.f});
  Tensor x = Tensor::from_f32({4}, {-3.f, -0.5f, 0.5f, 3.f});
  Tensor y = run_layer(make_node("Clip", 3), {nullptr, &lo, &hi}, {&x, nullptr, nullptr})[0];
  expect_close(y, Tensor::from_f32({4}, {-1.f, -0.5f, 0.5f, 1.f}));
}

TEST(Activation, ThreadCountDoesNotChangeTheResult) {
  Tensor x = random_tensor({3, 64, 32, 32}, 5);
  for (const char* op : {"Relu", "Sigmoid", "HardSwish"})
    expect_identical(run_unary(make_node(op, 1), x, 1), run_unary(make_node(op, 1), x, 2));
}

TEST(Activation, RefusesAConstantActivation) {
  Tensor x({2});
  EXPECT_THROW(make_layer(make_node("Relu", 1), {&x}), ModelError);
}

}  // namespace
}  // namespace dnn::test
