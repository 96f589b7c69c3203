// libFuzzer target: any bytes through the camera frame decoders (JPEG via TurboJPEG, PNG via
// libspng) and the ImageNet preprocessing. Refusals are ImageError; anything else — a crash, a
// sanitizer report, another exception, an allocation over the limits — is a bug.
//   cmake -S . -B build-fuzz -DDNN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ && cmake --build build-fuzz --target image_decode_fuzz
//   build-fuzz/fuzz/image_decode_fuzz -rss_limit_mb=512 -max_len=262144 corpus/
#include <cstddef>
#include <cstdint>

#include "vision/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small limits keep each run fast and make the pixel limit reachable from short inputs.
  static const dnn::ImageLimits limits{1u << 20, 1u << 20};
  static const dnn::Preprocess imagenet = dnn::resolve_preprocess({}, {1, 3, 224, 224});
  try {
    dnn::image_to_tensor(data, size, limits, imagenet);
  } catch (const dnn::ImageError&) {
  }
  return 0;
}
