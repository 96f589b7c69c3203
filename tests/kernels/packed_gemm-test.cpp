// Packed GEMM and the fully-connected kernel against double-precision references on random data:
// sizes around every tile edge (MR, NR, KC, NC), strided operands, fused epilogues; 1 and 2 threads
// must agree bit for bit, and a fully-connected output must not depend on the batch it is in.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/fully_connected.h"
#include "kernels/gemm.h"
#include "kernels/reference.h"

namespace dnn {
namespace {

using kernels::ActKind;
using kernels::Activation;

TEST(Gemm, MatchesReferenceAroundTileEdges) {
  const int64_t Ms[] = {1, kernels::kMR - 1, kernels::kMR + 1, 2 * kernels::kMC + 5};
  const int64_t Ks[] = {1, 7, kernels::kKC, kernels::kKC + 3, 2 * kernels::kKC + 1};
  const int64_t Ns[] = {1, kernels::kNR - 1, kernels::kNR + 1, kernels::kNC + 17};
  ThreadPool one(1), two(2);
  unsigned seed = 10;
  for (int64_t M : Ms)
    for (int64_t K : Ks)
      for (int64_t N : Ns) {
        const bool trans_a = (M + K) % 2, trans_b = (K + N) % 2;
        const auto a = testref::random_floats(M * K, ++seed), b = testref::random_floats(K * N, ++seed);
        const auto bias = testref::random_floats(M, ++seed), res = testref::random_floats(M * N, ++seed);
        Activation act;
        act.kind = ActKind::Relu;
        kernels::Epilogue ep;
        ep.bias = bias.data();
        ep.residual = res.data();
        ep.act = act;
        std::vector<double> ref(M * N);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double s = bias[m] + res[m * N + n];
            for (int64_t k = 0; k < K; ++k)
              s += 0.5 * (trans_a ? a[k * M + m] : a[m * K + k]) * double(trans_b ? b[n * K + k] : b[k * N + n]);
            ref[m * N + n] = testref::activate(act, s);
          }
        const kernels::MatrixPacker B(b.data(), trans_b ? 1 : N, trans_b ? K : 1);
        std::vector<float> y1(M * N), y2(M * N);
        kernels::gemm(a.data(), trans_a ? 1 : K, trans_a ? M : 1, 0.5f, B, M, K, N, y1.data(), N, ep, one);
        kernels::gemm(a.data(), trans_a ? 1 : K, trans_a ? M : 1, 0.5f, B, M, K, N, y2.data(), N, ep, two);
        const std::string what = "M" + std::to_string(M) + " K" + std::to_string(K) + " N" + std::to_string(N);
        testref::expect_close(y1.data(), ref, what);
        EXPECT_TRUE(testref::bitwise_equal(y1, y2)) << what;
      }
}

// Units cover C exactly once, in column tiles of equal width (whole strips; at most NC on one
// thread), and split evenly over the threads.
TEST(GemmTiling, CoversTheProductOnceInEvenUnits) {
  const int64_t shapes[][2] = {{512, 784}, {64, 3136}, {8, 17}, {1000, 1}, {24, 12544}, {7, 400}};
  for (const auto& shape : shapes)
    for (int threads : {1, 2, 3}) {
      const int64_t M = shape[0], N = shape[1];
      const kernels::GemmTiling tiling(M, N, threads);
      std::vector<int> covered(M * N, 0);
      int64_t widest = 0, narrowest = N;
      for (int64_t u = 0; u < tiling.units(); ++u) {
        int64_t m0, m1, n0, n1;
        tiling.unit(u, m0, m1, n0, n1);
        EXPECT_EQ(0, m0 % kernels::kMR);
        EXPECT_EQ(0, n0 % kernels::kNR);
        if (threads == 1) EXPECT_LE(n1 - n0, kernels::kNC);
        if (n1 < N) widest = std::max(widest, n1 - n0), narrowest = std::min(narrowest, n1 - n0);
        for (int64_t m = m0; m < m1; ++m)
          for (int64_t n = n0; n < n1; ++n) ++covered[m * N + n];
      }
      const std::string what = std::to_string(M) + "x" + std::to_string(N) + " on " + std::to_string(threads);
      EXPECT_TRUE(std::all_of(covered.begin(), covered.end(), [](int c) { return c == 1; })) << what;
      if (widest > 0) EXPECT_EQ(widest, narrowest) << what;  // every tile but the last one as wide
      if (threads > 1 && (M + kernels::kMR - 1) / kernels::kMR >= 4 * threads)
        EXPECT_EQ(0, tiling.units() % threads) << what;
      // Columns enough for every thread: one column tile each, no row chunks (so no shared B).
      if (threads > 1 && (N + kernels::kNR - 1) / kernels::kNR >= 2 * threads) {
        EXPECT_EQ(threads, tiling.n_tiles) << what;
        EXPECT_EQ(1, tiling.m_chunks) << what;
      }
    }
  // 784 columns (VGG16's conv4): with 16-lane vectors 3 x 288, not 384 + 384 + 16; on any build the
  // last tile is at least half as wide as the others.
  const kernels::GemmTiling vgg_conv4(512, 784, 2);
  EXPECT_GT(784 - (vgg_conv4.n_tiles - 1) * vgg_conv4.n_step, vgg_conv4.n_step / 2);
}

TEST(FullyConnected, MatchesReferenceForEveryBatchSize) {
  // Over 1024 outputs: several chunks, split over two threads. x has zeros, as after a ReLU, in
  // different places in each row, and whole features zero in every row.
  const int64_t outs[] = {1, 5, 33, 1000, 2100};
  const int64_t ins[] = {1, 7, 64, 301};
  ThreadPool one(1), two(2);
  for (int64_t O : outs)
    for (int64_t I : ins)
      for (bool transposed : {false, true}) {
        const int64_t batch_max = 19;
        const auto w = testref::random_floats(O * I, 5);
        auto x = testref::random_floats(batch_max * I, 6);
        for (int64_t i = 0; i < batch_max * I; ++i)
          if (x[i] < -0.2f || i % I % 5 == 3) x[i] = 0.f;
        const auto bias = testref::random_floats(O, 7);
        Activation act;
        act.kind = ActKind::LeakyRelu;
        act.alpha = 0.2f;
        // transposed: the weights stored in x W form (in x out), as MatMul/Gemm transB=0 give them.
        const kernels::FullyConnected fc(w.data(), O, I, transposed ? 1 : I, transposed ? O : 1, 2.f, bias.data(), act);
        std::vector<float> alone(O);
        fc.forward(x.data(), 1, alone.data(), one);
        for (int64_t batch : {1, 2, 3, 4, 5, 8, 9, 19}) {
          std::vector<double> ref(batch * O);
          for (int64_t b = 0; b < batch; ++b)
            for (int64_t o = 0; o < O; ++o) {
              double s = bias[o];
              for (int64_t k = 0; k < I; ++k) s += 2.0 * (transposed ? w[k * O + o] : w[o * I + k]) * double(x[b * I + k]);
              ref[b * O + o] = testref::activate(act, s);
            }
          std::vector<float> y1(batch * O), y2(batch * O);
          fc.forward(x.data(), batch, y1.data(), one);
          fc.forward(x.data(), batch, y2.data(), two);
          const std::string what = "out " + std::to_string(O) + " in " + std::to_string(I) + " batch " + std::to_string(batch);
          testref::expect_close(y1.data(), ref, what);
          EXPECT_TRUE(testref::bitwise_equal(y1, y2)) << what;
          EXPECT_EQ(std::memcmp(y1.data(), alone.data(), O * sizeof(float)), 0) << what << ": row 0 depends on batch";
        }
      }
}

TEST(FullyConnected, ChunkedTransposeInPlacePutsEveryWeightAtItsIndex) {
  const int64_t shapes[][3] = {{4096, 9, 1024}, {1000, 13, 1024}, {2500, 7, 1024}, {37, 130, 1024},
                               {48, 5, 16}, {30, 11, 8}, {1, 4, 1024}};
  for (const auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1], chunk = s[2];
    std::vector<float> w(rows * cols);
    for (int64_t i = 0; i < rows * cols; ++i) w[i] = static_cast<float>(i);
    kernels::chunked_transpose_in_place(w.data(), rows, cols, chunk);
    int64_t wrong = 0;
    for (int64_t o = 0; o < rows; ++o)
      for (int64_t k = 0; k < cols; ++k)
        wrong += w[kernels::chunked_index(o, k, rows, cols, chunk)] != static_cast<float>(o * cols + k);
    EXPECT_EQ(0, wrong) << rows << "x" << cols << " in chunks of " << chunk;
  }
}

// Weights nothing else holds are rearranged where they are: no second copy of a layer's weights.
TEST(FullyConnected, SoleWeightsAreTakenOverInPlace) {
  const int64_t O = 1500, I = 200;  // large enough to be kept transposed
  ASSERT_GE(O * I, kernels::kChunkedFloats);
  const auto values = testref::random_floats(O * I, 14);
  const auto x = testref::random_floats(2 * I, 15), bias = testref::random_floats(O, 16);
  Tensor w = Tensor::from_f32({O, I}, values);
  const float* storage = w.f32();
  const kernels::FullyConnected copied(values.data(), O, I, I, 1, 1.f, bias.data(), {});
  const kernels::FullyConnected taken(w, bias.data(), {});
  w = Tensor();
  taken.prepare();
  EXPECT_EQ(storage, taken.weights().f32());
  EXPECT_EQ(values[7 * I + 3], storage[kernels::chunked_index(7, 3, O, I, kernels::kFcChunk)]);
  ThreadPool pool(2);
  std::vector<float> a(2 * O), b(2 * O);
  copied.forward(x.data(), 2, a.data(), pool);
  taken.forward(x.data(), 2, b.data(), pool);
  EXPECT_TRUE(testref::bitwise_equal(a, b));
}

// Weights the model still holds are copied, into the same form.
TEST(FullyConnected, SharedWeightsGiveTheSameResults) {
  const Tensor w = Tensor::from_f32({37, 130}, testref::random_floats(37 * 130, 11));
  const auto x = testref::random_floats(3 * 130, 12), bias = testref::random_floats(37, 13);
  const kernels::FullyConnected copied(w.f32(), 37, 130, 130, 1, 1.f, bias.data(), {});
  const kernels::FullyConnected shared(w, bias.data(), {});
  ThreadPool pool(1);
  std::vector<float> a(3 * 37), b(3 * 37);
  copied.forward(x.data(), 3, a.data(), pool);
  shared.forward(x.data(), 3, b.data(), pool);
  EXPECT_TRUE(testref::bitwise_equal(a, b));
}

TEST(Activation, FinishRowAppliesBiasResidualAndEveryKind) {
  const auto x = testref::random_floats(37, 8, -8.f, 8.f), res = testref::random_floats(37, 9);
  for (ActKind k : {ActKind::None, ActKind::Relu, ActKind::Clip, ActKind::LeakyRelu, ActKind::Sigmoid, ActKind::HardSwish}) {
    Activation act;
    act.kind = k;
    act.min = -1.f;
    act.max = 2.f;
    act.alpha = 0.3f;
    std::vector<float> y = x;
    kernels::finish_row(y.data(), 37, 0.5f, res.data(), act);
    std::vector<double> ref(37);
    for (int i = 0; i < 37; ++i) ref[i] = testref::activate(act, double(x[i]) + 0.5 + res[i]);
    testref::expect_close(y.data(), ref, "kind " + std::to_string(int(k)));
  }
  EXPECT_THROW(kernels::make_activation("Tanh", 0, 0, 0), ModelError);
}

}  // namespace
}  // namespace dnn
