// Unary math layers against values computed independently (Python's math module, 17 digits).
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

void expect_values(const std::string& op, const std::vector<float>& x, const std::vector<float>& ref, Attrs a = {}) {
  Tensor in = Tensor::from_f32({int64_t(x.size())}, x);
  Tensor y = run_unary(make_node(op, 1, a), in);
  expect_close(y, Tensor::from_f32({int64_t(ref.size())}, ref));
}

TEST(Unary, MatchesReferenceValues) {
  expect_values("Abs", {-3.f, 0.f, 2.5f}, {3.f, 0.f, 2.5f});
  expect_values("Neg", {-3.f, 2.f}, {3.f, -2.f});
  expect_values("Sqrt", {4.f, 2.f}, {2.f, 1.4142135623730951f});
  expect_values("Reciprocal", {4.f, -0.5f}, {0.25f, -2.f});
  expect_values("Erf", {0.5f, -1.f}, {0.5204998778130465f, -0.8427007929497149f});
  expect_values("Gelu", {1.f, -1.f}, {0.8413447460685429f, -0.15865525393145707f});
  Attrs tanh;
  tanh.set("approximate", std::string("tanh"));
  expect_values("Gelu", {1.f}, {0.8411919906082768f}, tanh);
  expect_values("Mish", {1.f, -1.f, 30.f}, {0.8650983882673103f, -0.30340146137410895f, 30.f});
  expect_values("Softplus", {1.f, 0.f, 100.f}, {1.3132616875182228f, 0.6931471805599453f, 100.f});
  expect_values("Softsign", {1.f, -3.f}, {0.5f, -0.75f});
  expect_values("Elu", {-1.f, 2.f}, {-0.6321205588285577f, 2.f});
  Attrs alpha;
  alpha.set("alpha", 2.f);
  expect_values("Elu", {-1.f}, {-1.2642411176571153f}, alpha);
  expect_values("Selu", {-1.f, 2.f}, {-1.1113307378125625f, 2.1014020442505644f});
}

TEST(Unary, SplitAcrossThreadsGivesTheSameResult) {
  Tensor x = random_tensor({3, 50000}, 4);
  expect_identical(run_unary(make_node("Gelu", 1), x, 1), run_unary(make_node("Gelu", 1), x, 2));
}

TEST(Unary, RefusesUnknownGeluApproximation) {
  Attrs a;
  a.set("approximate", std::string("fast"));
  Tensor x({1});
  EXPECT_THROW(make_layer(make_node("Gelu", 1, a), {nullptr}), ModelError);
}

}  // namespace
}  // namespace dnn::test
