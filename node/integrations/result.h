// What a camera's subscribers read: the JSON result of one frame, made from the model's output
// tensor and the model's result spec (the plan's "output" block, docs/plans.md; the JSON is in
// docs/protocol.md, "Results").
//
//   output tensor ──scores (softmax of logits, or probabilities as they are)──▶ top k ──▶ threshold
//
// Thresholds work as Frigate's `min_score`: the best label counts only when its score reaches its
// label's threshold; below it the result says `"label": null, "detected": false` and still lists
// the k best with their scores.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "transport/messages.h"

namespace dnn {

enum class ScoreKind {
  Softmax,        // the model outputs logits: scores are their softmax
  Probabilities,  // the model outputs probabilities (or any score in [0, 1]): taken as they are
};

// How a model's output becomes a result, declared once per model in the plan.
struct ResultSpec {
  std::string labels_path;            // as resolved (empty: labels are the class indices "0", "1", ...)
  std::vector<std::string> labels;    // one per output value, in index order
  ScoreKind scores = ScoreKind::Softmax;
  int top_k = 5;
  double default_min_score = 0;       // the threshold of labels without their own
  std::map<std::string, double> min_score;   // per-label thresholds
  std::vector<std::string> detect;    // labels that get a "<label> detected" entity in Home Assistant
  int off_delay_s = 10;               // ... which turns off this long after the last detection; 0 = each frame says
  std::string image_content_type;     // non-empty: frames are images of this type, shown as an image entity

  double threshold(const std::string& label) const;
  bool operator==(const ResultSpec& o) const;
};

// Reads the plan's "output" object. Relative label paths resolve against `base_dir`. Throws
// ModelError naming `where` and the key: unknown keys, wrong types, a threshold or detect label that
// is not in the label file, an unreadable or empty label file.
ResultSpec parse_result_spec(const nlohmann::json& j, const std::string& base_dir, const std::string& where);
// The object parse_result_spec reads back to an equal spec (labels by path).
nlohmann::ordered_json result_spec_to_json(const ResultSpec& spec);

// One label per line, in index order; blank lines at the end are ignored, a blank line inside is an
// error (it would shift every later index). Throws IoError / ModelError.
std::vector<std::string> read_labels(const std::string& path);

struct LabelScore {
  std::string label;
  double score = 0;
};

struct Classification {
  std::vector<LabelScore> top;   // the k best, best first (ties: lower index first)
  bool detected = false;         // top[0] reaches its label's threshold
};

// Scores `output` (all its values, in C order, one per label) per `spec`. Throws ShapeError when the
// output holds another number of values than the label file has labels, or is not float32, and
// Error when it holds NaN.
Classification classify(const Tensor& output, const ResultSpec& spec);

// The result JSON of a finished request (docs/protocol.md): classification, request id, sensor,
// latency from the first stage's receipt of the frame to `now_us`, and each stage's queueing and
// compute time from the message's hops.
nlohmann::ordered_json result_json(const TensorMessage& result, const Classification& c, uint64_t now_us);

}  // namespace dnn
