// Slice on 4-D batches: steps, negative steps and indices, clamping, against an index reference.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Node slice_node(std::vector<int64_t> starts, std::vector<int64_t> ends, std::vector<int64_t> axes,
                std::vector<int64_t> steps) {
  Attrs a;
  a.set("starts", starts);
  a.set("ends", ends);
  a.set("axes", axes);
  a.set("steps", steps);
  return make_node("Slice", 1, a);
}

TEST(Slice, SpatialCropWithStepsOnABatch) {
  Tensor x = random_tensor({2, 3, 8, 9}, 1);
  // H: 1, 3, 5; W: 8, 5, 2 (backwards from the last column).
  Tensor y = run_unary(slice_node({1, -1}, {6, -1000}, {2, 3}, {2, -3}), x);
  ASSERT_EQ((Shape{2, 3, 3, 3}), y.shape());
  const int64_t hs[] = {1, 3, 5}, ws[] = {8, 5, 2};
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          EXPECT_EQ(x.f32()[((n * 3 + c) * 8 + hs[i]) * 9 + ws[j]], y.f32()[((n * 3 + c) * 3 + i) * 3 + j]);
}

TEST(Slice, ChannelRangeAndEmptyResult) {
  Tensor x = random_tensor({2, 6, 2, 2}, 2);
  Tensor y = run_unary(slice_node({2}, {4}, {1}, {1}), x);
  ASSERT_EQ((Shape{2, 2, 2, 2}), y.shape());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(x.f32()[n * 24 + 8 + i], y.f32()[n * 8 + i]);
  EXPECT_EQ((Shape{2, 0, 2, 2}), run_unary(slice_node({4}, {2}, {1}, {1}), x).shape());
}

TEST(Slice, ZeroStepIsAModelError) {
  EXPECT_THROW(make_layer(slice_node({0}, {1}, {0}, {0}), {nullptr}), ModelError);
}

}  // namespace
}  // namespace dnn::test
