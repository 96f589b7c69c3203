// Preprocessing against an independent decoder and resampler (Pillow + numpy, run at test time):
// every colour layout of JPEG and PNG through the ImageNet recipe (640 x 480 -> shorter side 256 ->
// centre crop 224, mean/std) gives the reference tensor within the documented tolerance.
#include <gtest/gtest.h>

#include <cmath>

#include "core/npy.h"
#include "reference_images.h"
#include "vision/preprocess.h"

namespace dnn {
namespace {

using test::read_bytes;
using test::reference_images_dir;

const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new test::ReferenceImagesCleanup);

// The documented tolerance (docs/plans.md): |ours - reference| <= 1e-5 * (1 + |reference|), in the
// tensor's own units after mean/std.
constexpr float kTolerance = 1e-5f;

Preprocess imagenet(ColorOrder color = ColorOrder::Rgb) {
  PreprocessDecl d;
  d.color = color;
  return resolve_preprocess(d, {1, 3, 224, 224});
}

::testing::AssertionResult matches(const Tensor& y, const Tensor& ref) {
  if (y.shape() != ref.shape())
    return ::testing::AssertionFailure() << "shape " << to_string(y.shape()) << " vs " << to_string(ref.shape());
  float worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const float excess = std::abs(y.f32()[i] - ref.f32()[i]) / (1 + std::abs(ref.f32()[i]));
    if (excess > worst) worst = excess, at = i;
  }
  if (worst <= kTolerance) return ::testing::AssertionSuccess() << "worst " << worst;
  return ::testing::AssertionFailure() << "element " << at << ": " << y.f32()[at] << " vs reference " << ref.f32()[at]
                                       << " (relative excess " << worst << ")";
}

void expect_reference(const std::string& image, const std::string& recipe, const Preprocess& p) {
  const std::string dir = reference_images_dir();
  const std::string bytes = read_bytes(dir + "/" + image);
  const Tensor y = image_to_tensor(bytes.data(), bytes.size(), {}, p);
  EXPECT_TRUE(matches(y, read_npy(dir + "/" + image + "." + recipe + ".npy"))) << image << " through " << recipe;
}

TEST(Preprocess, JpegOfEachColourLayoutMatchesPillow) {
  expect_reference("rgb.jpg", "imagenet", imagenet());
  expect_reference("gray.jpg", "imagenet", imagenet());
}

TEST(Preprocess, PngOfEachColourTypeMatchesPillow) {
  for (const char* name : {"rgb.png", "gray.png", "rgba.png", "palette.png", "rgb16.png", "gray16.png"})
    expect_reference(name, "imagenet", imagenet());
}

TEST(Preprocess, PortraitAndEnlargedImagesMatchPillow) {
  expect_reference("portrait.png", "imagenet", imagenet());   // shorter side the width; crop offset 107.5 -> 108
  expect_reference("small.png", "imagenet", imagenet());      // 100 x 80 enlarged to 320 x 256
}

TEST(Preprocess, BgrAndGrayModelsMatchReference) {
  expect_reference("rgb.png", "bgr", imagenet(ColorOrder::Bgr));
  expect_reference("rgb.jpg", "gray28", resolve_preprocess({}, {1, 1, 28, 28}));
}

TEST(Preprocess, CmykJpegIsRefused) {
  const std::string bytes = read_bytes(reference_images_dir() + "/cmyk.jpg");
  try {
    image_to_tensor(bytes.data(), bytes.size(), {}, imagenet());
    FAIL() << "a CMYK JPEG was accepted";
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("CMYK JPEG is not supported"), std::string::npos) << e.what();
  }
}

TEST(Preprocess, DefaultsComeFromTheModelInputShape) {
  const Preprocess lenet = resolve_preprocess({}, {1, 1, 28, 28});
  EXPECT_EQ(lenet.color, ColorOrder::Gray);
  EXPECT_EQ(lenet.resize_h, 28);
  EXPECT_EQ(lenet.resize_w, 28);
  EXPECT_EQ(lenet.crop_h, 0);
  EXPECT_TRUE(lenet.mean.empty());
  EXPECT_FLOAT_EQ(lenet.scale, 1.0f / 255.0f);

  const Preprocess in = imagenet();
  EXPECT_EQ(in.resize_shorter, 256);
  EXPECT_EQ(in.crop_h, 224);
  EXPECT_EQ(in.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(in.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
  EXPECT_EQ(imagenet(ColorOrder::Bgr).mean, (std::vector<float>{0.406f, 0.456f, 0.485f}));

  const Preprocess other = resolve_preprocess({}, {-1, 3, 96, 128});
  EXPECT_EQ(other.color, ColorOrder::Rgb);
  EXPECT_EQ(other.resize_h, 96);
  EXPECT_EQ(other.resize_w, 128);
}

TEST(Preprocess, DeclarationsThatDoNotFitTheModelAreRefused) {
  auto refused = [](PreprocessDecl d, const Shape& input, const std::string& why) {
    try {
      resolve_preprocess(d, input);
      ADD_FAILURE() << "accepted; expected: " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  PreprocessDecl rgb;
  rgb.color = ColorOrder::Rgb;
  refused(rgb, {1, 1, 28, 28}, "color 'rgb' gives 3 channels, the model takes 1");
  PreprocessDecl crop;
  crop.crop = std::vector<int>{224, 224};
  refused(crop, {1, 1, 28, 28}, "'crop' [224, 224] must be the model's input size [28, 28]");
  PreprocessDecl small;
  small.resize = std::vector<int>{200};
  refused(small, {1, 3, 224, 224}, "the resize is smaller than the crop");
  PreprocessDecl mean;
  mean.mean = std::vector<float>{0.5f};
  refused(mean, {1, 3, 224, 224}, "one value per channel (3)");
  refused({}, {1, 4, 28, 28}, "is not an image");
  refused({}, {1, 3, -1, -1}, "is not an image");
  PreprocessDecl odd;
  odd.resize = std::vector<int>{32};
  refused(odd, {1, 1, 28, 28}, "without a 'crop', 'resize' must be the model's input size [28, 28]");
}

}  // namespace
}  // namespace dnn
