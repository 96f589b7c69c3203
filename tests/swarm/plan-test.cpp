// Plan files: parsing, every validation error with its message, coverage against the real LeNet-5,
// and the proposer on LeNet-5 and ResNet18 for 1..8 devices.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/model.h"
#include "support/fixtures.h"
#include "swarm/plan.h"

namespace dnn {
namespace {

using test::error_of;
using test::fixture;
using test::source;

const std::string kLenet = fixture("lenet5_mnist/lenet5_mnist_b1.onnx");

const Graph& lenet() {
  static const Graph g = load_model(kLenet);
  return g;
}

// A plan for the real LeNet-5 from a stages array; model_path is the fixture.
Plan lenet_plan(const std::string& stages_json) {
  Plan p = parse_plan("{\"model\": \"lenet5\", \"model_path\": \"" + kLenet + "\", \"stages\": " + stages_json + "}",
                      "", "test plan");
  resolve_plan(p, lenet());
  return p;
}

std::string validation_error(const std::string& stages_json) {
  return error_of([&] { validate_plan(lenet_plan(stages_json), lenet()); });
}

size_t n_lenet() { return lenet().nodes.size(); }
std::string idx(size_t i) { return std::to_string(i); }
size_t index_of(const std::string& name) {
  for (size_t i = 0; i < lenet().nodes.size(); ++i)
    if (lenet().nodes[i].name == name) return i;
  ADD_FAILURE() << "LeNet-5 has no node " << name;
  return 0;
}

TEST(Plan, OutputBlockIsParsedAndRoundTrips) {
  const Plan p = load_plan(source("deploy/lenet5-swarm.json"), lenet());
  ASSERT_TRUE(p.output.has_value());
  EXPECT_EQ(p.output->labels.size(), 10u);
  EXPECT_EQ(p.output->detect, (std::vector<std::string>{"0", "7"}));
  const Plan q = parse_plan(plan_to_json(p), "", "round trip");
  ASSERT_TRUE(q.output.has_value());
  EXPECT_TRUE(*q.output == *p.output);
  EXPECT_NE(error_of([] { parse_plan(R"({"model": "m", "model_path": "", "stages": [{"name": "a", "begin": 0, "end": 1}],
                                         "output": {"top_k": "five"}})", "", "plan p"); })
                .find("plan p: output: 'top_k'"),
            std::string::npos);
  // Labels for another model's classes: refused before any node starts.
  Plan imagenet = p;
  imagenet.output = parse_result_spec(nlohmann::json::parse(R"({"labels": "models/imagenet/labels.txt"})"), source(""), "t");
  EXPECT_NE(error_of([&] { validate_plan(imagenet, lenet()); })
                .find("has 1000 labels, but the model outputs 10 values per frame"),
            std::string::npos);
}

TEST(Plan, ParsesEveryFieldAndRoundTrips) {
  Plan p = parse_plan(R"({"model": "lenet5", "model_path": "../models/m.onnx", "stages": [
      {"name": "a", "begin": 0, "end": 3, "replicas": 2, "cpu_quota": [0.3, 0.15], "memory_mb": 128},
      {"name": "b", "from": "x", "to": "y", "cpu_quota": 0.2},
      {"name": "fc", "shard": {"node": "fc1", "split": "columns", "count": 3}, "replicas": 2}]})",
                      "/opt/deploy", "test plan");
  EXPECT_EQ(p.model, "lenet5");
  EXPECT_EQ(p.model_path, "/opt/models/m.onnx");   // relative to the plan's folder
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(p.stages[0].node_end, 3u);
  EXPECT_EQ(p.stages[0].cpu_quota_of(0), 0.3);
  EXPECT_EQ(p.stages[0].cpu_quota_of(1), 0.15);
  EXPECT_EQ(p.stages[0].memory_limit_mb, 128);
  EXPECT_EQ(p.stages[1].from_node, "x");
  EXPECT_EQ(p.stages[1].cpu_quota_of(0), 0.2);
  EXPECT_EQ(p.stages[2].shard_axis, SplitAxis::InputColumns);
  EXPECT_EQ(p.stages[2].shard(2).index, 2);
  EXPECT_EQ(p.stages[2].shard(2).count, 3);
  EXPECT_EQ(p.roles(), 2 + 1 + 6);

  Plan q = parse_plan(plan_to_json(p), "", "round trip");
  EXPECT_EQ(plan_to_json(q), plan_to_json(p));
}

TEST(Plan, MalformedFilesAreRefusedNamingTheProblem) {
  auto parse_error = [](const std::string& text) {
    return error_of([&] { parse_plan(text, "", "plan 'p.json'"); });
  };
  EXPECT_NE(parse_error("{\"model\": ").find("plan 'p.json': not valid JSON"), std::string::npos);
  EXPECT_EQ(parse_error(R"({"model_path": "m", "stages": []})"), "plan 'p.json': missing key 'model'");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": []})"),
            "plan 'p.json': 'stages' must be a non-empty array");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a", "begin": 0, "end": 2, "replica": 2}]})"),
            "plan 'p.json': stage 0: unknown key 'replica'");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a", "begin": 0, "end": 2, "replicas": 0}]})"),
            "plan 'p.json': stage 0: 'replicas' must be an integer >= 1");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a"}]})"),
            "plan 'p.json': stage 0: missing node range: give begin/end (indices) or from/to (node names)");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a", "begin": 2, "end": 2}]})"),
            "plan 'p.json': stage 0: empty range: end must be greater than begin");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a/b", "begin": 0, "end": 2}]})"),
            "plan 'p.json': stage 0: stage name 'a/b' may only use letters, digits, '_' and '-'");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a", "begin": 0, "end": 1},
                                                                        {"name": "a", "begin": 1, "end": 2}]})"),
            "plan 'p.json': two stages are named 'a'");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "f", "shard": {"node": "fc", "split": "diagonal", "count": 2}}]})"),
            "plan 'p.json': stage 0: shard: unknown split 'diagonal' (expected rows, channels or columns)");
  EXPECT_EQ(parse_error(R"({"model": "m", "model_path": "m", "stages": [{"name": "a", "begin": 0, "end": 2, "replicas": 2, "cpu_quota": [0.1]}]})"),
            "plan 'p.json': stage 0: 'cpu_quota' has 1 entries for 2 replicas");
  EXPECT_EQ(error_of([] { read_plan("/nonexistent/plan.json"); }), "cannot read plan file '/nonexistent/plan.json'");
}

TEST(Plan, CoverageOfTheRealLeNet5IsChecked) {
  const size_t n = n_lenet();
  ASSERT_GE(n, 5u);
  EXPECT_EQ(validation_error(R"([{"name": "all", "begin": 0, "end": )" + idx(n) + "}]"), "");
  EXPECT_EQ(validation_error(R"([{"name": "a", "begin": 0, "end": 2}, {"name": "b", "begin": 3, "end": )" + idx(n) + "}]"),
            "plan for 'lenet5': stage 1 ('b'): gap: nodes [2, 3) belong to no stage");
  EXPECT_EQ(validation_error(R"([{"name": "a", "begin": 0, "end": 3}, {"name": "b", "begin": 2, "end": )" + idx(n) + "}]"),
            "plan for 'lenet5': stage 1 ('b'): overlap: nodes [2, " + idx(n) +
                ") starts before the previous stage ends at node 3");
  EXPECT_EQ(validation_error(R"([{"name": "a", "begin": 0, "end": )" + idx(n + 1) + "}]"),
            "plan for 'lenet5': stage 0 ('a'): nodes [0, " + idx(n + 1) + ") out of bounds: model '" + lenet().name +
                "' has " + idx(n) + " nodes");
  EXPECT_EQ(validation_error(R"([{"name": "a", "begin": 0, "end": 2}])"),
            "plan for 'lenet5' does not cover the whole model: nodes [2, " + idx(n) + ") of '" + lenet().name +
                "' (from " + lenet().describe(lenet().nodes[2]) + ") belong to no stage");
  EXPECT_EQ(validation_error(R"([{"name": "a", "begin": 1, "end": )" + idx(n) + "}]"),
            "plan for 'lenet5': stage 0 ('a'): gap: nodes [0, 1) belong to no stage");
}

TEST(Plan, NodeNamesResolveToRanges) {
  const size_t fc1 = index_of("/fc1/Gemm");
  Plan p = lenet_plan(R"([{"name": "a", "from": "/conv1/Conv", "to": ")" + lenet().nodes[fc1 - 1].name + R"("},
                          {"name": "fc1", "shard": {"node": "/fc1/Gemm", "split": "rows", "count": 4}},
                          {"name": "head", "begin": )" + idx(fc1 + 1) + ", \"end\": " + idx(n_lenet()) + "}]");
  EXPECT_EQ(p.stages[0].node_begin, 0u);
  EXPECT_EQ(p.stages[0].node_end, fc1);
  EXPECT_EQ(p.stages[1].node_begin, fc1);
  EXPECT_EQ(p.stages[1].node_end, fc1 + 1);
  EXPECT_NO_THROW(validate_plan(p, lenet()));
  EXPECT_EQ(error_of([] { lenet_plan(R"([{"name": "a", "from": "/conv1/Conv", "to": "/nope"}])"); }),
            "plan for 'lenet5': stage 0 ('a'): model '" + lenet().name + "' has no node named '/nope'");
  EXPECT_EQ(error_of([] { lenet_plan(R"([{"name": "a", "from": "/fc1/Gemm", "to": "/conv1/Conv"}])"); }),
            "plan for 'lenet5': stage 0 ('a'): 'to' node '/conv1/Conv' comes before 'from' node '/fc1/Gemm'");
}

TEST(Plan, ShardsMustBeAConvOrGemmAloneInItsStage) {
  const size_t n = n_lenet(), fc1 = index_of("/fc1/Gemm"), pool = index_of("/MaxPool");
  const std::string head = R"({"name": "head", "begin": )" + idx(fc1 + 1) + ", \"end\": " + idx(n) + "}";
  const std::string before = R"({"name": "a", "begin": 0, "end": )" + idx(fc1) + "}";
  // Not alone: the shard stage's range also holds the node after fc1.
  EXPECT_EQ(validation_error("[" + before + R"(, {"name": "f", "begin": )" + idx(fc1) + ", \"end\": " + idx(n) +
                             R"(, "shard": {"node": "/fc1/Gemm", "split": "rows", "count": 2}}])"),
            "plan for 'lenet5': stage 1 ('f'): shard node '/fc1/Gemm' must be alone in its stage, but the stage has "
            "nodes [" + idx(fc1) + ", " + idx(n) + ")");
  // Not a Conv or Gemm.
  EXPECT_EQ(validation_error(R"([{"name": "a", "begin": 0, "end": )" + idx(pool) + R"(},
                                 {"name": "p", "shard": {"node": "/MaxPool", "split": "channels", "count": 2}},
                                 {"name": "b", "begin": )" + idx(pool + 1) + ", \"end\": " + idx(n) + "}]"),
            "plan for 'lenet5': stage 1 ('p'): cannot shard node '/MaxPool' (MaxPool): only Conv and Gemm layers can "
            "be split");
  // Wrong axis for a Gemm, and more shards than rows (fc1 has 120 outputs).
  EXPECT_EQ(validation_error("[" + before + R"(, {"name": "f", "shard": {"node": "/fc1/Gemm", "split": "channels", "count": 2}}, )" + head + "]"),
            "plan for 'lenet5': stage 1 ('f'): node '/fc1/Gemm' (Gemm) is split by \"rows\" or \"columns\", not "
            "\"channels\"");
  EXPECT_EQ(validation_error("[" + before + R"(, {"name": "f", "shard": {"node": "/fc1/Gemm", "split": "rows", "count": 121}}, )" + head + "]"),
            "plan for 'lenet5': stage 1 ('f'): cannot split node '/fc1/Gemm' (Gemm) into 121 shards: it has only 120 "
            "rows");
  EXPECT_EQ(validation_error("[" + before + R"(, {"name": "f", "shard": {"node": "/fc1/Gemm", "split": "columns", "count": 4}}, )" + head + "]"),
            "");
}

TEST(Plan, MissingModelFileIsReported) {
  Plan p = lenet_plan(R"([{"name": "all", "begin": 0, "end": )" + idx(n_lenet()) + "}]");
  p.model_path = "/nonexistent/lenet5.onnx";
  EXPECT_EQ(error_of([&] { validate_plan(p, lenet()); }),
            "plan for 'lenet5': model file '/nonexistent/lenet5.onnx' does not exist");
}

TEST(Plan, ShippedExamplePlansAreValid) {
  const Plan p = load_plan(source("deploy/lenet5-swarm.json"), load_model(source("models/lenet5/lenet5_mnist_b1.onnx")));
  // The default demo: a pipeline, a replicated stage and a sharded layer, at least 4 nodes.
  EXPECT_GE(p.stages.size(), 3u);
  EXPECT_GE(p.roles(), 4);
  bool replicated = false, sharded = false;
  for (const auto& s : p.stages) {
    replicated |= s.replicas > 1;
    sharded |= s.sharded();
  }
  EXPECT_TRUE(replicated);
  EXPECT_TRUE(sharded);
}

// Every proposal must be a plan validate_plan accepts, use at most the devices given, and fit memory.
void check_proposals(const std::string& model_path, int64_t memory_mb) {
  const Graph g = load_model(model_path);
  const auto costs = node_costs(g);
  for (int devices = 1; devices <= 8; ++devices) {
    ProposeOptions o;
    o.devices = devices;
    o.memory_mb = memory_mb;
    o.model_path = model_path;
    Plan p = propose_plan(g, costs, o);
    SCOPED_TRACE(plan_to_json(p));
    EXPECT_NO_THROW(validate_plan(p, g));
    EXPECT_LE(p.roles(), devices);
    // With no memory limit the whole model fits one device: every device is a full replica.
    if (memory_mb == 0) EXPECT_EQ(p.roles(), devices);
    Plan q = parse_plan(plan_to_json(p), "", "proposal");
    EXPECT_EQ(plan_to_json(q), plan_to_json(p));
  }
}

TEST(PlanProposer, LeNet5ForOneToEightDevices) { check_proposals(kLenet, 0); }
TEST(PlanProposer, ResNet18ForOneToEightDevices) { check_proposals(fixture("resnet18/resnet18.onnx"), 0); }

TEST(PlanProposer, PipelineDepthIsBalancedAndCutsWhereLittleCrosses) {
  const Graph g = load_model(fixture("mobilenet_v2/mobilenet_v2.onnx"));
  const auto costs = node_costs(g);
  const auto cuts = cut_bytes(g, costs);
  ProposeOptions o;
  o.devices = 4;
  o.stages = 4;
  Plan p = propose_plan(g, costs, o);
  ASSERT_EQ(p.stages.size(), 4u);
  EXPECT_NO_THROW(validate_plan(p, g));
  int64_t total = 0;
  for (const auto& c : costs) total += c.macs;
  for (const auto& s : p.stages) {
    int64_t macs = 0;
    for (size_t i = s.node_begin; i < s.node_end; ++i) macs += costs[i].macs;
    EXPECT_GT(macs, total / 8) << s.name;    // no stage starves ...
    EXPECT_LT(macs, total / 2) << s.name;    // ... and none carries half the model
    if (s.node_begin > 0) EXPECT_EQ(live_values_at(g, s.node_begin).size(), 1u) << "cut before " << s.node_begin;
  }
}

TEST(PlanProposer, LayerTooBigForADeviceIsShardedInItsOwnStage) {
  // LeNet-5's fc1 holds 192 KB of weights; give devices room for the rest but not for fc1.
  const Graph g = lenet();
  auto costs = node_costs(g);
  const size_t fc1 = index_of("/fc1/Gemm");
  // Scale every weight so fc1 needs ~3 budgets of 16 MB while the others stay small.
  for (auto& c : costs) c.weight_bytes *= 250;   // fc1: 48 MB, fc2: 10 MB
  ProposeOptions o;
  o.devices = 8;
  o.memory_mb = 64 + 20;   // 20 MB beyond the per-node overhead
  Plan p = propose_plan(g, costs, o);
  SCOPED_TRACE(plan_to_json(p));
  EXPECT_NO_THROW(validate_plan(p, g));
  const StageSpec* fc = nullptr;
  for (const auto& s : p.stages)
    if (s.sharded()) fc = &s;
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->shard_node, "/fc1/Gemm");
  EXPECT_EQ(fc->node_begin, fc1);
  EXPECT_EQ(fc->shards, 3);
  EXPECT_EQ(fc->shard_axis, SplitAxis::OutputRows);
  EXPECT_LE(p.roles(), 8);
  o.devices = 3;
  EXPECT_NE(error_of([&] { propose_plan(g, costs, o); }).find("needs at least"), std::string::npos);
}

TEST(Plan, InputPreprocessingIsParsedCheckedAndRoundTrips) {
  const std::string stages = R"("stages": [{"name": "all", "begin": 0, "end": 8}])";
  auto plan = [&](const std::string& input) {
    return parse_plan(R"({"model": "m", "model_path": "", "input": )" + input + ", " + stages + "}", "", "test plan");
  };
  const Plan p = plan(R"({"layout": "NCHW", "color": "bgr", "resize": 256, "crop": 224, "scale": 0.5,
                          "mean": [1, 2, 3], "std": [4, 5, 6], "interpolation": "bilinear"})");
  EXPECT_EQ(p.input.color, ColorOrder::Bgr);
  EXPECT_EQ(p.input.resize, std::vector<int>{256});
  EXPECT_EQ(p.input.crop, (std::vector<int>{224, 224}));
  EXPECT_EQ(p.input.scale, 0.5f);
  EXPECT_EQ(p.input.mean, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(p.input.std, (std::vector<float>{4, 5, 6}));
  const Plan again = parse_plan(plan_to_json(p), "", "round trip");
  EXPECT_EQ(again.input.color, p.input.color);
  EXPECT_EQ(again.input.resize, p.input.resize);
  EXPECT_EQ(again.input.crop, p.input.crop);
  EXPECT_EQ(again.input.mean, p.input.mean);
  EXPECT_TRUE(parse_plan(R"({"model": "m", "model_path": "", )" + stages + "}", "", "t").input.empty());
  EXPECT_EQ(plan(R"({"resize": [28, 32]})").input.resize, (std::vector<int>{28, 32}));

  EXPECT_EQ(error_of([&] { plan(R"({"color": "cmyk"})"); }),
            R"(test plan: input: 'color' must be "rgb", "bgr" or "gray", not "cmyk")");
  EXPECT_EQ(error_of([&] { plan(R"({"layout": "NHWC"})"); }),
            R"(test plan: input: 'layout' must be "NCHW" (the only layout models take))");
  EXPECT_EQ(error_of([&] { plan(R"({"resize": [1, 2, 3]})"); }), "test plan: input: 'resize' must be N, [N] or [H, W]");
  EXPECT_EQ(error_of([&] { plan(R"({"crop": [0, 2]})"); }),
            "test plan: input: 'crop' sizes must be integers in [1, 65536]");
  EXPECT_EQ(error_of([&] { plan(R"({"mean": "imagenet"})"); }),
            "test plan: input: 'mean' must be an array of numbers, one per channel");
  EXPECT_EQ(error_of([&] { plan(R"({"interpolation": "nearest"})"); }),
            R"(test plan: input: 'interpolation' must be "bilinear" (antialiased, as Pillow and torchvision))");
  EXPECT_EQ(error_of([&] { plan(R"({"sclae": 1})"); }), "test plan: input: unknown key 'sclae'");
}

}  // namespace
}  // namespace dnn
