// Concat on batch > 1 along channels (GoogLeNet, DenseNet), with a constant part, and Split back.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Node axis_node(const char* op, size_t inputs, int64_t axis, size_t outputs = 1) {
  Attrs a;
  a.set("axis", axis);
  return make_node(op, inputs, a, outputs);
}

TEST(Concat, ChannelsOfABatchWithAConstantPart) {
  Tensor a = random_tensor({2, 3, 4, 4}, 1), b = random_tensor({2, 1, 4, 4}, 2), k = random_tensor({2, 2, 4, 4}, 3);
  Tensor y = run_layer(axis_node("Concat", 3, 1), {nullptr, &k, nullptr}, {&a, nullptr, &b})[0];
  ASSERT_EQ((Shape{2, 6, 4, 4}), y.shape());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 6; ++c)
      for (int64_t i = 0; i < 16; ++i) {
        const Tensor& src = c < 3 ? a : c < 5 ? k : b;
        const int64_t sc = c < 3 ? c : c < 5 ? c - 3 : 0;
        ASSERT_EQ(src.f32()[(n * src.dim(1) + sc) * 16 + i], y.f32()[(n * 6 + c) * 16 + i]);
      }
}

TEST(Concat, TwoThreadsSplitTheCopies) {
  Tensor a = random_tensor({2, 64, 28, 28}, 1), b = random_tensor({2, 32, 28, 28}, 2);
  Node concat = axis_node("Concat", 2, 1);
  Tensor one = run_layer(concat, {nullptr, nullptr}, {&a, &b}, 1)[0];
  expect_identical(run_layer(concat, {nullptr, nullptr}, {&a, &b}, 2)[0], one);
  Node split = axis_node("Split", 1, 1, 2);
  split.attrs.set("split", std::vector<int64_t>{64, 32});
  auto parts = run_layer(split, {nullptr}, {&one}, 2);
  expect_identical(parts[0], a);
  expect_identical(parts[1], b);
}

TEST(Concat, MismatchedShapesAreAShapeError) {
  Tensor a({2, 3, 4}), b({2, 3, 5});
  EXPECT_THROW(run_layer(axis_node("Concat", 2, 1), {nullptr, nullptr}, {&a, &b}), ShapeError);
}

TEST(Split, UndoesConcatOnABatch) {
  Tensor a = random_tensor({2, 3, 5}, 4), b = random_tensor({2, 1, 5}, 5), c = random_tensor({2, 4, 5}, 6);
  Tensor joined = run_layer(axis_node("Concat", 3, -2), {nullptr, nullptr, nullptr}, {&a, &b, &c})[0];
  Node split = axis_node("Split", 1, 1, 3);
  split.attrs.set("split", std::vector<int64_t>{3, 1, 4});
  auto parts = run_layer(split, {nullptr}, {&joined});
  ASSERT_EQ(3u, parts.size());
  expect_identical(parts[0], a);
  expect_identical(parts[1], b);
  expect_identical(parts[2], c);
}

TEST(Split, EqualPartsAndUnevenDimension) {
  Tensor x = random_tensor({2, 6}, 7);
  auto parts = run_layer(axis_node("Split", 1, 1, 3), {nullptr}, {&x});
  ASSERT_EQ(3u, parts.size());
  EXPECT_EQ(x.f32()[6 + 4], parts[2].f32()[2]);
  Tensor odd({2, 7});
  EXPECT_THROW(run_layer(axis_node("Split", 1, 1, 3), {nullptr}, {&odd}), ShapeError);
}

}  // namespace
}  // namespace dnn::test
