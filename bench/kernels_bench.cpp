// Kernel benchmark: GFLOP/s of the convolution and fully-connected kernels on the shapes of the
// benchmark models (LeNet-5, MobileNetV2, ResNet18, AlexNet, VGG16), one JSON line per shape.
//   kernels_bench [--threads N] [--seconds S] [--filter SUBSTRING] [--cold 1]
// --cold 1 cycles through 16 copies of each convolution (each with its own weights and input), so
// weights come from L3 or memory as inside a model, not from L2 as in a loop over one layer.
// Each figure is the median of 5 samples; a sample repeats the op for about S/5 seconds. With one
// thread the time is the process's CPU time, so other jobs on a shared machine distort it less.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/conv2d.h"
#include "kernels/fully_connected.h"

using namespace dnn;
using namespace dnn::kernels;

namespace {

double now(bool cpu_time) {
  timespec t;
  clock_gettime(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

double seconds_per_run(const std::function<void()>& op, double budget, bool cpu_time) {
  op();  // warm-up: caches, page faults
  std::vector<double> samples;
  for (int s = 0; s < 5; ++s) {
    int reps = 0;
    const double t0 = now(cpu_time);
    double elapsed = 0;
    do {
      op();
      ++reps;
      elapsed = now(cpu_time) - t0;
    } while (elapsed < budget / 5);
    samples.push_back(elapsed / reps);
  }
  std::sort(samples.begin(), samples.end());
  return samples[2];
}

std::vector<float> random_floats(size_t n) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

struct ConvShape {
  const char* name;
  int64_t in_ch, out_ch, groups, k, stride, pad, h;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  double budget = 1.0;
  std::string filter;
  int copies = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) budget = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--filter")) filter = argv[i + 1];
    else if (!std::strcmp(argv[i], "--cold")) copies = std::atoi(argv[i + 1]) ? 16 : 1;
  }
  ThreadPool pool(threads);
  // Buffers a kernel takes per call (B packed once, padded inputs, Winograd's weights) come from the
  // activations' cache, as under the executor; without it each call would page-fault them afresh.
  set_buffer_cache_limit(64 << 20);
  Activation relu;
  relu.kind = ActKind::Relu;

  const ConvShape convs[] = {
      {"conv3x3 64->64 @56 (ResNet18 layer1)", 64, 64, 1, 3, 1, 1, 56},
      {"conv3x3 256->256 @56", 256, 256, 1, 3, 1, 1, 56},
      {"conv3x3 64->64 @224 (VGG16 conv1_2)", 64, 64, 1, 3, 1, 1, 224},
      {"conv3x3 256->256 @56 (VGG16 conv3_x)", 256, 256, 1, 3, 1, 1, 56},
      {"conv3x3 512->512 @28 (VGG16 conv4_x)", 512, 512, 1, 3, 1, 1, 28},
      {"conv7x7/2 3->64 @224 (ResNet18 conv1)", 3, 64, 1, 7, 2, 3, 224},
      {"conv3x3/2 3->32 @224 (MobileNetV2 first)", 3, 32, 1, 3, 2, 1, 224},
      {"conv3x3/2 64->128 @56 (ResNet18 layer2.0)", 64, 128, 1, 3, 2, 1, 56},
      {"conv1x1/2 64->128 @56 (ResNet18 downsample)", 64, 128, 1, 1, 2, 0, 56},
      {"conv1x1/2 128->256 @28 (ResNet18 downsample)", 128, 256, 1, 1, 2, 0, 28},
      {"conv3x3 128->128 @28 (ResNet18 layer2)", 128, 128, 1, 3, 1, 1, 28},
      {"conv3x3 256->256 @14 (ResNet18 layer3)", 256, 256, 1, 3, 1, 1, 14},
      {"conv3x3 512->512 @7 (ResNet18 layer4)", 512, 512, 1, 3, 1, 1, 7},
      {"conv11x11/4 3->64 @224 (AlexNet conv1)", 3, 64, 1, 11, 4, 2, 224},
      {"conv5x5 64->192 @27 (AlexNet conv2)", 64, 192, 1, 5, 1, 2, 27},
      {"conv1x1 32->192 @56", 32, 192, 1, 1, 1, 0, 56},
      {"conv1x1 24->144 @56 (MobileNetV2 expand)", 24, 144, 1, 1, 1, 0, 56},
      {"conv1x1 144->24 @56 (MobileNetV2 project)", 144, 24, 1, 1, 1, 0, 56},
      {"conv1x1 320->1280 @7 (MobileNetV2 last)", 320, 1280, 1, 1, 1, 0, 7},
      {"conv1x1 960->320 @7 (MobileNetV2 project)", 960, 320, 1, 1, 1, 0, 7},
      {"conv1x1 160->960 @7 (MobileNetV2 expand)", 160, 960, 1, 1, 1, 0, 7},
      {"conv1x1 96->576 @14 (MobileNetV2 expand)", 96, 576, 1, 1, 1, 0, 14},
      {"conv1x1 576->96 @14 (MobileNetV2 project)", 576, 96, 1, 1, 1, 0, 14},
      {"conv1x1 64->384 @14 (MobileNetV2 expand)", 64, 384, 1, 1, 1, 0, 14},
      {"conv1x1 384->64 @14 (MobileNetV2 project)", 384, 64, 1, 1, 1, 0, 14},
      {"conv1x1 960->160 @7 (MobileNetV2 project)", 960, 160, 1, 1, 1, 0, 7},
      {"conv3x3 384->256 @13 (AlexNet conv4)", 384, 256, 1, 3, 1, 1, 13},
      {"conv3x3/2 256->512 @14 (ResNet18 layer4.0)", 256, 512, 1, 3, 2, 1, 14},
      {"depthwise3x3 144ch @56", 144, 144, 144, 3, 1, 1, 56},
      {"depthwise3x3/2 144ch @56 (MobileNetV2)", 144, 144, 144, 3, 2, 1, 56},
      {"depthwise3x3 960ch @7 (MobileNetV2)", 960, 960, 960, 3, 1, 1, 7},
      {"depthwise3x3 384ch @14 (MobileNetV2)", 384, 384, 384, 3, 1, 1, 14},
      {"depthwise3x3 192ch @28 (MobileNetV2)", 192, 192, 192, 3, 1, 1, 28},
      {"depthwise3x3/2 576ch @14 (MobileNetV2)", 576, 576, 576, 3, 2, 1, 14},
      {"depthwise3x3 32ch @112 (MobileNetV2)", 32, 32, 32, 3, 1, 1, 112},
      {"depthwise3x3 576ch @14 (MobileNetV2)", 576, 576, 576, 3, 1, 1, 14},
      {"depthwise5x5 240ch @14 (MobileNetV3)", 240, 240, 240, 5, 1, 2, 14},
  };
  for (const ConvShape& s : convs) {
    if (!filter.empty() && std::string(s.name).find(filter) == std::string::npos) continue;
    ConvParams p;
    p.in_ch = s.in_ch;
    p.out_ch = s.out_ch;
    p.groups = s.groups;
    p.kh = p.kw = s.k;
    p.stride_h = p.stride_w = s.stride;
    p.pad_t = p.pad_l = p.pad_b = p.pad_r = s.pad;
    const auto w = random_floats(s.out_ch * s.in_ch / s.groups * s.k * s.k), bias = random_floats(s.out_ch);
    std::vector<std::vector<float>> x(copies, random_floats(s.in_ch * s.h * s.h));
    std::vector<float> y(s.out_ch * p.out_h(s.h) * p.out_w(s.h));
    std::vector<std::unique_ptr<Conv2d>> conv;
    for (int c = 0; c < copies; ++c) conv.push_back(std::make_unique<Conv2d>(p, w.data(), bias.data(), relu));
    int next = 0;
    const double t = seconds_per_run(
        [&] {
          conv[next]->forward(x[next].data(), 1, s.h, s.h, nullptr, y.data(), pool);
          next = (next + 1) % copies;
        },
        budget, threads == 1);
    const double flops = 2.0 * y.size() * (s.in_ch / s.groups) * s.k * s.k;
    std::printf("{\"op\": \"conv\", \"shape\": \"%s\", \"threads\": %d, \"ms\": %.3f, \"gflops\": %.1f}\n", s.name,
                threads, t * 1e3, flops / t * 1e-9);
    std::fflush(stdout);
  }

  const struct {
    const char* name;
    int64_t in, out, batch;
  } fcs[] = {
      {"fc 9216->4096 batch 1 (AlexNet fc6)", 9216, 4096, 1},
      {"fc 9216->4096 batch 8", 9216, 4096, 8},
      {"fc 25088->4096 batch 1 (VGG16 fc6)", 25088, 4096, 1},
      {"fc 4096->4096 batch 1", 4096, 4096, 1},
      {"fc 1280->1000 batch 1 (MobileNetV2)", 1280, 1000, 1},
  };
  for (const auto& f : fcs) {
    if (!filter.empty() && std::string(f.name).find(filter) == std::string::npos) continue;
    const auto w = random_floats(f.in * f.out), bias = random_floats(f.out), x = random_floats(f.in * f.batch);
    const FullyConnected fc(w.data(), f.out, f.in, f.in, 1, 1.f, bias.data(), relu);
    std::vector<float> y(f.out * f.batch);
    const double t = seconds_per_run([&] { fc.forward(x.data(), f.batch, y.data(), pool); }, budget, threads == 1);
    const double flops = 2.0 * f.in * f.out * f.batch;
    std::printf("{\"op\": \"fc\", \"shape\": \"%s\", \"threads\": %d, \"ms\": %.3f, \"gflops\": %.1f, \"weight_gb_per_s\": %.1f}\n",
                f.name, threads, t * 1e3, flops / t * 1e-9, 4.0 * f.in * f.out / t * 1e-9);
    std::fflush(stdout);
  }
  return 0;
}
