#include "integrations/result.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "core/error.h"

namespace dnn {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// Rounded for people and Home Assistant templates: 6 decimals of a score say everything it means.
double rounded(double x, double unit) { return std::round(x / unit) * unit; }

double parse_threshold(const json& v, const std::string& where) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1)
    throw ModelError(where + ": a score threshold must be a number in [0, 1]");
  return v.get<double>();
}

const char* score_kind_name(ScoreKind k) { return k == ScoreKind::Softmax ? "softmax" : "probabilities"; }

}  // namespace

double ResultSpec::threshold(const std::string& label) const {
  auto it = min_score.find(label);
  return it == min_score.end() ? default_min_score : it->second;
}

bool ResultSpec::operator==(const ResultSpec& o) const {
  return labels_path == o.labels_path && labels == o.labels && scores == o.scores && top_k == o.top_k &&
         default_min_score == o.default_min_score && min_score == o.min_score && detect == o.detect &&
         off_delay_s == o.off_delay_s && image_content_type == o.image_content_type;
}

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read label file '" + path + "'");
  std::vector<std::string> labels;
  std::string line;
  size_t blank_at = 0;   // first blank line seen (1-based), 0 = none yet
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (!blank_at) blank_at = labels.size() + 1;
      continue;
    }
    if (blank_at)
      throw ModelError("label file '" + path + "': line " + std::to_string(blank_at) +
                       " is blank: every line up to the last label must name one class");
    labels.push_back(line);
  }
  if (labels.empty()) throw ModelError("label file '" + path + "' holds no labels");
  return labels;
}

ResultSpec parse_result_spec(const json& j, const std::string& base_dir, const std::string& where) {
  if (!j.is_object()) throw ModelError(where + ": expected a JSON object");
  ResultSpec s;
  static const std::set<std::string> known = {"labels", "scores", "top_k", "min_score", "detect", "off_delay_s", "image"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) throw ModelError(where + ": unknown key '" + it.key() + "'");
  if (j.contains("labels")) {
    if (!j["labels"].is_string()) throw ModelError(where + ": 'labels' must be the path of a label file");
    s.labels_path = j["labels"].get<std::string>();
    if (fs::path(s.labels_path).is_relative() && !base_dir.empty())
      s.labels_path = (fs::path(base_dir) / s.labels_path).lexically_normal().string();
    s.labels = read_labels(s.labels_path);
  }
  if (j.contains("scores")) {
    const json& v = j["scores"];
    if (v == "softmax")
      s.scores = ScoreKind::Softmax;
    else if (v == "probabilities")
      s.scores = ScoreKind::Probabilities;
    else
      throw ModelError(where + ": 'scores' must be \"softmax\" (the model outputs logits) or \"probabilities\"");
  }
  if (j.contains("top_k")) {
    const json& v = j["top_k"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 100)
      throw ModelError(where + ": 'top_k' must be an integer from 1 to 100");
    s.top_k = v.get<int>();
  }
  // A label the file does not have is a typo that would silently never match.
  const auto check_label = [&](const std::string& label, const std::string& key) {
    if (!s.labels.empty() && std::find(s.labels.begin(), s.labels.end(), label) == s.labels.end())
      throw ModelError(where + ": '" + key + "' names label '" + label + "', which is not in " + s.labels_path);
  };
  if (j.contains("min_score")) {
    const json& v = j["min_score"];
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        const double t = parse_threshold(it.value(), where + ": min_score '" + it.key() + "'");
        if (it.key() == "default") {
          s.default_min_score = t;
        } else {
          check_label(it.key(), "min_score");
          s.min_score[it.key()] = t;
        }
      }
    } else {
      s.default_min_score = parse_threshold(v, where + ": min_score");
    }
  }
  if (j.contains("detect")) {
    const json& v = j["detect"];
    if (!v.is_array()) throw ModelError(where + ": 'detect' must be an array of labels");
    for (const auto& l : v) {
      if (!l.is_string()) throw ModelError(where + ": 'detect' must be an array of labels");
      check_label(l.get<std::string>(), "detect");
      if (std::find(s.detect.begin(), s.detect.end(), l.get<std::string>()) == s.detect.end())
        s.detect.push_back(l.get<std::string>());
    }
    if (s.detect.size() > 64) throw ModelError(where + ": 'detect' names more than 64 labels");
  }
  if (j.contains("off_delay_s")) {
    const json& v = j["off_delay_s"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 86400)
      throw ModelError(where + ": 'off_delay_s' must be an integer number of seconds from 0 to 86400");
    s.off_delay_s = v.get<int>();
  }
  if (j.contains("image")) {
    const json& v = j["image"];
    if (v != "image/jpeg" && v != "image/png")
      throw ModelError(where + ": 'image' must be the frames' content type, \"image/jpeg\" or \"image/png\"");
    s.image_content_type = v.get<std::string>();
  }
  return s;
}

ordered_json result_spec_to_json(const ResultSpec& s) {
  ordered_json j = ordered_json::object();
  if (!s.labels_path.empty()) j["labels"] = s.labels_path;
  j["scores"] = score_kind_name(s.scores);
  j["top_k"] = s.top_k;
  ordered_json min = {{"default", s.default_min_score}};
  for (const auto& [label, t] : s.min_score) min[label] = t;
  j["min_score"] = min;
  if (!s.detect.empty()) j["detect"] = s.detect;
  j["off_delay_s"] = s.off_delay_s;
  if (!s.image_content_type.empty()) j["image"] = s.image_content_type;
  return j;
}

Classification classify(const Tensor& output, const ResultSpec& spec) {
  if (output.dtype() != DType::f32) throw ShapeError("the model's output is not float32: it cannot be scored");
  const int64_t n = output.numel();
  if (!spec.labels.empty() && n != static_cast<int64_t>(spec.labels.size()))
    throw ShapeError("the model's output holds " + std::to_string(n) + " values, but its label file " +
                     spec.labels_path + " has " + std::to_string(spec.labels.size()) + " labels");
  if (n == 0) throw ShapeError("the model's output is empty");
  const float* x = output.f32();
  std::vector<double> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) throw Error("the model's output holds NaN at index " + std::to_string(i));
    p[i] = x[i];
  }
  if (spec.scores == ScoreKind::Softmax) {
    const double max = *std::max_element(p.begin(), p.end());   // subtracted: no overflow
    double sum = 0;
    for (double& v : p) sum += (v = std::exp(v - max));
    for (double& v : p) v /= sum;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(static_cast<size_t>(spec.top_k), order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  Classification c;
  for (size_t i = 0; i < k; ++i) {
    const int64_t idx = order[i];
    c.top.push_back({spec.labels.empty() ? std::to_string(idx) : spec.labels[idx], p[idx]});
  }
  c.detected = c.top[0].score >= spec.threshold(c.top[0].label);
  return c;
}

ordered_json result_json(const TensorMessage& m, const Classification& c, uint64_t now_us) {
  ordered_json j;
  j["request_id"] = m.request_id;
  j["model"] = m.model;
  j["sensor"] = m.sensor;
  j["label"] = c.detected ? ordered_json(c.top.at(0).label) : ordered_json(nullptr);
  j["score"] = rounded(c.top.at(0).score, 1e-6);
  j["detected"] = c.detected;
  ordered_json top = ordered_json::array();
  for (const auto& t : c.top) top.push_back({{"label", t.label}, {"score", rounded(t.score, 1e-6)}});
  j["top"] = std::move(top);
  const uint64_t first = m.hops.empty() ? now_us : m.hops.front().received_us;
  j["latency_ms"] = rounded(now_us > first ? (now_us - first) / 1000.0 : 0.0, 1e-3);
  ordered_json stages = ordered_json::array();
  for (const Hop& h : m.hops) {
    ordered_json s = {{"stage", h.stage}, {"node", h.node}};
    if (h.shard >= 0) s["shard"] = h.shard;
    s["queue_ms"] = rounded(h.started_us > h.received_us ? (h.started_us - h.received_us) / 1000.0 : 0.0, 1e-3);
    s["compute_ms"] = rounded(h.finished_us > h.started_us ? (h.finished_us - h.started_us) / 1000.0 : 0.0, 1e-3);
    stages.push_back(std::move(s));
  }
  j["stages"] = std::move(stages);
  j["timestamp_ms"] = now_us / 1000;
  return j;
}

}  // namespace dnn
