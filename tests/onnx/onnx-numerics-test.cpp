// The small models of tests/data/onnx (tools/make_test_onnx.py: opset 9 paddle-style BatchNormalization,
// opset 11/13 operands, Constant-node weights, shape subgraphs, a dynamic-batch flatten, HardSwish)
// give the reference output after import, canonicalisation and fusion, run by `dnnswarm run`.
#include "onnx/run_reference.h"

namespace dnn {
namespace {

class OnnxNumerics : public testing::TestWithParam<std::string> {};

TEST_P(OnnxNumerics, MatchesReference) {
  test::expect_matches_reference(test::source("tests/data/onnx/" + GetParam() + ".onnx"));
}

INSTANTIATE_TEST_SUITE_P(TestModels, OnnxNumerics,
                         testing::Values("reshape_dyn_batch", "paddle_bn_opset9", "operands_opset11",
                                         "operands_opset13", "hardswish_opset13", "gemm_bn_opset13",
                                         "operands_opset18"),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace dnn
