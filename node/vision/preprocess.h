// What a model's first layer expects of a camera frame, and the pure function that makes it:
// decoded pixels + spec -> a [1, C, H, W] float tensor (NCHW).
//
// The steps, in order (docs/plans.md, "input"):
//   1. colour: "rgb" / "bgr" channel order, or "gray" (colour to gray as 0.299 R + 0.587 G + 0.114 B,
//      in floats; a gray image fed to a colour model repeats its channel);
//   2. resize, antialiased bilinear exactly as Pillow's Image.resize(BILINEAR) on float ("F") images
//      and torchvision's resize(antialias=True): a triangle filter stretched by the downscale factor,
//      separable, horizontal pass first, no rounding in between. Either to [H, W], or so the shorter
//      side becomes N (the longer one: int(N * long / short), as torchvision);
//   3. centre crop to [H, W], offsets round((size - crop) / 2) half to even, as torchvision;
//   4. value = (sample * scale - mean[c]) / std[c], samples in 0..255.
// Only the cropped region is computed.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "vision/image.h"

namespace dnn {

enum class ColorOrder { Rgb, Bgr, Gray };
const char* to_string(ColorOrder c);

// What a plan file may declare ("input": {...}); unset keys take defaults from the model's input
// shape (resolve_preprocess).
struct PreprocessDecl {
  std::optional<ColorOrder> color;
  std::optional<std::vector<int>> resize;   // [H, W], or [N]: shorter side to N
  std::optional<std::vector<int>> crop;     // [H, W], centre
  std::optional<float> scale;
  std::optional<std::vector<float>> mean, std;
  bool empty() const { return !color && !resize && !crop && !scale && !mean && !std; }
};

// Resolved: everything known, consistent with the model's input.
struct Preprocess {
  ColorOrder color = ColorOrder::Rgb;
  int resize_h = 0, resize_w = 0;   // exact size, or
  int resize_shorter = 0;           // shorter side to this (then resize_h = resize_w = 0)
  int crop_h = 0, crop_w = 0;       // 0 = no crop (then the resize is exact and gives the output)
  float scale = 1.0f / 255.0f;
  std::vector<float> mean, std;     // one per channel; empty = 0 and 1
  int channels() const { return color == ColorOrder::Gray ? 1 : 3; }
  int out_h() const { return crop_h ? crop_h : resize_h; }
  int out_w() const { return crop_w ? crop_w : resize_w; }
  std::string describe() const;     // one line for logs
};

// `input` is the model's input shape, [N, C, H, W] (N may be -1 or 1). Unset keys of `decl` default
// from it: C = 1 -> gray; C = 3 -> rgb; 3 x 224 x 224 -> the ImageNet recipe (resize 256, crop 224,
// ImageNet mean/std); otherwise a resize straight to H x W; scale 1/255; no mean/std.
// Throws Error naming what does not fit (e.g. a crop of 224 x 224 for a 28 x 28 input).
Preprocess resolve_preprocess(const PreprocessDecl& decl, const Shape& input);

// Pure: pixels -> [1, C, out_h, out_w] float tensor. Throws ImageError when the image is smaller than
// a crop with no resize before it.
Tensor preprocess(const Image& img, const Preprocess& p);

// decode_image + preprocess.
Tensor image_to_tensor(const void* data, size_t size, const ImageLimits& limits, const Preprocess& p);

}  // namespace dnn
