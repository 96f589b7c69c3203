// What the layer tests share: build a node, load its layer, run it, compare with a reference.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "layers/layer.h"

namespace dnn::test {

inline Node make_node(const std::string& op, size_t inputs, Attrs attrs = {}, size_t outputs = 1) {
  Node n;
  n.name = "test_" + op;
  n.op = op;
  for (size_t i = 0; i < inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  for (size_t i = 0; i < outputs; ++i) n.outputs.push_back("out" + std::to_string(i));
  n.attrs = std::move(attrs);
  return n;
}

// Loads the layer with `consts` (null = activation) and runs it once on `in` with `threads` threads.
inline std::vector<Tensor> run_layer(const Node& n, const std::vector<const Tensor*>& consts,
                                     const std::vector<const Tensor*>& in, int threads = 1) {
  auto layer = make_layer(n, consts);
  ThreadPool pool(threads);
  RunContext ctx{&pool};
  auto out = layer->forward(in, ctx);
  std::vector<Shape> shapes;
  for (size_t i = 0; i < in.size(); ++i) shapes.push_back(in[i] ? in[i]->shape() : consts[i]->shape());
  auto expected = layer->output_shapes(shapes);
  EXPECT_EQ(expected.size(), out.size());
  for (size_t i = 0; i < out.size() && i < expected.size(); ++i) EXPECT_EQ(expected[i], out[i].shape()) << "output " << i;
  return out;
}

// A single-activation layer: run_layer(n, {nullptr}, {&x}).
inline Tensor run_unary(const Node& n, const Tensor& x, int threads = 1) {
  return run_layer(n, {nullptr}, {&x}, threads).at(0);
}

inline Tensor random_tensor(Shape shape, unsigned seed, float lo = -3.f, float hi = 3.f) {
  Tensor t(std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = u(rng);
  return t;
}

// The project's numerics bar: |y - ref| <= 1e-4 * max|ref| + 1e-5.
inline void expect_close(const Tensor& y, const Tensor& ref) {
  ASSERT_EQ(y.shape(), ref.shape());
  float peak = 0.f;
  for (int64_t i = 0; i < ref.numel(); ++i) peak = std::max(peak, std::fabs(ref.f32()[i]));
  const float tol = 1e-4f * peak + 1e-5f;
  for (int64_t i = 0; i < ref.numel(); ++i)
    ASSERT_NEAR(y.f32()[i], ref.f32()[i], tol) << "at flat index " << i << " of " << to_string(ref.shape());
}

inline void expect_identical(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(0, std::memcmp(a.raw(), b.raw(), a.bytes()));
}

// Row-major strides of a shape.
inline std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int d = static_cast<int>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

// The multi-index of flat index i in shape s.
inline std::vector<int64_t> unflatten(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

}  // namespace dnn::test
