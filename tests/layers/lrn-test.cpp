// LRN across channels on a batch (AlexNet's 5-channel window), against the ONNX formula.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(Lrn, MatchesFormulaOnABatch) {
  const int64_t N = 2, C = 7, P = 9, size = 5;
  const float alpha = 1e-4f, beta = 0.75f, bias = 2.f;
  Tensor x = random_tensor({N, C, 3, 3}, 1, -10.f, 10.f);
  Attrs a;
  a.set("size", size);
  a.set("alpha", alpha);
  a.set("beta", beta);
  a.set("bias", bias);
  Tensor y = run_unary(make_node("LRN", 1, a), x);
  Tensor ref(x.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < P; ++i) {
        double sq = 0;
        for (int64_t k = std::max<int64_t>(0, c - 2); k <= std::min<int64_t>(C - 1, c + 2); ++k)
          sq += std::pow(x.f32()[(n * C + k) * P + i], 2);
        ref.f32()[(n * C + c) * P + i] = x.f32()[(n * C + c) * P + i] / std::pow(bias + alpha / size * sq, beta);
      }
  expect_close(y, ref);
}

}  // namespace
}  // namespace dnn::test
