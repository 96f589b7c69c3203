// Camera frame cost against the model's: decoding, preprocessing (the model's default recipe, or
// ImageNet's for 3 x 224 x 224) and one run of the whole model, each the median of N runs of the
// process's CPU time (other jobs on a shared machine distort it less). One JSON line.
//   frame_bench IMAGE.jpg|png MODEL.onnx|dnns [RUNS=50]
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "engine/executor.h"
#include "engine/model.h"
#include "vision/preprocess.h"

namespace {

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

double median_ms(int runs, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const double t0 = cpu_ms();
    fn();
    ms.push_back(cpu_ms() - t0);
  }
  std::nth_element(ms.begin(), ms.begin() + runs / 2, ms.end());
  return ms[runs / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: frame_bench IMAGE MODEL [RUNS]\n");
    return 1;
  }
  const int runs = argc > 3 ? std::max(1, std::atoi(argv[3])) : 50;
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  try {
    dnn::Executor ex(dnn::load_model(argv[2]));
    const dnn::Preprocess p = dnn::resolve_preprocess({}, ex.inputs().at(0).shape);
    dnn::Image img;
    const double decode = median_ms(runs, [&] { img = dnn::decode_image(bytes.data(), bytes.size()); });
    dnn::Tensor x;
    const double prep = median_ms(runs, [&] { x = dnn::preprocess(img, p); });
    const double model = median_ms(std::max(1, runs / 5), [&] { ex.run({x}); });
    std::printf("{\"image\":\"%dx%d\",\"recipe\":\"%s\",\"decode_ms\":%.2f,\"preprocess_ms\":%.2f,\"model_ms\":%.2f}\n",
                img.width, img.height, p.describe().c_str(), decode, prep, model);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "frame_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
