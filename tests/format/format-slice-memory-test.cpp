// The slicing proof: a device that loads one shard of AlexNet's fc6 (9216 -> 4096, 151 MB of
// weights) reads only that shard's bytes and its memory grows by about the shard, not the layer.
// Each load runs in a forked child so its peak RSS (VmHWM) is its own.
#include <gtest/gtest.h>

#include <cstdlib>

#include "format/child_process.h"
#include "format/dnns.h"
#include "format/test_graphs.h"

namespace dnn {
namespace {

constexpr int64_t kIn = 9216, kOut = 4096;
constexpr double kMB = 1024.0 * 1024.0;

// fc6's weight W[n][k] (PyTorch layout [out, in], transB=1): a value a shard can check anywhere.
float weight_at(int64_t n, int64_t k) {
  uint32_t x = static_cast<uint32_t>(n * kIn + k) * 2654435761u;
  return static_cast<float>(x >> 8) / static_cast<float>(1 << 24) - 0.5f;
}

void write_fc6(const std::string& path) {
  Graph g;
  g.name = "alexnet-fc6";
  g.inputs = {{"x", {1, kIn}}};
  g.outputs = {{"y", {1, kOut}}};
  Node fc = testing::make_node("fc6", "Gemm", {"x", "fc6.weight", "fc6.bias"}, {"y"});
  fc.attrs.set("transB", int64_t{1});
  fc.attrs.set("dnn.activation", std::string("Relu"));
  g.nodes = {fc};
  Tensor w({kOut, kIn});
  float* p = w.f32();
  for (int64_t n = 0; n < kOut; ++n)
    for (int64_t k = 0; k < kIn; ++k) p[n * kIn + k] = weight_at(n, k);
  g.constants["fc6.weight"] = w;
  g.constants["fc6.bias"] = testing::random_tensor({kOut}, 7);
  write_dnns(g, path);
}  // the 151 MB are freed here, before any child is forked

struct ChildReport {
  testing::ChildStatus status;
  ReadStats stats;
  int64_t rss_before_kb = 0, hwm_after_kb = 0;
  int64_t weight_rows = 0, weight_cols = 0;
  bool has_bias = false, has_activation = false, values_match = false;
};

// Loads one shard of fc6 in a child process: what it read, how much its memory grew, what it got.
ChildReport load_in_child(const std::string& path, const ShardSpec& shard) {
  return testing::in_child<ChildReport>([&](ChildReport& r) {
    r.rss_before_kb = testing::status_kb("VmRSS:");
    LoadSpec spec;
    spec.node_begin = 0;
    spec.node_end = 1;
    spec.shard = shard;
    Graph g = read_dnns(path, spec, &r.stats);
    r.hwm_after_kb = testing::status_kb("VmHWM:");
    const Node& fc = g.nodes.back();
    const Tensor& w = g.constants.at(fc.inputs[1]);
    r.weight_rows = w.dim(0);
    r.weight_cols = w.dim(1);
    r.has_bias = fc.inputs.size() > 2;
    r.has_activation = fc.attrs.has("dnn.activation");
    SplitRange range = split_range(shard.axis == SplitAxis::OutputRows ? kOut : kIn, shard.index, shard.count, "");
    bool match = true;
    const float* p = w.f32();
    for (int64_t n = 0; n < w.dim(0); ++n)
      for (int64_t k = 0; k < w.dim(1); ++k) {
        float want = shard.axis == SplitAxis::OutputRows ? weight_at(range.begin + n, k) : weight_at(n, range.begin + k);
        match &= p[n * w.dim(1) + k] == want;
      }
    r.values_match = match;
  });
}

class SliceProof : public testing::TempDir {};

TEST_F(SliceProof, OneShardOfAlexNetFc6ReadsAndHoldsOnlyItsSlice) {
  const std::string model = path("fc6.dnns");
  write_fc6(model);
  const double layer_mb = kOut * kIn * 4 / kMB;

  struct Case {
    ShardSpec shard;
    int64_t rows, cols;
    uint64_t slice_bytes;
    bool bias, activation;
  };
  const Case cases[] = {
      // A quarter of the output rows: contiguous rows of W plus a quarter of the bias.
      {{"fc6", SplitAxis::OutputRows, 1, 4}, kOut / 4, kIn, (kOut / 4) * kIn * 4 + (kOut / 4) * 4, true, true},
      // A quarter of the input columns: a strided quarter of every row of W; no bias, no activation.
      {{"fc6", SplitAxis::InputColumns, 1, 4}, kOut, kIn / 4, kOut * (kIn / 4) * 4, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(to_string(c.shard.axis));
    ChildReport r = load_in_child(model, c.shard);
    ASSERT_TRUE(r.status.ok) << r.status.error;
    EXPECT_EQ(r.weight_rows, c.rows);
    EXPECT_EQ(r.weight_cols, c.cols);
    EXPECT_TRUE(r.values_match);
    EXPECT_EQ(r.has_bias, c.bias);
    EXPECT_EQ(r.has_activation, c.activation);

    // Bytes read: exactly the slice, plus a header of a few hundred bytes.
    EXPECT_EQ(r.stats.weight_bytes, c.slice_bytes);
    EXPECT_LT(r.stats.header_bytes, 4096u);
    // Peak memory: the slice plus at most 16 MB, far below the whole layer.
    const double slice_mb = c.slice_bytes / kMB;
    const double growth_mb = (r.hwm_after_kb - r.rss_before_kb) / 1024.0;
    EXPECT_LT(growth_mb, slice_mb + 16);
    EXPECT_LT(growth_mb, layer_mb / 2);
    std::cout << "{\"test\":\"slice-proof\",\"axis\":\"" << to_string(c.shard.axis) << "\",\"layer_mb\":" << layer_mb
              << ",\"slice_mb\":" << slice_mb << ",\"bytes_read\":" << r.stats.weight_bytes + r.stats.header_bytes
              << ",\"reads\":" << r.stats.reads << ",\"peak_rss_growth_mb\":" << growth_mb << "}\n";
  }
}

// The same on the real models, converted by `dnnswarm convert` (opt-in: DNN_MODELS_DIR is the
// folder bench/engine_vs_ort.sh generates). Their fc6 is the first Gemm.
TEST_F(SliceProof, QuarterOfRealFc6OfAlexNetAndVgg16WhenGenerated) {
  const char* dir = std::getenv("DNN_MODELS_DIR");
  if (!dir) GTEST_SKIP() << "set DNN_MODELS_DIR to the output folder of make_models.py";
  for (std::string onnx : {"/bench/alexnet/alexnet.onnx", "/large/vgg16/vgg16.onnx"}) {
    SCOPED_TRACE(onnx);
    const std::string model = path("model.dnns");
    testing::Command c = testing::run_dnnswarm("convert --model " + std::string(dir) + onnx + " --output " + model);
    ASSERT_EQ(c.status, 0) << c.out;
    const DnnsHeader h = read_dnns_header(model);
    size_t fc6 = 0;
    while (fc6 < h.graph.nodes.size() && h.graph.nodes[fc6].op != "Gemm") ++fc6;
    ASSERT_LT(fc6, h.graph.nodes.size());
    const Node& node = h.graph.nodes[fc6];
    const Shape w = h.constants.at(node.inputs[1]).shape;  // [N, K]
    const double layer_mb = numel(w) * 4 / kMB;

    for (SplitAxis axis : {SplitAxis::OutputRows, SplitAxis::InputColumns}) {
      SCOPED_TRACE(to_string(axis));
      struct Report {
        testing::ChildStatus status;
        ReadStats stats;
        int64_t rss_before_kb, hwm_after_kb;
      };
      Report r = testing::in_child<Report>([&](Report& rep) {
        rep.rss_before_kb = testing::status_kb("VmRSS:");
        LoadSpec spec;
        spec.node_begin = fc6;
        spec.node_end = fc6 + 1;
        spec.shard = ShardSpec{node.name, axis, 1, 4};
        read_dnns(model, spec, &rep.stats);
        rep.hwm_after_kb = testing::status_kb("VmHWM:");
      });
      ASSERT_TRUE(r.status.ok) << r.status.error;
      const uint64_t slice_bytes = axis == SplitAxis::OutputRows ? (w[0] / 4) * (w[1] + 1) * 4  // rows + bias
                                                                 : w[0] * (w[1] / 4) * 4;     // columns, no bias
      EXPECT_EQ(r.stats.weight_bytes, slice_bytes);
      const double growth_mb = (r.hwm_after_kb - r.rss_before_kb) / 1024.0;
      EXPECT_LT(growth_mb, slice_bytes / kMB + 16);
      std::cout << "{\"test\":\"slice-proof\",\"model\":\"" << onnx << "\",\"axis\":\"" << to_string(axis)
                << "\",\"layer_mb\":" << layer_mb << ",\"slice_mb\":" << slice_bytes / kMB
                << ",\"bytes_read\":" << r.stats.weight_bytes + r.stats.header_bytes
                << ",\"peak_rss_growth_mb\":" << growth_mb << "}\n";
    }
  }
}

}  // namespace
}  // namespace dnn
