// Decoding camera frames: each layout decodes to the channels and depth it has, and hostile input
// (truncated, lying about its size, random, empty, too large, of another type) is refused with a
// message naming what was wrong, before any pixel buffer of the claimed size exists.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <random>

#include "reference_images.h"
#include "vision/image.h"

namespace dnn {
namespace {

using test::read_bytes;
using test::reference_images_dir;

const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new test::ReferenceImagesCleanup);

std::string image(const std::string& name) { return read_bytes(reference_images_dir() + "/" + name); }

// The ImageError message decode_image() gives for `bytes`, or "" when it accepts them.
std::string refusal(const std::string& bytes, const ImageLimits& limits = {}) {
  try {
    decode_image(bytes.data(), bytes.size(), limits);
  } catch (const ImageError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REFUSED(bytes, why, ...)                                              \
  do {                                                                               \
    const std::string msg = refusal(bytes, ##__VA_ARGS__);                          \
    EXPECT_NE(msg.find(why), std::string::npos) << "refusal: '" << msg << "'";       \
  } while (0)

int64_t peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string png_chunk(const std::string& kind, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + kind + data + be32(crc32(kind + data));
}

// A well-formed PNG header for a width x height RGB image, then a few bytes of IDAT and IEND.
std::string png_claiming(uint32_t width, uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
         png_chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) + png_chunk("IEND", "");
}

TEST(Image, SniffsByMagicBytes) {
  EXPECT_EQ(sniff_image("\xFF\xD8\xFF\xE0", 4), ImageFormat::Jpeg);
  EXPECT_EQ(sniff_image("\x89PNG\r\n\x1a\n", 8), ImageFormat::Png);
  EXPECT_EQ(sniff_image("\x89PNG", 4), ImageFormat::Unknown);   // too short to be sure
  EXPECT_EQ(sniff_image("GIF89a", 6), ImageFormat::Unknown);
}

TEST(Image, DecodesEachLayoutToItsChannelsAndDepth) {
  struct Case {
    const char* name;
    ImageFormat format;
    int channels, depth;
  };
  for (const Case& c : {Case{"rgb.jpg", ImageFormat::Jpeg, 3, 8}, Case{"gray.jpg", ImageFormat::Jpeg, 1, 8},
                        Case{"rgb.png", ImageFormat::Png, 3, 8}, Case{"gray.png", ImageFormat::Png, 1, 8},
                        Case{"rgba.png", ImageFormat::Png, 3, 8}, Case{"palette.png", ImageFormat::Png, 3, 8},
                        Case{"rgb16.png", ImageFormat::Png, 3, 16}, Case{"gray16.png", ImageFormat::Png, 1, 16}}) {
    const std::string bytes = image(c.name);
    const Image img = decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.format, c.format) << c.name;
    EXPECT_EQ(img.width, 640) << c.name;
    EXPECT_EQ(img.height, 480) << c.name;
    EXPECT_EQ(img.channels, c.channels) << c.name;
    EXPECT_EQ(img.depth, c.depth) << c.name;
    EXPECT_EQ((c.depth == 16 ? img.wide.size() : img.narrow.size()), size_t(640 * 480 * c.channels)) << c.name;
  }
}

TEST(Image, TruncatedJpegAndPngAreRefused) {
  const std::string jpeg = image("rgb.jpg"), png = image("rgb.png");
  // libjpeg only warns about a premature end and would fill the rest with grey.
  EXPECT_REFUSED(jpeg.substr(0, jpeg.size() / 2), "corrupt JPEG (pixels)");
  EXPECT_REFUSED(jpeg.substr(0, jpeg.size() - 2), "corrupt JPEG (pixels)");   // only the EOI marker missing
  EXPECT_REFUSED(jpeg.substr(0, 40), "corrupt JPEG (header)");
  EXPECT_REFUSED(png.substr(0, png.size() / 2), "corrupt PNG (pixels)");
  EXPECT_REFUSED(png.substr(0, 20), "corrupt PNG (header)");
}

TEST(Image, HugeClaimedSizesAreRefusedFromTheHeaderWithoutAllocating) {
  const int64_t before = peak_rss_kb();
  EXPECT_REFUSED(png_claiming(60000, 60000), "PNG of 60000 x 60000 pixels is over the limit of 12000000 pixels");
  // The same lie in a JPEG: the start-of-frame marker of a real file patched to 60000 x 60000.
  std::string jpeg = image("rgb.jpg");
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpeg.replace(sof + 5, 4, std::string("\xEA\x60\xEA\x60", 4));
  EXPECT_REFUSED(jpeg, "JPEG of 60000 x 60000 pixels is over the limit of 12000000 pixels");
  // 60,000 x 60,000 x 3 bytes would be 10.8 GB: nothing near it was touched.
  EXPECT_LT(peak_rss_kb() - before, 64 * 1024);
  // A limit of the caller's own is the one applied.
  ImageLimits tight;
  tight.max_pixels = 640 * 479;
  EXPECT_REFUSED(image("rgb.png"), "PNG of 640 x 480 pixels is over the limit of 306560 pixels", tight);
}

TEST(Image, RandomEmptyAndOversizedPayloadsAreRefused) {
  std::mt19937 rng(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  EXPECT_REFUSED(noise, "not a JPEG or PNG image (unknown magic bytes)");
  EXPECT_REFUSED("\xFF\xD8\xFF" + noise, "corrupt JPEG");
  EXPECT_REFUSED(std::string("\x89PNG\r\n\x1a\n", 8) + noise, "corrupt PNG");
  EXPECT_REFUSED("", "empty payload: no image");
  ImageLimits limits;
  limits.max_bytes = 1 << 20;
  const std::string big = image("rgb.png") + std::string((3 << 20) - image("rgb.png").size(), '\0');
  EXPECT_REFUSED(big, "image of 3145728 bytes is over the limit of 1048576 bytes", limits);
  EXPECT_REFUSED(image("cmyk.jpg"), "CMYK JPEG is not supported");
}

}  // namespace
}  // namespace dnn
