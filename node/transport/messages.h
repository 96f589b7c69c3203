// The swarm's wire messages (schemas/messages.fbs) as plain C++ values, with encode/decode.
//
// decode_message() is the only way a network buffer becomes a value: it runs the FlatBuffers
// Verifier, then checks every tensor (rank <= 8, dims > 0, numel * dtype size == data length, total
// under a cap) and every index, and throws MessageError otherwise — so a garbage, truncated,
// oversized or inconsistent buffer is refused before anything reads it. Tensor data is used in place
// (the tensor keeps the payload alive) when it lands 64-byte aligned in memory, and copied otherwise.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/error.h"
#include "core/graph.h"
#include "core/tensor.h"

namespace dnn {

// A received buffer that failed verification or the size/shape checks. When the buffer was a valid
// TensorMessage whose contents were wrong, request_id and reply_to say where to report it.
struct MessageError : Error {
  MessageError(const std::string& what, std::string request, std::string reply)
      : Error(what), request_id(std::move(request)), reply_to(std::move(reply)) {}
  std::string request_id, reply_to;
};

struct DecodeLimits {
  size_t max_message_bytes = 256u << 20;   // whole buffer, also the cap on all tensor data
  size_t max_tensors = 64;
  int max_rank = 8;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

struct Hop {
  std::string node;
  int stage = 0;
  int shard = -1;
  uint64_t received_us = 0, started_us = 0, finished_us = 0;
};

// Values of the wire's SplitAxis (same order as dnn::SplitAxis in format/shard.h).
enum class JoinAxis : uint8_t { OutputRows = 0, OutputChannels = 1, InputColumns = 2 };

struct TensorMessage {
  std::string request_id;
  std::string model;
  int stage = 0;
  int shard_index = 0;
  int shard_count = 1;
  std::vector<NamedTensor> tensors;
  uint64_t deadline_ms = 0;   // unix ms; 0 = none
  std::vector<Hop> hops;
  std::string reply_to;
  std::string join_topic;
  JoinAxis join_axis = JoinAxis::OutputRows;
  Attrs join_attrs;           // int, float and string attributes only
  std::string error;
  int handoffs = 0;
  uint64_t sent_us = 0;
  // Frames from cameras and sensors (not set on requests from InferClient): the last stage answers
  // with a JSON result on Topics::results(model, sensor), and on response_topic when the frame came
  // with an MQTT v5 Response Topic, carrying its Correlation Data back.
  std::string sensor;
  std::string response_topic;
  std::string correlation_data;
  // Delivery (docs/protocol.md, "Delivery"): the time left, relative so no clocks need agree; the
  // requester's attempt; where nodes report Progress.
  uint32_t budget_ms = 0;     // 0 = none given: nodes apply kDefaultBudgetMs
  uint32_t attempt = 0;
  std::string ack_topic;
};

// A request with neither budget nor deadline still expires, after this long.
constexpr uint32_t kDefaultBudgetMs = 30000;

enum class NodeRole : uint8_t { Stage = 0, Shard = 1, Client = 2 };

struct Capabilities {
  int cores = 0;
  int threads = 0;
  uint64_t memory_limit_bytes = 0;
  uint64_t weight_bytes = 0;
  float ms_per_frame = 0;
};

// Who a node is: sent as Hello after each connect, and inside every Heartbeat.
struct NodeInfo {
  std::string node_id;
  std::string model;
  NodeRole role = NodeRole::Stage;
  int stage = 0;
  int shard_index = 0;
  int shard_count = 1;
  Capabilities caps;
};

struct Hello {
  NodeInfo info;
};

struct Heartbeat {
  NodeInfo info;
  int queue_depth = 0;
  int queue_capacity = 0;
  uint64_t processed = 0;
  uint64_t handed_off = 0;
};

struct Assignment {
  std::string node_id, model, model_path;
  NodeRole role = NodeRole::Stage;
  int stage = 0;
  uint64_t node_begin = 0, node_end = 0;
  std::string shard_node;
  JoinAxis shard_axis = JoinAxis::OutputRows;
  int shard_index = 0;
  int shard_count = 1;
};

struct ErrorReport {
  std::string request_id, node_id, message;
};

struct Progress {
  std::string request_id, node_id;
  int stage = 0, shard_index = 0;
  uint32_t attempt = 0;
  bool done = false;   // false: accepted into the node's queue; true: its output was sent on
  bool undelivered = false;   // node_id found no live node serving `stage`: re-send shortly
};

struct Topology {
  std::string model;
  std::vector<int> shard_counts;   // per stage; 1 = not sharded
};

using Message = std::variant<TensorMessage, Hello, Heartbeat, Assignment, ErrorReport, Topology, Progress>;

std::string encode(const TensorMessage& m);
std::string encode(const Hello& m);
std::string encode(const Heartbeat& m);
std::string encode(const Assignment& m);
std::string encode(const ErrorReport& m);
std::string encode(const Topology& m);
std::string encode(const Progress& m);

// Throws MessageError; never reads outside `payload`. Tensors may keep `payload` alive.
Message decode_message(const std::shared_ptr<const std::string>& payload, const DecodeLimits& limits = {});

// Wall clock for hop timestamps (and deadline_ms from senders that give no budget).
uint64_t unix_ms();
uint64_t unix_us();
// Moves the wall clock above by `ms`: lets tests run a node whose clock is off.
void set_clock_offset_ms(int64_t ms);
// A clock no one sets, for budgets: ms since an arbitrary start.
uint64_t steady_ms();

}  // namespace dnn
