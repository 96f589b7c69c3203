// Masks, Where, Pow and the variadic reductions against hand-written results.
#include "layers/layer_test.h"

namespace dnn::test {
namespace {

TEST(Elementwise, ComparisonsGiveInt64MasksWithBroadcasting) {
  Tensor a = Tensor::from_f32({2, 3}, {1, 5, 3, -1, 2, 7});
  Tensor b = Tensor::from_f32({3}, {1, 4, 7});
  Tensor lt = run_layer(make_node("Less", 2), {nullptr, nullptr}, {&a, &b}).at(0);
  ASSERT_EQ(lt.dtype(), DType::i64);
  EXPECT_EQ(lt.to_i64_vector(), (std::vector<int64_t>{0, 0, 1, 1, 1, 0}));
  Tensor eq = run_layer(make_node("Equal", 2), {nullptr, &b}, {&a, nullptr}).at(0);  // b a constant
  EXPECT_EQ(eq.to_i64_vector(), (std::vector<int64_t>{1, 0, 0, 0, 0, 1}));
}

TEST(Elementwise, LogicAndWhere) {
  Tensor m = Tensor::from_i64({4}, {1, 0, 1, 0}), n = Tensor::from_i64({4}, {1, 1, 0, 0});
  EXPECT_EQ(run_layer(make_node("And", 2), {nullptr, nullptr}, {&m, &n}).at(0).to_i64_vector(), (std::vector<int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(run_layer(make_node("Xor", 2), {nullptr, nullptr}, {&m, &n}).at(0).to_i64_vector(), (std::vector<int64_t>{0, 1, 1, 0}));
  EXPECT_EQ(run_unary(make_node("Not", 1), m).to_i64_vector(), (std::vector<int64_t>{0, 1, 0, 1}));
  Tensor x = Tensor::from_f32({4}, {1, 2, 3, 4}), fill = Tensor::from_f32({}, {-9});
  Tensor y = run_layer(make_node("Where", 3), {nullptr, nullptr, &fill}, {&m, &x, nullptr}).at(0);
  expect_close(y, Tensor::from_f32({4}, {1, -9, 3, -9}));
}

TEST(Elementwise, PowAndVariadic) {
  Tensor x = Tensor::from_f32({3}, {2, 3, 4}), e = Tensor::from_f32({}, {0.5f});
  expect_close(run_layer(make_node("Pow", 2), {nullptr, &e}, {&x, nullptr}).at(0),
               Tensor::from_f32({3}, {1.4142135623730951f, 1.7320508075688772f, 2.f}));
  Tensor a = Tensor::from_f32({3}, {1, 8, -2}), b = Tensor::from_f32({1}, {3});
  auto run2 = [&](const char* op) { return run_layer(make_node(op, 3), {nullptr, nullptr, nullptr}, {&x, &a, &b}).at(0); };
  expect_close(run2("Max"), Tensor::from_f32({3}, {3, 8, 4}));
  expect_close(run2("Min"), Tensor::from_f32({3}, {1, 3, -2}));
  expect_close(run2("Sum"), Tensor::from_f32({3}, {6, 14, 5}));
  expect_close(run2("Mean"), Tensor::from_f32({3}, {2, 14.f / 3, 5.f / 3}));
}

TEST(Elementwise, RefusesShapesThatDoNotBroadcast) {
  Tensor a({2, 3}), b({2});
  EXPECT_THROW(run_layer(make_node("Greater", 2), {nullptr, nullptr}, {&a, &b}), ShapeError);
}

TEST(Elementwise, CastBetweenFloatIntAndBool) {
  Tensor x = Tensor::from_f32({4}, {-1.7f, 0.f, 2.9f, 0.25f});
  Attrs to_int, to_bool, to_float16;
  to_int.set("to", int64_t{7});     // INT64: truncates toward zero
  to_bool.set("to", int64_t{9});    // BOOL
  to_float16.set("to", int64_t{10});
  EXPECT_EQ(run_unary(make_node("Cast", 1, to_int), x).to_i64_vector(), (std::vector<int64_t>{-1, 0, 2, 0}));
  EXPECT_EQ(run_unary(make_node("Cast", 1, to_bool), x).to_i64_vector(), (std::vector<int64_t>{1, 0, 1, 1}));
  Attrs to_float;
  to_float.set("to", int64_t{1});
  expect_close(run_unary(make_node("Cast", 1, to_float), Tensor::from_i64({2}, {-3, 5})), Tensor::from_f32({2}, {-3, 5}));
  EXPECT_THROW(make_layer(make_node("Cast", 1, to_float16), {nullptr}), ModelError);
}

}  // namespace
}  // namespace dnn::test
