// DepthToSpace / SpaceToDepth index mapping, written out by hand.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Tensor iota(Shape s) {
  Tensor t(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = float(i);
  return t;
}

TEST(DepthSpace, DepthToSpaceModes) {
  Attrs dcr;
  dcr.set("blocksize", int64_t{2});
  // DCR: out[c', i, j] = x[(i * 2 + j) * 2 + c'].
  expect_close(run_unary(make_node("DepthToSpace", 1, dcr), iota({1, 8, 1, 1})),
               Tensor::from_f32({1, 2, 2, 2}, {0, 2, 4, 6, 1, 3, 5, 7}));
  Attrs crd = dcr;
  crd.set("mode", std::string("CRD"));  // CRD: out[c', i, j] = x[c' * 4 + i * 2 + j]
  expect_close(run_unary(make_node("DepthToSpace", 1, crd), iota({1, 8, 1, 1})),
               Tensor::from_f32({1, 2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(DepthSpace, SpaceToDepthOrdersBlockThenChannel) {
  Attrs a;
  a.set("blocksize", int64_t{2});
  // out channel (i * 2 + j) * 2 + c reads x[c, i, j] = c * 4 + i * 2 + j.
  expect_close(run_unary(make_node("SpaceToDepth", 1, a), iota({1, 2, 2, 2})),
               Tensor::from_f32({1, 8, 1, 1}, {0, 4, 1, 5, 2, 6, 3, 7}));
  EXPECT_THROW(run_unary(make_node("SpaceToDepth", 1, a), iota({1, 1, 3, 2})), ShapeError);
}

TEST(ArgMax, IndicesAlongAnAxisWithTies) {
  Tensor x = Tensor::from_f32({2, 3}, {1, 5, 5, 7, 0, 7});
  Attrs a;
  a.set("axis", int64_t{1});
  a.set("keepdims", int64_t{0});
  EXPECT_EQ(run_unary(make_node("ArgMax", 1, a), x).to_i64_vector(), (std::vector<int64_t>{1, 0}));
  a.set("select_last_index", int64_t{1});
  EXPECT_EQ(run_unary(make_node("ArgMax", 1, a), x).to_i64_vector(), (std::vector<int64_t>{2, 2}));
  Attrs b;  // axis 0, keepdims
  Tensor m = run_unary(make_node("ArgMin", 1, b), x);
  EXPECT_EQ(m.shape(), (Shape{1, 3}));
  EXPECT_EQ(m.to_i64_vector(), (std::vector<int64_t>{0, 1, 0}));
}

}  // namespace
}  // namespace dnn::test
