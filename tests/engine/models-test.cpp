// Whole models against references produced by PyTorch (tests/data, see its README).
#include <gtest/gtest.h>

#include <cstring>

#include "core/npy.h"
#include "engine/executor.h"
#include "engine/model.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

using test::fixture;

// The message of the ShapeError that running `x` raises (a test failure if none does).
std::string shape_error(Executor& ex, const Tensor& x) {
  try {
    ex.run({x});
  } catch (const ShapeError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ShapeError";
  return "";
}

Tensor run_model(const std::string& path, const Tensor& x, int threads = 1) {
  Graph g = load_model(path);
  Executor ex(g, ExecOptions{threads});
  return ex.run({x})[0];
}

// The model's output on `input` against the PyTorch reference (three paths of one fixture).
::testing::AssertionResult matches_reference(const std::string& model, const std::string& input,
                                             const std::string& ref) {
  return test::close_to_reference(run_model(model, read_npy(input)), read_npy(ref));
}

TEST(Models, LeNet5MatchesReferenceLogits) {
  EXPECT_TRUE(matches_reference(fixture("lenet5_mnist/lenet5_mnist_dyn.onnx"), fixture("lenet5_mnist/test_inputs_100.npy"),
                                fixture("lenet5_mnist/ref_logits_100.npy")));
}

TEST(Models, LeNet5BatchOneModelRunsFrameByFrame) {
  Tensor x = read_npy(fixture("lenet5_mnist/test_inputs_100.npy"));
  Tensor ref = read_npy(fixture("lenet5_mnist/ref_logits_100.npy"));
  Graph g = load_model(fixture("lenet5_mnist/lenet5_mnist_b1.onnx"));
  Executor ex(g);
  for (int i = 0; i < 100; i += 17) {
    Tensor xi = Tensor::wrap({1, 1, 28, 28}, DType::f32, x.f32() + i * 784, nullptr);
    Tensor ri = Tensor::wrap({1, 10}, DType::f32, const_cast<float*>(ref.f32()) + i * 10, nullptr);
    EXPECT_TRUE(test::close_to_reference(ex.run({xi})[0], ri)) << "frame " << i;
  }
}

// The held-out accuracy must be exactly the reference's 97.85 % (1957 of 2000).
TEST(Models, LeNet5HeldOutAccuracyIsExactlyReference) {
  // The held-out digits the product bundles for its demo (the same bytes as the fixture's).
  Tensor x = read_npy(test::source("models/lenet5/test_inputs_all.npy"));
  auto labels = read_npy(test::source("models/lenet5/test_labels_all.npy")).to_i64_vector();
  Tensor y = run_model(fixture("lenet5_mnist/lenet5_mnist_dyn.onnx"), x, 2);
  ASSERT_EQ(y.shape(), (Shape{2000, 10}));
  int correct = 0;
  for (int i = 0; i < 2000; ++i) {
    const float* r = y.f32() + i * 10;
    correct += std::max_element(r, r + 10) - r == labels[i];
  }
  EXPECT_EQ(correct, 1957);
}

TEST(Models, MobileNetV2MatchesReference) {
  EXPECT_TRUE(matches_reference(fixture("mobilenet_v2/mobilenet_v2.onnx"), fixture("mobilenet_v2/input.npy"),
                                fixture("mobilenet_v2/ref_output.npy")));
}

// The executor runs MobileNetV2's expansion + depthwise pairs fused (Layer::absorb): same bits as
// without fusion, at 1 and 2 threads, and the profile names the fused pairs.
TEST(Models, MobileNetV2FusedPairsGiveTheUnfusedBits) {
  const Graph g = load_model(fixture("mobilenet_v2/mobilenet_v2.onnx"));
  const Tensor x = read_npy(fixture("mobilenet_v2/input.npy"));
  for (int threads : {1, 2}) {
    ExecOptions plain_opt;
    plain_opt.threads = threads;
    plain_opt.fuse = false;
    ExecOptions fused_opt = plain_opt;
    fused_opt.fuse = true;
    Executor plain(g, plain_opt), fused(g, fused_opt);
    fused.set_profiling(true);
    const Tensor a = plain.run({x})[0], b = fused.run({x})[0];
    ASSERT_EQ(a.shape(), b.shape());
    EXPECT_EQ(0, std::memcmp(a.f32(), b.f32(), a.bytes())) << threads << " threads";
    int pairs = 0, triples = 0;
    for (const auto& l : fused.profile()) {
      pairs += l.where.find(" + ") != std::string::npos;
      triples += l.where.find(" + ", l.where.find(" + ") + 1) != std::string::npos;
    }
    // Blocks 2-6 at least (56x56 and 28x28) take their projection too (on the GEMM: on 14x14 and
    // 7x7 images an AVX-512 build moves it to the lanes), with its residual where it has one.
    EXPECT_LE(5, triples);
    // Every inverted residual block with an expansion (t = 6); with AVX-512, blocks 14-17 hand the
    // expansion over channels in lanes, the 14x14 ones run the two in turn.
    EXPECT_EQ(16, pairs);
  }
}

TEST(Models, ResNet18MatchesReference) {
  EXPECT_TRUE(matches_reference(fixture("resnet18/resnet18.onnx"), fixture("resnet18/input.npy"),
                                fixture("resnet18/ref_output.npy")));
}

// Same thread count, same bits; a different thread count still agrees with the reference.
TEST(Models, ResultsAreDeterministicPerThreadCount) {
  Tensor x = read_npy(fixture("mobilenet_v2/input.npy"));
  Tensor a = run_model(fixture("mobilenet_v2/mobilenet_v2.onnx"), x, 2);
  Tensor b = run_model(fixture("mobilenet_v2/mobilenet_v2.onnx"), x, 2);
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.bytes()));
  EXPECT_TRUE(test::close_to_reference(a, read_npy(fixture("mobilenet_v2/ref_output.npy"))));
}

// With the input shape declared, convolutions settle their method at load (Layer::prepare); without
// it, at the first frame. Same methods, same bits.
TEST(Models, MethodsChosenAtLoadGiveTheBitsOfMethodsChosenAtTheFirstFrame) {
  const Graph declared = load_model(fixture("mobilenet_v2/mobilenet_v2.onnx"));
  ASSERT_EQ(declared.inputs.at(0).shape.size(), 4u);
  Graph undeclared = declared;
  undeclared.inputs[0].shape = {};
  const Tensor x = read_npy(fixture("mobilenet_v2/input.npy"));
  const Tensor a = Executor(declared).run({x})[0], b = Executor(undeclared).run({x})[0];
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.bytes()));
}

// A declared input shape the model cannot take still loads; running it names the node that fails.
TEST(Models, DeclaredShapeThatDoesNotFitFailsAtRunNamingTheNode) {
  Graph g = load_model(fixture("lenet5_mnist/lenet5_mnist_b1.onnx"));
  g.inputs.at(0).shape = {1, 1, 3, 3};  // pooled to 1x1 before the second 5x5 convolution
  Executor ex(g);
  const std::string error = shape_error(ex, Tensor({1, 1, 3, 3}));
  EXPECT_NE(error.find("node '"), std::string::npos) << error;
}

TEST(Models, WrongInputShapeIsAClearError) {
  Graph g = load_model(fixture("lenet5_mnist/lenet5_mnist_b1.onnx"));
  Executor ex(g);
  const std::string error = shape_error(ex, Tensor({1, 3, 28, 28}));
  EXPECT_NE(error.find("[1,3,28,28]"), std::string::npos) << error;
}

}  // namespace
}  // namespace dnn
