#include "kernels/fully_connected.h"

#include <algorithm>

#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

constexpr int64_t kChunk = 1024;    // outputs per work unit: a 4 KB page of each row of W^T
constexpr int64_t kBatchChunk = 8;  // rows of x whose sums for a chunk stay in L1 together
// Rows of W^T fetched into L2 ahead of their use (64 KB). Measured on AlexNet's fc6, ms: 12.2-13.1
// fetching 4 rows ahead into L1, 8.8-9.2 16 rows ahead into L2, 10.0-12.9 without.
constexpr int64_t kAhead = 16;

}  // namespace

int64_t chunked_index(int64_t o, int64_t k, int64_t rows, int64_t cols, int64_t chunk) {
  const int64_t o0 = o / chunk * chunk;
  return o0 * cols + k * std::min(chunk, rows - o0) + (o - o0);
}

void chunked_transpose_in_place(float* w, int64_t rows, int64_t cols, int64_t chunk) {
  // First each band of `group` rows becomes cols x group, through a scratch copy of the band. The
  // bands are then the elements of a (rows / group) x cols matrix of group-float blocks, which go
  // to their places by following the cycles of the permutation, a bit per block to mark those moved.
  int64_t group = 16;
  while (rows % group || chunk % group) group /= 2;
  std::vector<float> scratch(group * cols);
  for (int64_t r0 = 0; r0 < rows; r0 += group) {
    float* band = w + r0 * cols;
    std::copy(band, band + group * cols, scratch.begin());
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t g = 0; g < group; ++g) band[c * group + g] = scratch[g * cols + c];
  }
  const int64_t bands = rows / group, blocks = bands * cols;
  std::vector<bool> moved(blocks, false);
  std::vector<float> hold(group), next(group);
  for (int64_t start = 0; start < blocks; ++start) {
    if (moved[start]) continue;
    std::copy(w + start * group, w + (start + 1) * group, hold.begin());
    int64_t p = start;
    do {
      // Block p holds rows o .. o + group - 1 of column k: its place is where w(o, k) goes.
      const int64_t to = chunked_index(p / cols * group, p % cols, rows, cols, chunk) / group;
      std::copy(w + to * group, w + (to + 1) * group, next.begin());
      std::copy(hold.begin(), hold.end(), w + to * group);
      hold.swap(next);
      moved[to] = true;
      p = to;
    } while (p != start);
  }
}

FullyConnected::FullyConnected(const float* src, int64_t out, int64_t in, int64_t row_stride,
                               int64_t col_stride, float scale, const float* bias, const Activation& act)
    : out_(out), in_(in), w_(Tensor::uninitialized({out, in})), transposed_(true), bias_(out, 0.f), act_(act) {
  float* w = w_.f32();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) w[chunked_index(o, k, out, in, kChunk)] = src[o * row_stride + k * col_stride] * scale;
  if (bias) std::copy(bias, bias + out, bias_.begin());
}

FullyConnected::FullyConnected(const Tensor& weights, const float* bias, const Activation& act)
    : out_(weights.dim(0)), in_(weights.dim(1)), w_(weights), bias_(out_, 0.f), act_(act) {
  if (bias) std::copy(bias, bias + out_, bias_.begin());
}

void FullyConnected::prepare() const {
  std::call_once(prepared_, [&] {
    if (transposed_) return;
    if (w_.sole_owner()) {
      chunked_transpose_in_place(w_.f32(), out_, in_, kChunk);
    } else {
      Tensor t = Tensor::uninitialized({out_, in_});
      const float* w = w_.f32();
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t k = 0; k < in_; ++k) t.f32()[chunked_index(o, k, out_, in_, kChunk)] = w[o * in_ + k];
      w_ = t;
    }
    transposed_ = true;
  });
}

void FullyConnected::forward(const float* x, int64_t batch, float* y, ThreadPool& pool) const {
  using namespace simd;
  prepare();
  // The input features nonzero in some row of x: the rows of W^T this call reads.
  std::vector<int32_t> live;
  live.reserve(in_);
  for (int64_t k = 0; k < in_; ++k)
    for (int64_t b = 0; b < batch; ++b)
      if (x[b * in_ + k] != 0.f) {
        live.push_back(static_cast<int32_t>(k));
        break;
      }
  const float* wt = w_.f32();
  const int64_t chunks = (out_ + kChunk - 1) / kChunk, n_live = static_cast<int64_t>(live.size());
  // Work units: chunks, cut into parts when there are fewer chunks than threads (1000 outputs).
  const int64_t parts = chunks >= pool.size() ? 1 : (pool.size() + chunks - 1) / chunks;
  pool.parallel_for(chunks * parts, [&](int64_t u0, int64_t u1) {
    alignas(64) thread_local float sums[kBatchChunk * kChunk];
    for (int64_t u = u0; u < u1; ++u) {
      // Outputs [o0 + j0, o0 + j1) of the chunk at o0, whose rows of W^T are n floats long.
      const int64_t o0 = u / parts * kChunk, n = std::min(kChunk, out_ - o0);
      const int64_t width = ((n + parts - 1) / parts + kWidth - 1) / kWidth * kWidth;
      const int64_t j0 = std::min(n, u % parts * width), cols = std::min(n, j0 + width) - j0;
      const float* chunk = wt + o0 * in_ + j0;
      for (int64_t b0 = 0; b0 < batch; b0 += kBatchChunk) {
        const int64_t nb = std::min(kBatchChunk, batch - b0);
        std::fill(sums, sums + nb * kChunk, 0.f);
        for (int64_t i = 0; i < n_live; ++i) {
          if (i + kAhead < n_live) {
            const float* ahead = chunk + live[i + kAhead] * n;
            for (int64_t j = 0; j < cols; j += 16) __builtin_prefetch(ahead + j, 0, 2);
          }
          const int64_t k = live[i];
          const float* w = chunk + k * n;
          for (int64_t b = 0; b < nb; ++b) {
            const float xk = x[(b0 + b) * in_ + k];
            if (xk == 0.f) continue;  // this row's sums skip it, as if alone in the batch
            const Vec xv = set1(xk);
            float* s = sums + b * kChunk;
            int64_t j = 0;
            for (; j + kWidth <= cols; j += kWidth) storeu(s + j, fma(xv, loadu(w + j), loadu(s + j)));
            if (j < cols) {
              const int m = static_cast<int>(cols - j);
              storeu_n(s + j, fma(xv, loadu_n(w + j, m), loadu_n(s + j, m)), m);
            }
          }
        }
        for (int64_t b = 0; b < nb; ++b) {
          float* yb = y + (b0 + b) * out_ + o0 + j0;
          const float* s = sums + b * kChunk;
          for (int64_t j = 0; j < cols; ++j) yb[j] = s[j] + bias_[o0 + j0 + j];
          finish_row(yb, cols, 0.f, nullptr, act_);
        }
      }
    }
  }, 1);
}

}  // namespace kernels
}  // namespace dnn
