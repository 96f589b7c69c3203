// Small synthetic graphs and deterministic tensors for the format tests (tests/format and
// tests/engine/format-*-test.cpp).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "core/graph.h"
#include "core/tensor.h"

namespace dnn::testing {

// Values in [-1, 1) from a 32-bit LCG: the same shape and seed always give the same tensor.
inline Tensor random_tensor(const Shape& shape, uint32_t seed) {
  Tensor t(shape);
  uint32_t x = seed * 2654435761u + 1;
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    x = x * 1664525u + 1013904223u;
    p[i] = static_cast<float>(x >> 8) / static_cast<float>(1 << 23) - 1.f;
  }
  return t;
}

inline Node make_node(std::string name, std::string op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.name = std::move(name);
  n.op = std::move(op);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// x[M,K] -> Gemm(W, b) -> Relu -> y. W is [N,K] when trans_b, else [K,N].
inline Graph gemm_graph(int64_t m, int64_t k, int64_t n, bool trans_b, bool bias = true) {
  Graph g;
  g.name = "gemm";
  g.inputs = {{"x", {m, k}}};
  g.outputs = {{"y", {m, n}}};
  Node fc = make_node("fc", "Gemm", {"x", "fc.W"}, {"h"});
  if (bias) fc.inputs.push_back("fc.b");
  fc.attrs.set("transB", int64_t{trans_b});
  g.nodes.push_back(fc);
  g.nodes.push_back(make_node("relu", "Relu", {"h"}, {"y"}));
  g.constants["fc.W"] = random_tensor(trans_b ? Shape{n, k} : Shape{k, n}, 1);
  if (bias) g.constants["fc.b"] = random_tensor({n}, 2);
  return g;
}

// Scratch files under /tmp/format-tests-<pid>/, removed by the test's TearDown.
class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/format-tests-" + std::to_string(::getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

inline void expect_same_bytes(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << what;
}

}  // namespace dnn::testing
