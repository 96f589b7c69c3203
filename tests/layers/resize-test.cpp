// Nearest-neighbour Upsample/Resize on a batch: integer scale factors repeat each pixel.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(Resize, UpsampleByTwoRepeatsPixelsOnABatch) {
  Tensor x = random_tensor({2, 3, 4, 5}, 1);
  Attrs a;
  a.set("scales", std::vector<float>{1.f, 1.f, 2.f, 3.f});
  for (const char* op : {"Upsample", "Resize"}) {
    SCOPED_TRACE(op);
    Attrs attrs = a;
    if (std::string(op) == "Resize") {  // Upsample's fixed semantics, spelled out
      attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
      attrs.set("nearest_mode", std::string("floor"));
    }
    Tensor y = run_unary(make_node(op, 1, attrs), x);
    ASSERT_EQ((Shape{2, 3, 8, 15}), y.shape());
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t h = 0; h < 8; ++h)
        for (int64_t w = 0; w < 15; ++w)
          ASSERT_EQ(x.f32()[(p * 4 + h / 2) * 5 + w / 3], y.f32()[(p * 8 + h) * 15 + w]);
  }
}

TEST(Resize, SizesOverrideScales) {
  Tensor x = random_tensor({1, 1, 4, 4}, 2);
  Attrs a;
  a.set("sizes", std::vector<int64_t>{1, 1, 2, 2});
  // half_pixel maps output o to 2o + 0.5, a tie that round_prefer_floor sends to 2o: rows/columns 0, 2.
  Tensor y = run_unary(make_node("Resize", 1, a), x);
  ASSERT_EQ((Shape{1, 1, 2, 2}), y.shape());
  EXPECT_EQ(x.f32()[0], y.f32()[0]);
  EXPECT_EQ(x.f32()[2 * 4 + 2], y.f32()[3]);
}

TEST(Resize, BilinearAlignCornersOnABatch) {
  // Each 2x2 plane [[a, b], [c, d]] grows to 3x3 with the midpoints averaged.
  Tensor x = random_tensor({2, 3, 2, 2}, 3);
  Attrs a;
  a.set("mode", std::string("linear"));
  a.set("coordinate_transformation_mode", std::string("align_corners"));
  a.set("sizes", std::vector<int64_t>{2, 3, 3, 3});
  Tensor y = run_unary(make_node("Resize", 1, a), x);
  Tensor ref({2, 3, 3, 3});
  for (int64_t p = 0; p < 6; ++p) {
    const float* v = x.f32() + p * 4;
    const float top[3] = {v[0], (v[0] + v[1]) / 2, v[1]}, bottom[3] = {v[2], (v[2] + v[3]) / 2, v[3]};
    for (int j = 0; j < 3; ++j) {
      ref.f32()[p * 9 + j] = top[j];
      ref.f32()[p * 9 + 3 + j] = (top[j] + bottom[j]) / 2;
      ref.f32()[p * 9 + 6 + j] = bottom[j];
    }
  }
  expect_close(y, ref);
}

TEST(Resize, CropAndResizeExtrapolatesOutsideTheInput) {
  // roi rows [-1, 2] of a 2-row input in 4 steps: rows -1, 0, 1, 2; the outer two lie outside.
  Tensor x = Tensor::from_f32({1, 1, 2, 2}, {1.f, 2.f, 3.f, 4.f});
  Attrs a;
  a.set("mode", std::string("linear"));
  a.set("coordinate_transformation_mode", std::string("tf_crop_and_resize"));
  a.set("roi", std::vector<float>{0.f, 0.f, -1.f, 0.f, 1.f, 1.f, 2.f, 1.f});
  a.set("sizes", std::vector<int64_t>{1, 1, 4, 2});
  a.set("extrapolation_value", 7.f);
  Tensor y = run_unary(make_node("Resize", 1, a), x);
  expect_close(y, Tensor::from_f32({1, 1, 4, 2}, {7.f, 7.f, 1.f, 2.f, 3.f, 4.f, 7.f, 7.f}));
}

TEST(Resize, UnknownModeIsAModelError) {
  Attrs a;
  a.set("mode", std::string("lanczos"));
  a.set("scales", std::vector<float>{1.f, 1.f, 2.f, 2.f});
  EXPECT_THROW(make_layer(make_node("Resize", 1, a), {nullptr}), ModelError);
}

}  // namespace
}  // namespace dnn::test
