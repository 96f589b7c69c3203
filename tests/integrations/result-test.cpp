// Labelled results: label files, the plan's "output" block, scoring (softmax or probabilities), top k,
// per-label thresholds and the result JSON a camera's subscribers read.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "integrations/result.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

using nlohmann::json;
using test::error_of;
using test::source;
namespace fs = std::filesystem;

std::string temp_file(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / ("result-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}

Tensor vec(std::vector<float> v) {
  Tensor t({1, static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

ResultSpec digits() {
  return parse_result_spec(json::parse(R"({"labels": "models/lenet5/labels.txt", "top_k": 3})"), source(""), "test");
}

TEST(Labels, ShippedFilesHaveOneLabelPerClass) {
  const auto d = read_labels(source("models/lenet5/labels.txt"));
  ASSERT_EQ(d.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(d[i], std::to_string(i));
  // ImageNet in the class order of torchvision / Caffe models (sorted WordNet ids).
  const auto in = read_labels(source("models/imagenet/labels.txt"));
  ASSERT_EQ(in.size(), 1000u);
  EXPECT_EQ(in[0], "tench");
  EXPECT_EQ(in[1], "goldfish");
  EXPECT_EQ(in[207], "golden retriever");
  EXPECT_EQ(in[281], "tabby");
  EXPECT_EQ(in[409], "analog clock");
  EXPECT_EQ(in[999], "toilet tissue");
}

TEST(Labels, BlankLineInsideOrEmptyFileIsRefused) {
  EXPECT_NE(error_of([] { read_labels(temp_file("gap.txt", "a\n\nb\n")); }).find("line 2 is blank"), std::string::npos);
  EXPECT_NE(error_of([] { read_labels(temp_file("empty.txt", "\n")); }).find("holds no labels"), std::string::npos);
  EXPECT_NE(error_of([] { read_labels("/nonexistent/labels.txt"); }).find("cannot read label file"), std::string::npos);
  EXPECT_EQ(read_labels(temp_file("crlf.txt", "a\r\nb\r\n\n")), (std::vector<std::string>{"a", "b"}));
}

TEST(ResultSpec, ParsesEveryKeyAndRoundTrips) {
  const ResultSpec s = parse_result_spec(json::parse(R"({"labels": "models/lenet5/labels.txt", "scores": "probabilities",
      "top_k": 2, "min_score": {"default": 0.5, "7": 0.9}, "detect": ["7", "1"], "off_delay_s": 0, "image": "image/png"})"),
                                         source(""), "test");
  EXPECT_EQ(s.labels.size(), 10u);
  EXPECT_EQ(s.scores, ScoreKind::Probabilities);
  EXPECT_EQ(s.top_k, 2);
  EXPECT_DOUBLE_EQ(s.threshold("7"), 0.9);
  EXPECT_DOUBLE_EQ(s.threshold("3"), 0.5);
  EXPECT_EQ(s.detect, (std::vector<std::string>{"7", "1"}));
  EXPECT_EQ(s.off_delay_s, 0);
  EXPECT_EQ(s.image_content_type, "image/png");
  const ResultSpec back = parse_result_spec(json::parse(result_spec_to_json(s).dump()), "", "test");
  EXPECT_TRUE(back == s);
  // A single number is the default threshold.
  EXPECT_DOUBLE_EQ(parse_result_spec(json::parse(R"({"min_score": 0.25})"), "", "t").threshold("x"), 0.25);
}

TEST(ResultSpec, MistakesAreRefusedNamingTheKey) {
  const auto err = [](const std::string& j) {
    return error_of([&] { parse_result_spec(json::parse(j), source(""), "plan p: output"); });
  };
  EXPECT_NE(err(R"({"label": "x"})").find("plan p: output: unknown key 'label'"), std::string::npos);
  EXPECT_NE(err(R"({"scores": "logits"})").find("'scores' must be"), std::string::npos);
  EXPECT_NE(err(R"({"top_k": 0})").find("'top_k'"), std::string::npos);
  EXPECT_NE(err(R"({"min_score": 1.5})").find("[0, 1]"), std::string::npos);
  EXPECT_NE(err(R"({"labels": "models/lenet5/labels.txt", "min_score": {"cat": 0.7}})").find("label 'cat', which is not in"),
            std::string::npos);
  EXPECT_NE(err(R"({"labels": "models/lenet5/labels.txt", "detect": ["11"]})").find("'detect' names label '11'"),
            std::string::npos);
  EXPECT_NE(err(R"({"detect": "7"})").find("array of labels"), std::string::npos);
  EXPECT_NE(err(R"({"off_delay_s": -1})").find("'off_delay_s'"), std::string::npos);
  EXPECT_NE(err(R"({"image": "image/gif"})").find("'image'"), std::string::npos);
  EXPECT_NE(err(R"({"labels": "nope.txt"})").find("cannot read label file"), std::string::npos);
}

TEST(Classify, SoftmaxOfLogitsTopKBestFirst) {
  const ResultSpec s = digits();
  const std::vector<float> logits = {0, 1, 2, 3, 4, 5, 6, 9, 8, 7};
  const Classification c = classify(vec(logits), s);
  double sum = 0;
  for (float v : logits) sum += std::exp(v - 9.0);
  ASSERT_EQ(c.top.size(), 3u);
  EXPECT_EQ(c.top[0].label, "7");
  EXPECT_NEAR(c.top[0].score, 1.0 / sum, 1e-12);
  EXPECT_EQ(c.top[1].label, "8");
  EXPECT_NEAR(c.top[1].score, std::exp(-1.0) / sum, 1e-12);
  EXPECT_EQ(c.top[2].label, "9");
  EXPECT_TRUE(c.detected);   // default threshold 0
}

TEST(Classify, ProbabilitiesAsTheyAreTiesByIndexAndNoLabelsMeansIndices) {
  ResultSpec s;
  s.scores = ScoreKind::Probabilities;
  s.top_k = 10;   // more than there are values: all of them
  const Classification c = classify(vec({0.1f, 0.4f, 0.4f, 0.1f}), s);
  ASSERT_EQ(c.top.size(), 4u);
  EXPECT_EQ(c.top[0].label, "1");
  EXPECT_EQ(c.top[1].label, "2");
  EXPECT_EQ(c.top[2].label, "0");
  EXPECT_FLOAT_EQ(static_cast<float>(c.top[0].score), 0.4f);
}

TEST(Classify, ThresholdsPerLabel) {
  ResultSpec s = digits();
  s.scores = ScoreKind::Probabilities;
  s.default_min_score = 0.5;
  s.min_score["7"] = 0.9;
  std::vector<float> p(10, 0.0f);
  p[7] = 0.8f;
  EXPECT_FALSE(classify(vec(p), s).detected);   // 0.8 < 7's own 0.9
  p[7] = 0.0f, p[3] = 0.8f;
  EXPECT_TRUE(classify(vec(p), s).detected);    // 0.8 >= the default 0.5
  p[3] = 0.4f;
  EXPECT_FALSE(classify(vec(p), s).detected);
}

TEST(Classify, WrongSizeNaNAndTypeAreErrors) {
  const ResultSpec s = digits();
  EXPECT_NE(error_of([&] { classify(vec({1, 2, 3}), s); }).find("holds 3 values, but its label file"), std::string::npos);
  std::vector<float> v(10, 0.f);
  v[4] = std::nanf("");
  EXPECT_NE(error_of([&] { classify(vec(v), s); }).find("NaN at index 4"), std::string::npos);
  Tensor i64({10}, DType::i64);
  EXPECT_NE(error_of([&] { classify(i64, s); }).find("not float32"), std::string::npos);
}

TEST(ResultJson, CarriesLabelScoresTopAndStageTimes) {
  TensorMessage m;
  m.request_id = "cam/1";
  m.model = "lenet5";
  m.sensor = "door";
  m.hops = {{"a", 0, -1, 1'000'000, 1'002'000, 1'005'000}, {"b", 1, 1, 1'006'000, 1'006'500, 1'010'000}};
  ResultSpec s = digits();
  const Classification c = classify(vec({0, 0, 0, 0, 0, 0, 0, 5, 0, 0}), s);
  const json j = json::parse(result_json(m, c, 1'012'000).dump());
  EXPECT_EQ(j["request_id"], "cam/1");
  EXPECT_EQ(j["model"], "lenet5");
  EXPECT_EQ(j["sensor"], "door");
  EXPECT_EQ(j["label"], "7");
  EXPECT_EQ(j["detected"], true);
  EXPECT_NEAR(j["score"].get<double>(), c.top[0].score, 1e-6);
  ASSERT_EQ(j["top"].size(), 3u);
  EXPECT_EQ(j["top"][0]["label"], "7");
  EXPECT_DOUBLE_EQ(j["latency_ms"].get<double>(), 12.0);
  ASSERT_EQ(j["stages"].size(), 2u);
  EXPECT_EQ(j["stages"][0]["node"], "a");
  EXPECT_FALSE(j["stages"][0].contains("shard"));
  EXPECT_DOUBLE_EQ(j["stages"][0]["queue_ms"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["stages"][0]["compute_ms"].get<double>(), 3.0);
  EXPECT_EQ(j["stages"][1]["shard"], 1);
  EXPECT_DOUBLE_EQ(j["stages"][1]["compute_ms"].get<double>(), 3.5);
  EXPECT_EQ(j["timestamp_ms"], 1012);

  s.default_min_score = 0.99;   // below threshold: no label, but the scores are still there
  const json below = json::parse(result_json(m, classify(vec({0, 0, 0, 0, 0, 0, 0, 5, 0, 0}), s), 1'012'000).dump());
  EXPECT_TRUE(below["label"].is_null());
  EXPECT_EQ(below["detected"], false);
  EXPECT_EQ(below["top"][0]["label"], "7");
}

}  // namespace
}  // namespace dnn
