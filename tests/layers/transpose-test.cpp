// Transpose on batch > 1, including ShuffleNet's 5-D channel shuffle, against an index reference.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Tensor reference(const Tensor& x, const std::vector<int64_t>& perm) {
  Shape out_shape;
  for (int64_t p : perm) out_shape.push_back(x.dim(static_cast<int>(p)));
  Tensor y(out_shape);
  auto st = strides_of(x.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    auto idx = unflatten(i, out_shape);
    int64_t src = 0;
    for (size_t d = 0; d < perm.size(); ++d) src += idx[d] * st[perm[d]];
    y.f32()[i] = x.f32()[src];
  }
  return y;
}

TEST(Transpose, MatchesIndexReference) {
  const std::pair<Shape, std::vector<int64_t>> cases[] = {
      {{2, 2, 3, 4, 5}, {0, 2, 1, 3, 4}},  // channel shuffle
      {{2, 3, 4, 5}, {0, 2, 3, 1}},        // NCHW -> NHWC
      {{2, 3, 4, 5}, {3, 1, 0, 2}},
      {{3, 1, 4}, {1, 0, 2}},              // moving a size-1 dimension
  };
  for (auto& [shape, perm] : cases) {
    SCOPED_TRACE(to_string(shape) + " perm " + to_string(perm));
    Tensor x = random_tensor(shape, 6);
    Attrs a;
    a.set("perm", perm);
    expect_close(run_unary(make_node("Transpose", 1, a), x), reference(x, perm));
  }
  Tensor x = random_tensor({2, 3, 4}, 7);
  expect_close(run_unary(make_node("Transpose", 1), x), reference(x, {2, 1, 0}));  // default: reversed
}

TEST(Transpose, TwoThreadsCopyTheSameRows) {
  Tensor x = random_tensor({2, 4, 58, 28, 28}, 8);  // ShuffleNet's channel shuffle, large enough to split
  Attrs a;
  a.set("perm", std::vector<int64_t>{0, 2, 1, 3, 4});
  Tensor one = run_unary(make_node("Transpose", 1, a), x, 1);
  expect_identical(run_unary(make_node("Transpose", 1, a), x, 2), one);
  expect_close(one, reference(x, {0, 2, 1, 3, 4}));
}

TEST(Transpose, BadPermIsAShapeError) {
  Attrs a;
  a.set("perm", std::vector<int64_t>{0, 0, 1});
  Tensor x({2, 3, 4});
  EXPECT_THROW(run_unary(make_node("Transpose", 1, a), x), ShapeError);
}

}  // namespace
}  // namespace dnn::test
