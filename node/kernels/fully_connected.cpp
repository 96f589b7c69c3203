#include "kernels/fully_connected.h"

#include <algorithm>

#include "kernels/simd.h"

namespace dnn {
namespace kernels {
namespace {

constexpr int64_t kBatchChunk = 8;  // rows of x sharing a pass over the weights
constexpr int64_t kRowBlock = 16;   // small layers: weight rows per work item
// Rows of W^T fetched into L2 ahead of their use (64 KB). Measured on AlexNet's fc6, ms: 12.2-13.1
// fetching 4 rows ahead into L1, 8.8-9.2 16 rows ahead into L2, 10.0-12.9 without.
constexpr int64_t kAhead = 16;

// dots[r * NB + b] = <w row r, x row b> for R weight rows and NB rows of x. The k loop runs in
// vectors, then a horizontal sum, then the scalar tail: the same order for every (R, NB), so an
// output never depends on the batch size or on how rows were grouped.
template <int R, int NB>
void dot_rows(const float* w, int64_t K, const float* x, float* dots) {
  using namespace simd;
  // Every loop over r and b unrolled: the accumulators then live in registers, not in an array.
  Vec acc[R][NB];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) acc[r][b] = zero();
  int64_t k = 0;
  for (; k + kWidth <= K; k += kWidth) {
    if (R == 2 && NB == 4) DNN_MCA_BEGIN("fc_dot_2x4");
    Vec wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = loadu(w + r * K + k);
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const Vec xv = loadu(x + b * K + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][b] = fma(wv[r], xv, acc[r][b]);
    }
    if (R == 2 && NB == 4) DNN_MCA_END("fc_dot_2x4");
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      float s = hsum(acc[r][b]);
      for (int64_t t = k; t < K; ++t) s += w[r * K + t] * x[b * K + t];
      dots[r * NB + b] = s;
    }
}

// Rows [o0, o1) of W against NB rows of x; y row stride is `out`.
template <int NB>
void rows_times_batch(const float* w, int64_t K, int64_t o0, int64_t o1, const float* x, float* y, int64_t out) {
  // As many weight rows per pass as the registers allow next to NB accumulators each.
  constexpr int R = NB <= 2 ? 4 : NB <= 3 ? 3 : NB <= 4 ? 2 : 1;
  float dots[R * NB];
  int64_t o = o0;
  for (; o + R <= o1; o += R) {
    dot_rows<R, NB>(w + o * K, K, x, dots);
    for (int r = 0; r < R; ++r)
      for (int b = 0; b < NB; ++b) y[b * out + o + r] = dots[r * NB + b];
  }
  for (; o < o1; ++o) {
    dot_rows<1, NB>(w + o * K, K, x, dots);
    for (int b = 0; b < NB; ++b) y[b * out + o] = dots[b];
  }
}

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
    : out_(out), in_(in), chunked_(out * in >= kChunkedFloats), w_(Tensor::uninitialized({out, in})),
      prepared_form_(true), bias_(out, 0.f), act_(act) {
  float* w = w_.f32();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k)
      w[chunked_ ? chunked_index(o, k, out, in, kFcChunk) : o * in + k] = src[o * row_stride + k * col_stride] * scale;
  if (bias) std::copy(bias, bias + out, bias_.begin());
}

FullyConnected::FullyConnected(const Tensor& weights, const float* bias, const Activation& act)
    : out_(weights.dim(0)),
      in_(weights.dim(1)),
      chunked_(out_ * in_ >= kChunkedFloats),
      w_(weights),
      prepared_form_(!chunked_),  // small layers use the rows as they are
      bias_(out_, 0.f),
      act_(act) {
  if (bias) std::copy(bias, bias + out_, bias_.begin());
}

void FullyConnected::prepare() const {
  std::call_once(prepared_, [&] {
    if (prepared_form_) return;
    if (w_.sole_owner()) {
      chunked_transpose_in_place(w_.f32(), out_, in_, kFcChunk);
    } else {
      Tensor t = Tensor::uninitialized({out_, in_});
      const float* w = w_.f32();
      for (int64_t o = 0; o < out_; ++o)
        for (int64_t k = 0; k < in_; ++k) t.f32()[chunked_index(o, k, out_, in_, kFcChunk)] = w[o * in_ + k];
      w_ = t;
    }
    prepared_form_ = true;
  });
}

void FullyConnected::forward(const float* x, int64_t batch, float* y, ThreadPool& pool) const {
  using namespace simd;
  prepare();
  if (!chunked_) {
    forward_rows(x, batch, y, pool);
    return;
  }
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
  const int64_t chunks = (out_ + kFcChunk - 1) / kFcChunk, n_live = static_cast<int64_t>(live.size());
  // Work units: chunks, cut into parts when there are fewer chunks than threads (1000 outputs).
  const int64_t parts = chunks >= pool.size() ? 1 : (pool.size() + chunks - 1) / chunks;
  pool.parallel_for(chunks * parts, [&](int64_t u0, int64_t u1) {
    alignas(64) thread_local float sums[kBatchChunk * kFcChunk];
    for (int64_t u = u0; u < u1; ++u) {
      // Outputs [o0 + j0, o0 + j1) of the chunk at o0, whose rows of W^T are n floats long.
      const int64_t o0 = u / parts * kFcChunk, n = std::min(kFcChunk, out_ - o0);
      const int64_t width = ((n + parts - 1) / parts + kWidth - 1) / kWidth * kWidth;
      const int64_t j0 = std::min(n, u % parts * width), cols = std::min(n, j0 + width) - j0;
      const float* chunk = wt + o0 * in_ + j0;
      for (int64_t b0 = 0; b0 < batch; b0 += kBatchChunk) {
        const int64_t nb = std::min(kBatchChunk, batch - b0);
        std::fill(sums, sums + nb * kFcChunk, 0.f);
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
            float* s = sums + b * kFcChunk;
            int64_t j = 0;
            for (; j + kWidth <= cols; j += kWidth) {
              DNN_MCA_BEGIN("fc_stream");
              storeu(s + j, fma(xv, loadu(w + j), loadu(s + j)));
              DNN_MCA_END("fc_stream");
            }
            if (j < cols) {
              const int m = static_cast<int>(cols - j);
              storeu_n(s + j, fma(xv, loadu_n(w + j, m), loadu_n(s + j, m)), m);
            }
          }
        }
        for (int64_t b = 0; b < nb; ++b) {
          float* yb = y + (b0 + b) * out_ + o0 + j0;
          const float* s = sums + b * kFcChunk;
          for (int64_t j = 0; j < cols; ++j) yb[j] = s[j] + bias_[o0 + j0 + j];
          finish_row(yb, cols, 0.f, nullptr, act_);
        }
      }
    }
  }, 1);
}

void FullyConnected::forward_rows(const float* x, int64_t batch, float* y, ThreadPool& pool) const {
  const int64_t blocks = (out_ + kRowBlock - 1) / kRowBlock;
  pool.parallel_for(blocks, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      const int64_t o0 = blk * kRowBlock, o1 = std::min(out_, o0 + kRowBlock);
      for (int64_t b0 = 0; b0 < batch; b0 += kBatchChunk) {
        const float* xb = x + b0 * in_;
        float* yb = y + b0 * out_;
        switch (std::min(kBatchChunk, batch - b0)) {
          case 1: rows_times_batch<1>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 2: rows_times_batch<2>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 3: rows_times_batch<3>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 4: rows_times_batch<4>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 5: rows_times_batch<5>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 6: rows_times_batch<6>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          case 7: rows_times_batch<7>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
          default: rows_times_batch<8>(w_.f32(), in_, o0, o1, xb, yb, out_); break;
        }
        for (int64_t b = b0; b < std::min(batch, b0 + kBatchChunk); ++b)
          for (int64_t o = o0; o < o1; ++o) finish_row(y + b * out_ + o, 1, bias_[o], nullptr, act_);
      }
    }
  }, 1);
}

}  // namespace kernels
}  // namespace dnn
