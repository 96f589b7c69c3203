// Paths and comparisons shared by the tests. Reference fixtures ship in tests/data (see its README.md),
// so a clone passes its tests alone.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace dnn::test {

inline std::string fixture(const std::string& rel) { return std::string(DNN_SOURCE_DIR) + "/tests/data/" + rel; }
inline std::string source(const std::string& rel) { return std::string(DNN_SOURCE_DIR) + "/" + rel; }

// The agreement the fixtures promise: |y - ref| <= rel * max|ref| + abs, elementwise, same shape.
::testing::AssertionResult close_to_reference(const Tensor& y, const Tensor& ref, double rel = 1e-4,
                                              double abs = 1e-5);

// The message of the exception `fn` throws, or "" when it throws nothing.
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Runs the dnnswarm binary with `args`; returns its exit code, stdout+stderr in `out`.
int run_cli(const std::string& args, std::string* out = nullptr);

}  // namespace dnn::test
