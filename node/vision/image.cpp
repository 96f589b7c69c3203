#include "vision/image.h"

#include <cstring>
#include <memory>

#include <spng.h>
#include <turbojpeg.h>

namespace dnn {

const char* to_string(ImageFormat f) {
  switch (f) {
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

ImageFormat sniff_image(const void* data, size_t size) {
  static const uint8_t kJpeg[] = {0xFF, 0xD8, 0xFF};
  static const uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= sizeof kJpeg && std::memcmp(data, kJpeg, sizeof kJpeg) == 0) return ImageFormat::Jpeg;
  if (size >= sizeof kPng && std::memcmp(data, kPng, sizeof kPng) == 0) return ImageFormat::Png;
  return ImageFormat::Unknown;
}

namespace {

void check_pixels(const char* what, uint64_t width, uint64_t height, const ImageLimits& limits) {
  if (width == 0 || height == 0)
    throw ImageError("corrupt " + std::string(what) + " (header): no image size (" + std::to_string(width) + " x " +
                     std::to_string(height) + "), truncated?");
  if (width * height > limits.max_pixels)
    throw ImageError(std::string(what) + " of " + std::to_string(width) + " x " + std::to_string(height) +
                     " pixels is over the limit of " + std::to_string(limits.max_pixels) + " pixels");
}

Image decode_jpeg(const uint8_t* data, size_t size, const ImageLimits& limits) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) throw ImageError("cannot start the JPEG decoder");
  auto fail = [&](const std::string& step) {
    throw ImageError("corrupt JPEG (" + step + "): " + tjGetErrorStr2(tj.get()));
  };
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, size, &width, &height, &subsamp, &colorspace) != 0) fail("header");
  check_pixels("JPEG", static_cast<uint64_t>(width), static_cast<uint64_t>(height), limits);
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
    throw ImageError("CMYK JPEG is not supported: send grayscale or RGB (YCbCr) JPEG");
  Image img;
  img.format = ImageFormat::Jpeg;
  img.width = width;
  img.height = height;
  img.channels = colorspace == TJCS_GRAY ? 1 : 3;
  img.narrow.resize(static_cast<size_t>(width) * height * img.channels);
  // Accurate DCT and fancy upsampling (TurboJPEG's defaults, as Pillow decodes); a warning such as a
  // truncated file is an error; progressive files with absurd scan counts are refused.
  const int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS | TJFLAG_ACCURATEDCT;
  if (tjDecompress2(tj.get(), data, size, img.narrow.data(), width, 0, height,
                    img.channels == 1 ? TJPF_GRAY : TJPF_RGB, flags) != 0)
    fail("pixels");
  return img;
}

Image decode_png(const uint8_t* data, size_t size, const ImageLimits& limits) {
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> ctx(spng_ctx_new(0), spng_ctx_free);
  if (!ctx) throw ImageError("cannot start the PNG decoder");
  auto check = [](int rc, const char* step) {
    if (rc != 0) throw ImageError(std::string("corrupt PNG (") + step + "): " + spng_strerror(rc));
  };
  // Ancillary chunks (text, ICC profiles) are bounded by the payload's own size limit.
  check(spng_set_chunk_limits(ctx.get(), limits.max_bytes, limits.max_bytes), "limits");
  check(spng_set_png_buffer(ctx.get(), data, size), "buffer");
  spng_ihdr ihdr{};
  check(spng_get_ihdr(ctx.get(), &ihdr), "header");
  check_pixels("PNG", ihdr.width, ihdr.height, limits);
  Image img;
  img.format = ImageFormat::Png;
  img.width = static_cast<int>(ihdr.width);
  img.height = static_cast<int>(ihdr.height);
  const bool gray = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE || ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
  img.channels = gray ? 1 : 3;
  const size_t pixels = static_cast<size_t>(img.width) * img.height;
  if (ihdr.bit_depth == 16) {
    // libspng gives 16-bit samples as RGBA16 (host order) for every colour type; keep what we need.
    img.depth = 16;
    size_t bytes = 0;
    check(spng_decoded_image_size(ctx.get(), SPNG_FMT_RGBA16, &bytes), "size");
    std::vector<uint16_t> rgba(bytes / 2);
    check(spng_decode_image(ctx.get(), rgba.data(), bytes, SPNG_FMT_RGBA16, 0), "pixels");
    img.wide.resize(pixels * img.channels);
    for (size_t p = 0; p < pixels; ++p)
      for (int c = 0; c < img.channels; ++c) img.wide[p * img.channels + c] = rgba[p * 4 + c];
    return img;
  }
  // Palette, low bit depths, tRNS: libspng expands every colour type to RGB8 (gray as R = G = B).
  size_t bytes = 0;
  check(spng_decoded_image_size(ctx.get(), SPNG_FMT_RGB8, &bytes), "size");
  std::vector<uint8_t> rgb(bytes);
  check(spng_decode_image(ctx.get(), rgb.data(), bytes, SPNG_FMT_RGB8, 0), "pixels");
  if (!gray) {
    img.narrow = std::move(rgb);
    return img;
  }
  img.narrow.resize(pixels);
  for (size_t p = 0; p < pixels; ++p) img.narrow[p] = rgb[p * 3];
  return img;
}

}  // namespace

Image decode_image(const void* data, size_t size, const ImageLimits& limits) {
  if (size == 0) throw ImageError("empty payload: no image");
  if (size > limits.max_bytes)
    throw ImageError("image of " + std::to_string(size) + " bytes is over the limit of " +
                     std::to_string(limits.max_bytes) + " bytes");
  const auto* bytes = static_cast<const uint8_t*>(data);
  switch (sniff_image(data, size)) {
    case ImageFormat::Jpeg: return decode_jpeg(bytes, size, limits);
    case ImageFormat::Png: return decode_png(bytes, size, limits);
    case ImageFormat::Unknown: break;
  }
  throw ImageError("not a JPEG or PNG image (unknown magic bytes)");
}

}  // namespace dnn
