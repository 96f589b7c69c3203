// The CLI contract scripts rely on: run/bench outputs and clear, non-zero failures.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/npy.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

using test::run_cli;
using test::fixture;

TEST(Cli, RunWritesOutputAndAccuracy) {
  std::string out;
  ASSERT_EQ(0, run_cli("run --model " + fixture("lenet5_mnist/lenet5_mnist_dyn.onnx") + " --input " +
                           fixture("lenet5_mnist/test_inputs_100.npy") + " --labels " +
                           fixture("lenet5_mnist/test_labels_100.npy") + " --output /tmp/dnn-cli-y.npy --batch 7",
                       &out))
      << out;
  EXPECT_NE(out.find("\"frames\":100"), std::string::npos) << out;
  EXPECT_TRUE(test::close_to_reference(read_npy("/tmp/dnn-cli-y.npy"),
                                       read_npy(fixture("lenet5_mnist/ref_logits_100.npy"))));
}

TEST(Cli, BenchPrintsOneJsonLine) {
  std::string out;
  ASSERT_EQ(0, run_cli("bench --model " + fixture("lenet5_mnist/lenet5_mnist_b1.onnx") + " --seconds 0.2", &out)) << out;
  for (const char* key : {"\"model\"", "\"threads\"", "\"images_per_s\"", "\"ms_p50\"", "\"peak_rss_mb\""})
    EXPECT_NE(out.find(key), std::string::npos) << key << " missing in " << out;
}

TEST(Cli, BenchProfilePrintsOneLinePerLayer) {
  std::string out;
  ASSERT_EQ(0, run_cli("bench --profile --model " + fixture("lenet5_mnist/lenet5_mnist_b1.onnx") +
                           " --seconds 0.2", &out)) << out;
  // The summary line, then one line per layer in execution order; the shares add up to 1.
  std::istringstream lines(out);
  std::string line;
  int layers = 0;
  double share_sum = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("{\"layer\":", 0) != 0) continue;
    ++layers;
    const auto at = line.find("\"share\":");
    ASSERT_NE(at, std::string::npos) << line;
    share_sum += std::stod(line.substr(at + 8));
  }
  EXPECT_GE(layers, 5) << out;  // LeNet-5: conv, pool, conv, pool, 3 fc at least
  EXPECT_NEAR(1.0, share_sum, 0.01) << out;
  EXPECT_NE(out.find("Conv"), std::string::npos) << out;
}

TEST(Cli, TruncatedModelFailsClearly) {
  std::ifstream in(fixture("lenet5_mnist/lenet5_mnist_b1.onnx"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream("/tmp/dnn-cli-truncated.onnx", std::ios::binary).write(bytes.data(), bytes.size() / 2);
  std::string out;
  EXPECT_EQ(1, run_cli("run --model /tmp/dnn-cli-truncated.onnx --input " +
                           fixture("lenet5_mnist/test_inputs_100.npy"), &out));
  EXPECT_NE(out.find("/tmp/dnn-cli-truncated.onnx"), std::string::npos) << out;
}

TEST(Cli, WrongInputShapeAndMissingFilesFailClearly) {
  std::string out;
  EXPECT_EQ(1, run_cli("run --model " + fixture("lenet5_mnist/lenet5_mnist_b1.onnx") + " --input " +
                           fixture("mobilenet_v2/input.npy"), &out));
  EXPECT_NE(out.find("expects"), std::string::npos) << out;
  EXPECT_EQ(1, run_cli("run --model /nonexistent.onnx --input " + fixture("mobilenet_v2/input.npy"), &out));
  EXPECT_NE(out.find("/nonexistent.onnx"), std::string::npos) << out;
  EXPECT_EQ(2, run_cli("run --bogus", &out));
  EXPECT_EQ(2, run_cli("frobnicate", &out));
}

}  // namespace
}  // namespace dnn
