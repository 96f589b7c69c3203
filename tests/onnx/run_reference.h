// Runs an imported model end to end with the dnnswarm binary (`dnnswarm run`) on the reference input
// saved beside it (<stem>.input.npy) and compares with the reference output (<stem>.output.npy).
// The onnx tests link only dnn_onnx; going through the CLI checks what import produced with the
// real layers, the way a user runs it.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/npy.h"
#include "support/fixtures.h"

namespace dnn::test {

inline void expect_matches_reference(const std::string& model_path) {
  namespace fs = std::filesystem;
  const fs::path model(model_path);
  const std::string stem = (model.parent_path() / model.stem()).string();
  const std::string out = testing::TempDir() + model.stem().string() + "." + std::to_string(getpid()) + ".out.npy";
  std::string log;
  int rc = run_cli("run --model '" + model_path + "' --input '" + stem + ".input.npy' --output '" + out + "'", &log);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_TRUE(close_to_reference(read_npy(out), read_npy(stem + ".output.npy"))) << model_path;
  fs::remove(out);
}

}  // namespace dnn::test
