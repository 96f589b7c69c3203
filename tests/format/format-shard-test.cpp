// Shard slicing without running layers: which rows each shard gets, what its graph holds, that a
// file load and an in-memory slice agree, and join_shards' arithmetic.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "format/dnns.h"
#include "format/shard.h"
#include "format/test_graphs.h"

namespace dnn {
namespace {

using testing::gemm_graph;
using testing::make_node;
using testing::random_tensor;

// The [begin,end) box of a 2-D tensor, copied.
Tensor box2d(const Tensor& t, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  Tensor out({r1 - r0, c1 - c0});
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) out.f32()[(r - r0) * (c1 - c0) + (c - c0)] = t.f32()[r * t.dim(1) + c];
  return out;
}

TEST(SplitRange, CoversTheExtentWithSizesDifferingByAtMostOne) {
  for (int64_t extent : {1, 5, 10, 4096, 9216})
    for (int count = 1; count <= std::min<int64_t>(extent, 7); ++count) {
      int64_t next = 0, smallest = extent, largest = 0;
      for (int i = 0; i < count; ++i) {
        SplitRange r = split_range(extent, i, count, "t");
        EXPECT_EQ(r.begin, next);
        next = r.end;
        smallest = std::min(smallest, r.size());
        largest = std::max(largest, r.size());
      }
      EXPECT_EQ(next, extent);
      EXPECT_LE(largest - smallest, 1);
    }
  SplitRange r = split_range(10, 2, 3, "t");  // 4, 3, 3
  EXPECT_EQ(r.begin, 7);
  EXPECT_EQ(r.end, 10);
}

TEST(SplitAxisNames, RoundTripAndRejectUnknown) {
  for (SplitAxis a : {SplitAxis::OutputRows, SplitAxis::OutputChannels, SplitAxis::InputColumns})
    EXPECT_EQ(parse_split_axis(to_string(a)), a);
  EXPECT_THROW(parse_split_axis("rows-ish"), ModelError);
}

TEST(ShardRanges, FollowTheWeightLayout) {
  Graph g = gemm_graph(1, 10, 7, /*trans_b=*/false);  // W is [K=10, N=7]
  auto rows = shard_ranges(g, {"fc", SplitAxis::OutputRows, 0, 3});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].size(), 3);
  EXPECT_EQ(rows[2].end, 7);
  EXPECT_EQ(split_extent(g, {"fc", SplitAxis::InputColumns, 0, 3}), 10);
  EXPECT_EQ(split_extent(gemm_graph(1, 10, 7, true), {"fc", SplitAxis::InputColumns, 0, 3}), 10);
}

TEST(ShardGraph, OutputRowsSlicesWeightRowsAndBias) {
  for (bool trans_b : {true, false}) {
    SCOPED_TRACE(trans_b ? "transB=1" : "transB=0");
    Graph full = gemm_graph(2, 6, 5, trans_b);
    Graph s = shard_graph(full, {"fc", SplitAxis::OutputRows, 1, 2});  // rows [3, 5)
    ASSERT_EQ(s.nodes.size(), 1u);
    const Node& fc = s.nodes[0];
    EXPECT_EQ(fc.outputs, full.nodes[0].outputs);
    const Tensor& w = s.constants.at(fc.inputs[1]);
    const Tensor& fw = full.constants.at("fc.W");
    testing::expect_same_bytes(w, trans_b ? box2d(fw, 3, 5, 0, 6) : box2d(fw, 0, 6, 3, 5), "W");
    const Tensor& b = s.constants.at(fc.inputs[2]);
    ASSERT_EQ(b.shape(), (Shape{2}));
    EXPECT_EQ(b.f32()[0], full.constants.at("fc.b").f32()[3]);
    EXPECT_EQ(fc.inputs[1], "fc.W/shard1of2");
    ASSERT_EQ(s.inputs.size(), 1u);
    EXPECT_EQ(s.inputs[0].name, "x");
    ASSERT_EQ(s.outputs.size(), 1u);
    EXPECT_EQ(s.outputs[0].name, "h");
  }
  // When the shard's output is a model output, its declared shape is the shard's.
  Graph last = gemm_graph(2, 6, 5, true);
  last.nodes.pop_back();
  last.outputs = {{"h", {2, 5}}};
  EXPECT_EQ(shard_graph(last, {"fc", SplitAxis::OutputRows, 0, 2}).outputs[0].shape, (Shape{2, 3}));
  EXPECT_EQ(shard_graph(last, {"fc", SplitAxis::InputColumns, 0, 2}).outputs[0].shape, (Shape{2, 5}));
}

TEST(ShardGraph, InputColumnsSlicesTheActivationAndKeepsTheBiasOnShardZero) {
  Graph full = gemm_graph(2, 6, 5, true);
  full.nodes[0].attrs.set("dnn.activation", std::string("Clip"));
  full.nodes[0].attrs.set("dnn.act_min", 0.f);
  full.nodes[0].attrs.set("dnn.act_max", 6.f);
  for (int index : {0, 1}) {
    SCOPED_TRACE(index);
    Graph s = shard_graph(full, {"fc", SplitAxis::InputColumns, index, 2});  // K [0,3) or [3,6)
    ASSERT_EQ(s.nodes.size(), 2u);
    const Node& slice = s.nodes[0];
    EXPECT_EQ(slice.op, "Slice");
    EXPECT_EQ(slice.inputs, (std::vector<std::string>{"x"}));
    EXPECT_EQ(slice.attrs.ints("starts"), (std::vector<int64_t>{3 * index}));
    EXPECT_EQ(slice.attrs.ints("ends"), (std::vector<int64_t>{3 * index + 3}));
    EXPECT_EQ(slice.attrs.ints("axes"), (std::vector<int64_t>{1}));
    const Node& fc = s.nodes[1];
    EXPECT_EQ(fc.inputs[0], slice.outputs[0]);
    EXPECT_FALSE(fc.attrs.has("dnn.activation"));
    EXPECT_FALSE(fc.attrs.has("dnn.act_max"));
    EXPECT_EQ(fc.attrs.i("transB", 0), 1);
    EXPECT_EQ(fc.inputs.size(), index == 0 ? 3u : 2u);
    testing::expect_same_bytes(s.constants.at(fc.inputs[1]), box2d(full.constants.at("fc.W"), 0, 5, 3 * index, 3 * index + 3), "W");
    ASSERT_EQ(s.inputs.size(), 1u);
    EXPECT_EQ(s.inputs[0].shape, (Shape{2, 6}));  // the device takes the FULL activation
  }
  Attrs act = fused_activation(full.nodes[0]);
  EXPECT_EQ(act.s("dnn.activation", ""), "Clip");
  EXPECT_EQ(act.all().size(), 3u);
}

Graph conv_graph(bool residual, int64_t group = 1) {
  Graph g;
  g.inputs = {{"x", {1, 4, 5, 5}}};
  g.outputs = {{"y", {1, 6, 5, 5}}};
  Node conv = make_node("conv", "Conv", {"x", "conv.W", "conv.b"}, {"y"});
  if (residual) {
    g.inputs.push_back({"skip", {1, 6, 5, 5}});
    conv.inputs.push_back("skip");
  }
  conv.attrs.set("group", group);
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes = {conv};
  g.constants["conv.W"] = random_tensor({6, 4 / group, 3, 3}, 5);
  g.constants["conv.b"] = random_tensor({6}, 6);
  return g;
}

TEST(ShardGraph, OutputChannelsSlicesFiltersBiasAndResidual) {
  Graph full = conv_graph(/*residual=*/true);
  Graph s = shard_graph(full, {"conv", SplitAxis::OutputChannels, 2, 3});  // channels [4, 6)
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].op, "Slice");
  EXPECT_EQ(s.nodes[0].inputs[0], "skip");
  EXPECT_EQ(s.nodes[0].attrs.ints("axes"), (std::vector<int64_t>{1}));
  const Node& conv = s.nodes[1];
  EXPECT_EQ(conv.inputs[3], s.nodes[0].outputs[0]);
  const Tensor& w = s.constants.at(conv.inputs[1]);
  ASSERT_EQ(w.shape(), (Shape{2, 4, 3, 3}));
  EXPECT_EQ(std::memcmp(w.f32(), full.constants.at("conv.W").f32() + 4 * 36, w.bytes()), 0);
  EXPECT_EQ(s.constants.at(conv.inputs[2]).f32()[1], full.constants.at("conv.b").f32()[5]);
}

TEST(ShardGraph, GroupedConvolutionSplitsByWholeGroups) {
  Graph full = conv_graph(false, 2);  // 4 input channels, 6 output channels in 2 groups
  EXPECT_EQ(split_extent(full, {"conv", SplitAxis::OutputChannels, 0, 2}), 2);
  Graph s = shard_graph(full, {"conv", SplitAxis::OutputChannels, 1, 2});  // group 1
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].op, "Slice");
  EXPECT_EQ(s.nodes[0].attrs.ints("starts"), (std::vector<int64_t>{2}));  // its input channels [2, 4)
  EXPECT_EQ(s.nodes[0].attrs.ints("ends"), (std::vector<int64_t>{4}));
  const Node& conv = s.nodes[1];
  EXPECT_EQ(conv.attrs.i("group", 0), 1);
  const Tensor& w = s.constants.at(conv.inputs[1]);
  ASSERT_EQ(w.shape(), (Shape{3, 2, 3, 3}));  // its output channels [3, 6)
  EXPECT_EQ(std::memcmp(w.f32(), full.constants.at("conv.W").f32() + 3 * 18, w.bytes()), 0);
  try {
    shard_graph(full, {"conv", SplitAxis::OutputChannels, 0, 3});
    FAIL() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot split 2 rows into 3"), std::string::npos) << e.what();
  }
}

class ShardFromFile : public testing::TempDir {};

TEST_F(ShardFromFile, ReadDnnsGivesTheSameShardAsSliceGraph) {
  struct Case {
    Graph full;
    ShardSpec shard;
  };
  Case cases[] = {{gemm_graph(3, 10, 7, true), {"fc", SplitAxis::OutputRows, 2, 3}},
                  {gemm_graph(3, 10, 7, false), {"fc", SplitAxis::OutputRows, 0, 3}},
                  {gemm_graph(3, 10, 7, true), {"fc", SplitAxis::InputColumns, 1, 4}},
                  {gemm_graph(3, 10, 7, false), {"fc", SplitAxis::InputColumns, 3, 4}},
                  {conv_graph(true), {"conv", SplitAxis::OutputChannels, 1, 4}},
                  {conv_graph(false, 2), {"conv", SplitAxis::OutputChannels, 1, 2}}};
  for (auto& c : cases) {
    SCOPED_TRACE(c.shard.node + " " + to_string(c.shard.axis) + " " + std::to_string(c.shard.index));
    write_dnns(c.full, path("m.dnns"));
    Graph mem = shard_graph(c.full, c.shard);
    LoadSpec spec;
    spec.node_begin = 0;
    spec.node_end = 1;
    spec.shard = c.shard;
    ReadStats stats;
    Graph file = read_dnns(path("m.dnns"), spec, &stats);
    ASSERT_EQ(mem.nodes.size(), file.nodes.size());
    for (size_t i = 0; i < mem.nodes.size(); ++i) {
      EXPECT_EQ(mem.nodes[i].inputs, file.nodes[i].inputs);
      EXPECT_EQ(mem.nodes[i].attrs.all(), file.nodes[i].attrs.all());
    }
    ASSERT_EQ(mem.constants.size(), file.constants.size());
    uint64_t bytes = 0;
    for (auto& kv : mem.constants) {
      testing::expect_same_bytes(kv.second, file.constants.at(kv.first), kv.first);
      bytes += kv.second.bytes();
    }
    EXPECT_EQ(stats.weight_bytes, bytes);  // nothing but the shard's own bytes
  }
}

TEST(JoinShards, ConcatenatesAlongAxisOnePerBatchItem) {
  Tensor a = Tensor::from_f32({2, 2}, {1, 2, 5, 6});
  Tensor b = Tensor::from_f32({2, 1}, {3, 7});
  Tensor y = join_shards({a, b}, SplitAxis::OutputRows, {});
  ASSERT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(std::vector<float>(y.f32(), y.f32() + 6), (std::vector<float>{1, 2, 3, 5, 6, 7}));

  Tensor c = random_tensor({2, 3, 2, 2}, 1), d = random_tensor({2, 1, 2, 2}, 2);
  Tensor z = join_shards({c, d}, SplitAxis::OutputChannels, {});
  ASSERT_EQ(z.shape(), (Shape{2, 4, 2, 2}));
  EXPECT_EQ(z.f32()[12 + 0], d.f32()[0]);   // batch 0, channel 3
  EXPECT_EQ(z.f32()[16 + 4], c.f32()[12 + 4]);  // batch 1, channel 1
}

TEST(JoinShards, SumsThenAppliesTheRemovedActivation) {
  Tensor a = Tensor::from_f32({1, 4}, {1, -2, 3, -4});
  Tensor b = Tensor::from_f32({1, 4}, {0.5f, 1, 4, 1});
  auto joined = [&](const std::string& act, float p0, float p1) {
    Attrs at;
    if (!act.empty()) at.set("dnn.activation", act);
    at.set("dnn.act_min", p0);
    at.set("dnn.act_max", p1);
    at.set("dnn.act_alpha", p0);
    Tensor y = join_shards({a, b}, SplitAxis::InputColumns, at);
    return std::vector<float>(y.f32(), y.f32() + 4);
  };
  EXPECT_EQ(joined("", 0, 0), (std::vector<float>{1.5f, -1, 7, -3}));
  EXPECT_EQ(joined("Relu", 0, 0), (std::vector<float>{1.5f, 0, 7, 0}));
  EXPECT_EQ(joined("Clip", 0, 6), (std::vector<float>{1.5f, 0, 6, 0}));
  EXPECT_EQ(joined("LeakyRelu", 0.5f, 0), (std::vector<float>{1.5f, -0.5f, 7, -1.5f}));
  auto hs = joined("HardSwish", 0, 0);
  EXPECT_FLOAT_EQ(hs[0], 1.5f * 4.5f / 6.f);
  EXPECT_FLOAT_EQ(hs[3], 0.f);
  EXPECT_FLOAT_EQ(joined("Sigmoid", 0, 0)[1], 1.f / (1.f + std::exp(1.f)));
  // The original input is untouched: the sum is a new tensor.
  EXPECT_EQ(a.f32()[1], -2.f);
}

TEST(JoinShards, RejectsMismatchedParts) {
  Tensor a({1, 4}), b({1, 3}), c({2, 4});
  EXPECT_THROW(join_shards({a, b}, SplitAxis::InputColumns, {}), ShapeError);
  EXPECT_THROW(join_shards({a, c}, SplitAxis::OutputRows, {}), ShapeError);
  EXPECT_THROW(join_shards({}, SplitAxis::OutputRows, {}), ShapeError);
  Attrs unknown;
  unknown.set("dnn.activation", std::string("Swish"));
  EXPECT_THROW(join_shards({a, a}, SplitAxis::InputColumns, unknown), ModelError);
}

}  // namespace
}  // namespace dnn
