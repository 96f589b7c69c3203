// Reshape, Flatten, Squeeze, Unsqueeze (and Identity) return views: same storage, new shape.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

Node with(const char* op, const char* key, AttrValue v) {
  Attrs a;
  a.set(key, std::move(v));
  return make_node(op, 1, a);
}

void expect_view(const Node& n, const Tensor& x, const Shape& shape) {
  SCOPED_TRACE(n.op + " of " + to_string(x.shape()));
  Tensor y = run_unary(n, x);
  EXPECT_EQ(shape, y.shape());
  EXPECT_EQ(x.raw(), y.raw()) << "a copy, not a view";
}

TEST(Reshape, ReturnsViewsWithOnnxShapeRules) {
  Tensor x = random_tensor({4, 3, 2, 5}, 1);
  expect_view(with("Reshape", "shape", std::vector<int64_t>{0, -1}), x, {4, 30});
  expect_view(with("Reshape", "shape", std::vector<int64_t>{0, 0, 10}), x, {4, 3, 10});
  expect_view(with("Reshape", "shape", std::vector<int64_t>{-1, 6, 5}), x, {4, 6, 5});
  expect_view(with("Flatten", "axis", int64_t(1)), x, {4, 30});
  expect_view(with("Flatten", "axis", int64_t(0)), x, {1, 120});
  expect_view(with("Flatten", "axis", int64_t(-1)), x, {24, 5});
  expect_view(with("Flatten", "axis", int64_t(4)), x, {120, 1});
  expect_view(make_node("Identity", 1), x, {4, 3, 2, 5});
  expect_view(make_node("Dropout", 1), x, {4, 3, 2, 5});
}

TEST(Reshape, SqueezeAndUnsqueeze) {
  Tensor x = random_tensor({2, 1, 3, 1}, 2);
  expect_view(with("Squeeze", "axes", std::vector<int64_t>{1}), x, {2, 3, 1});
  expect_view(with("Squeeze", "axes", std::vector<int64_t>{-1, 1}), x, {2, 3});
  expect_view(make_node("Squeeze", 1), x, {2, 3});  // no axes: every size-1 dimension
  expect_view(with("Unsqueeze", "axes", std::vector<int64_t>{0, 5}), x, {1, 2, 1, 3, 1, 1});
  expect_view(with("Unsqueeze", "axes", std::vector<int64_t>{-1}), x, {2, 1, 3, 1, 1});
}

TEST(Reshape, ShapeFromAConstantInput) {
  Tensor x = random_tensor({2, 6}, 3), shape = Tensor::from_i64({3}, {2, 3, -1});
  Tensor y = run_layer(make_node("Reshape", 2), {nullptr, &shape}, {&x, nullptr})[0];
  EXPECT_EQ((Shape{2, 3, 2}), y.shape());
}

TEST(Reshape, BadShapesAreShapeErrors) {
  Tensor x = random_tensor({4, 6}, 4);
  EXPECT_THROW(run_unary(with("Reshape", "shape", std::vector<int64_t>{-1, -1}), x), ShapeError);
  EXPECT_THROW(run_unary(with("Reshape", "shape", std::vector<int64_t>{5, -1}), x), ShapeError);
  EXPECT_THROW(run_unary(with("Reshape", "shape", std::vector<int64_t>{7, 3}), x), ShapeError);
  EXPECT_THROW(run_unary(with("Squeeze", "axes", std::vector<int64_t>{0}), x), ShapeError);
  EXPECT_THROW(run_unary(with("Unsqueeze", "axes", std::vector<int64_t>{5}), x), ShapeError);
}

TEST(Reshape, MissingShapeIsAModelError) {
  EXPECT_THROW(make_layer(make_node("Reshape", 1), {nullptr}), ModelError);
  // A shape computed at run time is refused at load, naming the node.
  EXPECT_THROW(make_layer(make_node("Reshape", 2), {nullptr, nullptr}), ModelError);
}

TEST(Identity, DropoutMaskOutputIsRefused) {
  EXPECT_THROW(make_layer(make_node("Dropout", 1, {}, 2), {nullptr}), ModelError);
}

}  // namespace
}  // namespace dnn::test
