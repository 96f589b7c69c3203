// Expand and Tile against hand-written results.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(Expand, BroadcastsToTheShapeOperand) {
  Tensor x = Tensor::from_f32({3, 1}, {1, 2, 3});
  Tensor shape = Tensor::from_i64({3}, {2, 1, 4});  // [3,1] against [2,1,4] -> [2,3,4]
  Tensor y = run_layer(make_node("Expand", 2), {nullptr, &shape}, {&x, nullptr}).at(0);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(y.f32()[(b * 3 + i) * 4 + j], float(i + 1));
}

TEST(Tile, RepeatsEachAxisAndKeepsInt64) {
  Tensor x = Tensor::from_i64({2, 2}, {1, 2, 3, 4});
  Tensor repeats = Tensor::from_i64({2}, {2, 2});
  Tensor y = run_layer(make_node("Tile", 2), {nullptr, &repeats}, {&x, nullptr}, 2).at(0);
  ASSERT_EQ(y.dtype(), DType::i64);
  EXPECT_EQ(y.to_i64_vector(), (std::vector<int64_t>{1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4}));
}

TEST(Expand, RefusesIncompatibleShapesAndRunTimeShapes) {
  Tensor shape = Tensor::from_i64({1}, {4});
  auto layer = make_layer(make_node("Expand", 2), {nullptr, &shape});
  EXPECT_THROW(layer->output_shapes({{3}, {1}}), ShapeError);
  EXPECT_THROW(make_layer(make_node("Expand", 2), {nullptr, nullptr}), ModelError);
}

}  // namespace
}  // namespace dnn::test
