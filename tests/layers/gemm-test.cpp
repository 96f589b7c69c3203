// Gemm (alpha, beta, transA, transB, every C broadcast, C as an activation, B as an activation) and
// MatMul (constant weights, batched and broadcast operands, 1-D operands), against double loops.
#include <gtest/gtest.h>

#include "kernels/reference.h"
#include "layers/layer.h"

namespace dnn {
namespace {

Tensor rnd(Shape s, unsigned seed) { return Tensor::from_f32(s, testref::random_floats(numel(s), seed)); }

struct GemmCase {
  int64_t M, K, N;
  bool trans_a, trans_b;
  float alpha, beta;
  Shape c_shape;  // empty: no C
  bool b_const, c_const;
};

void run_gemm(const GemmCase& g, int threads) {
  Node node;
  node.name = "fc";
  node.op = "Gemm";
  node.inputs = {"a", "b"};
  if (!g.c_shape.empty()) node.inputs.push_back("c");
  node.outputs = {"y"};
  node.attrs.set("alpha", g.alpha);
  node.attrs.set("beta", g.beta);
  node.attrs.set("transA", int64_t{g.trans_a});
  node.attrs.set("transB", int64_t{g.trans_b});
  node.attrs.set("dnn.activation", std::string("Relu"));
  const Tensor a = rnd(g.trans_a ? Shape{g.K, g.M} : Shape{g.M, g.K}, 31);
  const Tensor b = rnd(g.trans_b ? Shape{g.N, g.K} : Shape{g.K, g.N}, 32);
  const Tensor c = g.c_shape.empty() ? Tensor() : rnd(g.c_shape == Shape{0} ? Shape{} : g.c_shape, 33);
  std::vector<const Tensor*> consts = {nullptr, g.b_const ? &b : nullptr};
  std::vector<const Tensor*> in = {&a, g.b_const ? nullptr : &b};
  if (!g.c_shape.empty()) {
    consts.push_back(g.c_const ? &c : nullptr);
    in.push_back(g.c_const ? nullptr : &c);
  }
  auto layer = make_layer(node, consts);
  ThreadPool pool(threads);
  RunContext ctx{&pool};
  const Tensor y = layer->forward(in, ctx).at(0);
  ASSERT_EQ(y.shape(), (Shape{g.M, g.N}));
  std::vector<double> ref(g.M * g.N);
  const int64_t cm = c.rank() == 2 ? c.dim(0) : 1, cn = c.rank() >= 1 ? c.dim(-1) : 1;
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < g.K; ++k)
        s += double(g.trans_a ? a.f32()[k * g.M + i] : a.f32()[i * g.K + k]) *
             (g.trans_b ? b.f32()[j * g.K + k] : b.f32()[k * g.N + j]);
      s *= g.alpha;
      if (!c.empty()) s += g.beta * double(c.f32()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)]);
      ref[i * g.N + j] = s > 0 ? s : 0;
    }
  testref::expect_close(y.f32(), ref, "Gemm M" + std::to_string(g.M) + " C " + to_string(g.c_shape));
  EXPECT_EQ(layer->macs({a.shape(), b.shape()}), g.M * g.K * g.N);
}

TEST(GemmLayer, AttributesAndEveryCForm) {
  const GemmCase cases[] = {
      {1, 9, 7, false, true, 1.f, 1.f, {7}, true, true},          // torchvision classifier form
      {5, 20, 11, false, false, 0.5f, 2.f, {1, 11}, true, true},  // transB = 0, alpha, beta
      {3, 8, 4, true, true, 1.f, 0.5f, {3, 1}, true, true},       // per-row C
      {4, 6, 5, true, false, 1.f, 1.f, {4, 5}, true, false},      // full C as an activation
      {2, 10, 3, false, true, 1.f, 1.f, {0}, true, true},         // scalar C
      {6, 33, 9, false, false, 1.5f, 1.f, {9}, false, true},      // B an activation
      {2, 5, 3, false, true, 1.f, 0.f, {3}, true, true},          // beta = 0
      {17, 40, 23, false, true, 1.f, 1.f, {}, true, true},        // no C, batch 17
  };
  for (const auto& g : cases) {
    run_gemm(g, 1);
    run_gemm(g, 2);
  }
}

// y = a @ b with NumPy matmul semantics, in double.
std::vector<double> matmul_ref(const Tensor& a, const Tensor& b, const Shape& out) {
  Shape as = a.shape(), bs = b.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const int64_t batches = numel(out) / (M * N);
  std::vector<double> y(numel(out));
  const int64_t a_batches = numel(as) / (M * K), b_batches = numel(bs) / (K * N);
  for (int64_t t = 0; t < batches; ++t)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        // The tests broadcast only whole operands (one batch vs many), which this indexing covers.
        const float* pa = a.f32() + (a_batches == 1 ? 0 : t) * M * K;
        const float* pb = b.f32() + (b_batches == 1 ? 0 : t) * K * N;
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(pa[i * K + k]) * pb[k * N + j];
        y[(t * M + i) * N + j] = s;
      }
  return y;
}

void run_matmul(Shape as, Shape bs, bool b_const, Shape expect) {
  Node node;
  node.name = "mm";
  node.op = "MatMul";
  node.inputs = {"a", "b"};
  node.outputs = {"y"};
  const Tensor a = rnd(as, 41), b = rnd(bs, 42);
  auto layer = make_layer(node, {nullptr, b_const ? &b : nullptr});
  ThreadPool pool(2);
  RunContext ctx{&pool};
  const Tensor y = layer->forward({&a, b_const ? nullptr : &b}, ctx).at(0);
  ASSERT_EQ(y.shape(), expect);
  testref::expect_close(y.f32(), matmul_ref(a, b, expect), "MatMul " + to_string(as) + " x " + to_string(bs));
}

TEST(MatMulLayer, ConstantWeightsBatchedBroadcastAndVectors) {
  run_matmul({2, 3, 8}, {8, 5}, true, {2, 3, 5});
  run_matmul({4, 16}, {16, 6}, false, {4, 6});
  run_matmul({3, 4, 7}, {3, 7, 2}, false, {3, 4, 2});
  run_matmul({1, 4, 7}, {3, 7, 2}, false, {3, 4, 2});
  run_matmul({3, 4, 7}, {7, 2}, false, {3, 4, 2});
  run_matmul({7}, {7, 3}, true, {3});
  run_matmul({2, 5, 7}, {7}, false, {2, 5});
}

TEST(MatMulLayer, MismatchedShapesThrow) {
  Node node;
  node.name = "mm";
  node.op = "MatMul";
  node.inputs = {"a", "b"};
  node.outputs = {"y"};
  auto layer = make_layer(node, {nullptr, nullptr});
  EXPECT_THROW(layer->output_shapes({{2, 3}, {4, 5}}), ShapeError);
  EXPECT_THROW(layer->output_shapes({{2, 2, 3}, {3, 3, 5}}), ShapeError);
}

}  // namespace
}  // namespace dnn
