#include "vision/preprocess.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace dnn {

const char* to_string(ColorOrder c) {
  switch (c) {
    case ColorOrder::Rgb: return "rgb";
    case ColorOrder::Bgr: return "bgr";
    case ColorOrder::Gray: return "gray";
  }
  return "?";
}

std::string Preprocess::describe() const {
  std::ostringstream s;
  s << to_string(color) << ", resize ";
  if (resize_shorter)
    s << "shorter side " << resize_shorter;
  else
    s << resize_h << "x" << resize_w;
  if (crop_h) s << ", centre crop " << crop_h << "x" << crop_w;
  s << ", scale " << scale;
  if (!mean.empty()) s << ", mean/std";
  return s.str();
}

Preprocess resolve_preprocess(const PreprocessDecl& decl, const Shape& input) {
  const std::string shape = to_string(input);
  if (input.size() != 4 || (input[1] != 1 && input[1] != 3) || input[2] <= 0 || input[3] <= 0)
    throw Error("the model's input " + shape + " is not an image: frames need an [N, C, H, W] input with 1 or 3 channels");
  const int c = static_cast<int>(input[1]), h = static_cast<int>(input[2]), w = static_cast<int>(input[3]);
  const std::string where = "input preprocessing for a " + shape + " model input: ";
  // The defaults: the ImageNet recipe for 3 x 224 x 224, a plain resize otherwise.
  const bool imagenet = c == 3 && h == 224 && w == 224;
  Preprocess p;
  p.color = decl.color.value_or(c == 1 ? ColorOrder::Gray : ColorOrder::Rgb);
  if (p.channels() != c)
    throw Error(where + "color '" + to_string(p.color) + "' gives " + std::to_string(p.channels()) + " channels, the model takes " +
                std::to_string(c));
  const std::vector<int> resize = decl.resize.value_or(imagenet ? std::vector<int>{256} : std::vector<int>{h, w});
  if (resize.empty() || resize.size() > 2 || *std::min_element(resize.begin(), resize.end()) <= 0)
    throw Error(where + "'resize' must be [H, W] or [N] (shorter side) with sizes > 0");
  if (resize.size() == 1)
    p.resize_shorter = resize[0];
  else
    p.resize_h = resize[0], p.resize_w = resize[1];
  if (decl.crop || imagenet) {
    const std::vector<int> crop = decl.crop.value_or(std::vector<int>{h, w});
    if (crop.size() != 2 || crop[0] <= 0 || crop[1] <= 0) throw Error(where + "'crop' must be [H, W] with sizes > 0");
    p.crop_h = crop[0], p.crop_w = crop[1];
    if (p.crop_h != h || p.crop_w != w)
      throw Error(where + "'crop' [" + std::to_string(p.crop_h) + ", " + std::to_string(p.crop_w) +
                  "] must be the model's input size [" + std::to_string(h) + ", " + std::to_string(w) + "]");
    const bool fits = p.resize_shorter ? p.resize_shorter >= std::max(h, w) : p.resize_h >= h && p.resize_w >= w;
    if (!fits) throw Error(where + "the resize is smaller than the crop");
  } else if (p.resize_shorter || p.resize_h != h || p.resize_w != w) {
    throw Error(where + "without a 'crop', 'resize' must be the model's input size [" + std::to_string(h) + ", " +
                std::to_string(w) + "]");
  }
  p.scale = decl.scale.value_or(1.0f / 255.0f);
  if (!(p.scale > 0)) throw Error(where + "'scale' must be > 0");
  if (imagenet) p.mean = {0.485f, 0.456f, 0.406f}, p.std = {0.229f, 0.224f, 0.225f};
  if (imagenet && p.color == ColorOrder::Bgr) std::reverse(p.mean.begin(), p.mean.end()), std::reverse(p.std.begin(), p.std.end());
  if (decl.mean) p.mean = *decl.mean;
  if (decl.std) p.std = *decl.std;
  if (!p.mean.empty() && p.std.empty()) p.std.assign(c, 1.0f);
  if (!p.std.empty() && p.mean.empty()) p.mean.assign(c, 0.0f);
  if (!p.mean.empty() && (static_cast<int>(p.mean.size()) != c || static_cast<int>(p.std.size()) != c))
    throw Error(where + "'mean' and 'std' need one value per channel (" + std::to_string(c) + ")");
  for (float s : p.std)
    if (!(s > 0)) throw Error(where + "'std' values must be > 0");
  return p;
}

namespace {

// Pillow's antialiased resampling weights (ImagingResample's precompute_coeffs) for the output
// positions [first, first + count) of an in_size -> out_size resize, with the triangle filter.
struct Taps {
  std::vector<int> start, size;
  std::vector<double> weight;   // `width` per output position
  int width = 0;
};

Taps bilinear_taps(int in_size, int out_size, int first, int count) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;   // the triangle's support, stretched when shrinking
  Taps t;
  t.width = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.start.resize(count);
  t.size.resize(count);
  t.weight.assign(static_cast<size_t>(count) * t.width, 0.0);
  for (int i = 0; i < count; ++i) {
    const double center = (first + i + 0.5) * scale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int n = std::min(static_cast<int>(center + support + 0.5), in_size) - lo;
    double* w = &t.weight[static_cast<size_t>(i) * t.width];
    double total = 0;
    for (int k = 0; k < n; ++k) {
      const double x = std::abs((k + lo - center + 0.5) / filterscale);
      w[k] = x < 1.0 ? 1.0 - x : 0.0;
      total += w[k];
    }
    if (total != 0)
      for (int k = 0; k < n; ++k) w[k] /= total;
    t.start[i] = lo;
    t.size[i] = n;
  }
  return t;
}

// round(x / 2) with Python's half-to-even, as torchvision's centre crop computes its offset.
int centre_offset(int excess) {
  const int half = excess / 2;
  return excess % 2 == 0 || half % 2 == 0 ? half : half + 1;
}

}  // namespace

Tensor preprocess(const Image& img, const Preprocess& p) {
  int rh = p.resize_h, rw = p.resize_w;
  if (p.resize_shorter) {
    const int64_t n = p.resize_shorter, shorter = std::min(img.width, img.height), longer = std::max(img.width, img.height);
    const int other = static_cast<int>(n * longer / shorter);
    rh = img.height <= img.width ? static_cast<int>(n) : other;
    rw = img.height <= img.width ? other : static_cast<int>(n);
  }
  const int oh = p.crop_h ? p.crop_h : rh, ow = p.crop_w ? p.crop_w : rw;
  if (oh > rh || ow > rw)
    throw ImageError("image of " + std::to_string(img.width) + " x " + std::to_string(img.height) + " resized to " +
                     std::to_string(rw) + " x " + std::to_string(rh) + " is smaller than the crop");
  const int top = centre_offset(rh - oh), left = centre_offset(rw - ow);
  const Taps cols = bilinear_taps(img.width, rw, left, ow);
  const Taps rows = bilinear_taps(img.height, rh, top, oh);
  const int row_lo = rows.start.front();
  const int row_hi = rows.start.back() + rows.size.back();   // input rows the crop needs: [row_lo, row_hi)

  const int C = p.channels(), src_c = img.channels;
  Tensor out({1, C, oh, ow});
  std::vector<float> horiz(static_cast<size_t>(row_hi - row_lo) * ow);
  for (int c = 0; c < C; ++c) {
    // A sample of output channel c at input pixel (y, x), in 0..255.
    const int from = p.color == ColorOrder::Bgr ? 2 - c : c;
    auto sample = [&](int y, int x) -> double {
      const size_t px = (static_cast<size_t>(y) * img.width + x) * src_c;
      if (src_c == 1) return img.sample(px);
      if (C == 1) return 0.299 * img.sample(px) + 0.587 * img.sample(px + 1) + 0.114 * img.sample(px + 2);
      return img.sample(px + from);
    };
    // Horizontal pass over the rows the vertical pass reads, then the vertical pass (as Pillow).
    for (int y = row_lo; y < row_hi; ++y) {
      float* dst = &horiz[static_cast<size_t>(y - row_lo) * ow];
      for (int x = 0; x < ow; ++x) {
        const double* w = &cols.weight[static_cast<size_t>(x) * cols.width];
        double acc = 0;
        for (int k = 0; k < cols.size[x]; ++k) acc += sample(y, cols.start[x] + k) * w[k];
        dst[x] = static_cast<float>(acc);
      }
    }
    const float mean = p.mean.empty() ? 0.0f : p.mean[c], inv_std = p.std.empty() ? 1.0f : 1.0f / p.std[c];
    float* plane = out.f32() + static_cast<size_t>(c) * oh * ow;
    for (int y = 0; y < oh; ++y) {
      const double* w = &rows.weight[static_cast<size_t>(y) * rows.width];
      for (int x = 0; x < ow; ++x) {
        double acc = 0;
        for (int k = 0; k < rows.size[y]; ++k) acc += horiz[static_cast<size_t>(rows.start[y] + k - row_lo) * ow + x] * w[k];
        plane[static_cast<size_t>(y) * ow + x] = (static_cast<float>(acc) * p.scale - mean) * inv_std;
      }
    }
  }
  return out;
}

Tensor image_to_tensor(const void* data, size_t size, const ImageLimits& limits, const Preprocess& p) {
  return preprocess(decode_image(data, size, limits), p);
}

}  // namespace dnn
