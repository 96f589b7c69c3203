// ReduceMean/Sum/Max/Min over non-trailing axes of a batch (the transposing path), keepdims both ways.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(Reduce, NonTrailingAxesOfABatch) {
  Tensor x = random_tensor({2, 3, 4, 5}, 1);
  for (int64_t keep : {0, 1})
    for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"}) {
      SCOPED_TRACE(std::string(op) + " keepdims " + std::to_string(keep));
      Attrs a;
      a.set("axes", std::vector<int64_t>{1, -1});
      a.set("keepdims", keep);
      Tensor y = run_unary(make_node(op, 1, a), x);
      Tensor ref(keep ? Shape{2, 1, 4, 1} : Shape{2, 4});
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t h = 0; h < 4; ++h) {
          double sum = 0;
          float mx = -1e30f, mn = 1e30f;
          for (int64_t c = 0; c < 3; ++c)
            for (int64_t w = 0; w < 5; ++w) {
              float v = x.f32()[((n * 3 + c) * 4 + h) * 5 + w];
              sum += v, mx = std::max(mx, v), mn = std::min(mn, v);
            }
          const std::string o = op;
          ref.f32()[n * 4 + h] = o == "ReduceMean" ? sum / 15 : o == "ReduceSum" ? sum : o == "ReduceMax" ? mx : mn;
        }
      expect_close(y, ref);
    }
}

TEST(Reduce, MeanOverSpatialDimsKeepsBatch) {
  Tensor x = random_tensor({3, 4, 6, 6}, 2);
  Attrs a;
  a.set("axes", std::vector<int64_t>{2, 3});
  Tensor y = run_unary(make_node("ReduceMean", 1, a), x);
  Tensor ref = run_unary(make_node("GlobalAveragePool", 1), x);
  expect_close(y, ref);
}

// Over the last axis of [[3, -4], [1, 2]] (hand-computed), for 20-element rows too (several lanes).
TEST(Reduce, ProdL1L2SumSquare) {
  Attrs a;
  a.set("axes", std::vector<int64_t>{1});
  Tensor x = Tensor::from_f32({2, 2}, {3, -4, 1, 2});
  auto run = [&](const char* op) { return run_unary(make_node(op, 1, a), x); };
  expect_close(run("ReduceProd"), Tensor::from_f32({2, 1}, {-12, 2}));
  expect_close(run("ReduceL1"), Tensor::from_f32({2, 1}, {7, 3}));
  expect_close(run("ReduceL2"), Tensor::from_f32({2, 1}, {5, 2.2360679775f}));
  expect_close(run("ReduceSumSquare"), Tensor::from_f32({2, 1}, {25, 5}));
  Tensor ones(Shape{1, 20});
  for (int i = 0; i < 20; ++i) ones.f32()[i] = i % 2 ? -2.f : 2.f;
  expect_close(run_unary(make_node("ReduceL2", 1, a), ones), Tensor::from_f32({1, 1}, {8.94427191f}));  // sqrt(80)
  expect_close(run_unary(make_node("ReduceL1", 1, a), ones), Tensor::from_f32({1, 1}, {40}));
}

// Per image and channel over H and W: ||[3, -4]||_2 = 5, ||[1, 2]||_2 = sqrt(5), ||[1, -2]||_3 = 9^(1/3).
TEST(Reduce, GlobalLpPool) {
  Tensor x = Tensor::from_f32({1, 2, 1, 2}, {3, -4, 1, 2});
  expect_close(run_unary(make_node("GlobalLpPool", 1), x), Tensor::from_f32({1, 2, 1, 1}, {5, 2.2360679775f}));
  Attrs a;
  a.set("p", int64_t{3});
  Tensor z = Tensor::from_f32({1, 1, 2}, {1, -2});
  expect_close(run_unary(make_node("GlobalLpPool", 1, a), z), Tensor::from_f32({1, 1, 1}, {2.0800838231f}));
}

}  // namespace
}  // namespace dnn::test
