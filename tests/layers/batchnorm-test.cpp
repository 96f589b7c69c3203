// Standalone BatchNormalization (inference form) on batch > 1 and on 2-D input (after a Gemm).
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(BatchNorm, NormalisesEachChannelOfABatch) {
  for (Shape shape : {Shape{3, 4, 5, 6}, Shape{3, 4}}) {
    SCOPED_TRACE(to_string(shape));
    Tensor x = random_tensor(shape, 1);
    Tensor scale = random_tensor({4}, 2), bias = random_tensor({4}, 3), mean = random_tensor({4}, 4);
    Tensor var = random_tensor({4}, 5, 0.1f, 2.f);
    Attrs a;
    a.set("epsilon", 1e-3f);
    Node n = make_node("BatchNormalization", 5, a);
    Tensor y = run_layer(n, {nullptr, &scale, &bias, &mean, &var}, {&x, nullptr, nullptr, nullptr, nullptr})[0];
    Tensor ref(shape);
    const int64_t plane = x.numel() / (3 * 4);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t c = (i / plane) % 4;
      ref.f32()[i] = (x.f32()[i] - mean.f32()[c]) / std::sqrt(var.f32()[c] + 1e-3f) * scale.f32()[c] + bias.f32()[c];
    }
    expect_close(y, ref);
  }
}

TEST(BatchNorm, AppliesAFusedActivation) {
  Tensor x = random_tensor({2, 3, 4, 4}, 6);
  Tensor one = Tensor::from_f32({3}, {1.f, 1.f, 1.f}), zero({3});
  Attrs a;
  a.set("epsilon", 0.f);
  a.set("dnn.activation", std::string("Clip"));
  a.set("dnn.act_min", 0.f);
  a.set("dnn.act_max", 1.f);
  Tensor y = run_layer(make_node("BatchNormalization", 5, a), {nullptr, &one, &zero, &zero, &one},
                       {&x, nullptr, nullptr, nullptr, nullptr})[0];
  Tensor ref(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) ref.f32()[i] = std::min(std::max(x.f32()[i], 0.f), 1.f);
  expect_close(y, ref);
}

TEST(BatchNorm, RunTimeStatisticsAndWrongChannelsAreRefused) {
  Tensor p = random_tensor({4}, 1);
  Node n = make_node("BatchNormalization", 5);
  EXPECT_THROW(make_layer(n, {nullptr, nullptr, &p, &p, &p}), ModelError);
  Tensor x({2, 3, 2, 2});
  EXPECT_THROW(run_layer(n, {nullptr, &p, &p, &p, &p}, {&x, nullptr, nullptr, nullptr, nullptr}), ShapeError);
}

}  // namespace
}  // namespace dnn::test
