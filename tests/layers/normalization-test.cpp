// LayerNormalization and InstanceNormalization against hand-computed results.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(Normalization, LayerNormalizationOverTheLastAxis) {
  Attrs a;
  a.set("epsilon", 0.f);
  Tensor x = Tensor::from_f32({1, 4}, {1, 2, 3, 4});  // mean 2.5, variance 1.25
  Tensor scale = Tensor::from_f32({4}, {1, 1, 2, 2}), bias = Tensor::from_f32({4}, {0, 0, 0, 1});
  Node n = make_node("LayerNormalization", 3, a, 3);
  auto out = run_layer(n, {nullptr, &scale, &bias}, {&x, nullptr, nullptr});
  expect_close(out[0], Tensor::from_f32({1, 4}, {-1.3416407865f, -0.4472135955f, 0.894427191f, 3.683281573f}));
  expect_close(out[1], Tensor::from_f32({1, 1}, {2.5f}));
  expect_close(out[2], Tensor::from_f32({1, 1}, {0.894427191f}));  // 1 / sqrt(1.25)
}

TEST(Normalization, InstanceNormalizationPerChannel) {
  Tensor x = Tensor::from_f32({1, 2, 2}, {1, 3, 2, 2});  // channel 0: mean 2, variance 1; channel 1: constant
  Tensor scale = Tensor::from_f32({2}, {2, 3}), bias = Tensor::from_f32({2}, {0.5f, -1});
  Tensor y = run_layer(make_node("InstanceNormalization", 3), {nullptr, &scale, &bias}, {&x, nullptr, nullptr}).at(0);
  expect_close(y, Tensor::from_f32({1, 2, 2}, {-1.5f, 2.5f, -1, -1}));
}

}  // namespace
}  // namespace dnn::test
