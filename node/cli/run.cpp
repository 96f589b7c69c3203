// dnnswarm run: the whole model on this machine. The reference every swarm result is compared with.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "core/npy.h"
#include "engine/executor.h"
#include "engine/model.h"

namespace dnn::cli {

// Rows [b, e) of a tensor along its first (batch) dimension, as a view.
static Tensor batch_rows(const Tensor& t, int64_t b, int64_t e) {
  Shape s = t.shape();
  int64_t row = t.numel() / std::max<int64_t>(1, s[0]);
  s[0] = e - b;
  return Tensor::wrap(s, DType::f32, const_cast<float*>(t.f32()) + b * row, nullptr);
}

int cmd_run(int argc, char** argv) {
  po::options_description opts("options");
  std::string model, input, output, labels;
  int threads = 1;
  int64_t batch = 0;
  opts.add_options()
      ("model,m", po::value(&model)->required(), "model file (.onnx or .dnns)")
      ("input,i", po::value(&input)->required(), "input tensor (.npy, float32, NCHW; batch as in the file)")
      ("output,o", po::value(&output), "where to write the output tensor (.npy)")
      ("threads,t", po::value(&threads)->default_value(1), "compute threads")
      ("batch,b", po::value(&batch)->default_value(0), "frames per forward pass (0 = the whole input at once)")
      ("labels,l", po::value(&labels), "int64 .npy of class labels: print top-1 accuracy");
  po::variables_map vm;
  if (!parse(argc, argv, "--model M --input x.npy [--output y.npy] [options]", opts, vm)) return 0;

  Tensor x = read_npy(input);
  if (x.dtype() != DType::f32 || x.rank() < 1) throw ShapeError(input + ": expected a float32 tensor with a batch dimension");
  Graph g = load_model(model);
  Executor ex(std::move(g), ExecOptions{threads});
  if (ex.inputs().size() != 1) throw Error("run takes models with one input; this one has " + std::to_string(ex.inputs().size()));

  const int64_t n = x.dim(0);
  const int64_t step = batch > 0 ? batch : n;
  std::vector<Tensor> parts;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < n; b += step) parts.push_back(ex.run({batch_rows(x, b, std::min(n, b + step))})[0]);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Stack the per-chunk outputs back into one tensor.
  Shape ys = parts[0].shape();
  ys[0] = n;
  Tensor y(ys);
  size_t off = 0;
  for (auto& p : parts) {
    std::memcpy(y.f32() + off, p.f32(), p.bytes());
    off += p.numel();
  }
  if (!output.empty()) write_npy(output, y);

  std::fprintf(stderr, "run: %lld frame(s) in %.3f s (%.1f frames/s)\n", (long long)n, secs, n / secs);
  if (!labels.empty()) {
    Tensor l = read_npy(labels);
    auto lv = l.to_i64_vector();
    if (static_cast<int64_t>(lv.size()) < n) throw ShapeError(labels + ": fewer labels than frames");
    const int64_t classes = y.numel() / n;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float* row = y.f32() + i * classes;
      correct += std::max_element(row, row + classes) - row == lv[i];
    }
    std::printf("{\"frames\":%lld,\"correct\":%lld,\"accuracy\":%.4f}\n", (long long)n, (long long)correct,
                double(correct) / n);
  }
  return 0;
}

}  // namespace dnn::cli
