// Camera frames as pixels: JPEG through libjpeg-turbo's TurboJPEG API, PNG through libspng, both
// well-kept decoders meant for untrusted input. Nothing else is accepted.
//
// decode_image() checks, in this order and before any pixel buffer exists: the payload is not empty
// and not over max_bytes; its magic bytes say JPEG or PNG; the header parses; width x height is
// within max_pixels. Only then are pixels decoded, and any decoder complaint — including the
// warnings libjpeg gives for a truncated file ("premature end of data"), made fatal with
// TJFLAG_STOPONWARNING — refuses the image. Every refusal is an ImageError saying what was wrong.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace dnn {

struct ImageError : Error { using Error::Error; };

enum class ImageFormat { Unknown, Jpeg, Png };
const char* to_string(ImageFormat f);

// The format the first bytes announce (JPEG: FF D8 FF; PNG: its 8-byte signature).
ImageFormat sniff_image(const void* data, size_t size);

struct ImageLimits {
  size_t max_bytes = 10u << 20;          // encoded size
  uint64_t max_pixels = 12'000'000;      // width x height from the header (a 4000 x 3000 photo)
};

// Decoded pixels, interleaved, top row first. Grayscale images keep one channel; colour ones have
// three (R, G, B); alpha is dropped (as Pillow's convert("RGB") does), palettes are expanded.
// 16-bit PNG samples stay 16-bit (depth 16, in `wide`); everything else is 8-bit (in `narrow`).
struct Image {
  ImageFormat format = ImageFormat::Unknown;
  int width = 0, height = 0, channels = 0, depth = 8;
  std::vector<uint8_t> narrow;
  std::vector<uint16_t> wide;

  // A sample in the 0..255 range; 16-bit samples as v / 257 (65535 -> 255, precision kept).
  float sample(size_t index) const { return depth == 16 ? wide[index] * (1.0f / 257.0f) : narrow[index]; }
};

// Throws ImageError (see above).
Image decode_image(const void* data, size_t size, const ImageLimits& limits = {});

}  // namespace dnn
