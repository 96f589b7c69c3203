// Where the shards' partial outputs of one request meet. The node (or client) that sends a request
// to a sharded stage registers it here and names its own direct topic as the join topic; the shards
// send their partials there; when all `count` have arrived they are joined (format/shard.h:
// concatenated, or summed for input-column splits) and the request moves on.
//
// Bounded: at most `capacity` joins are open; each expires when its request's budget runs out, a
// request without one after kDefaultBudgetMs. Entries are keyed by request id and stage, so partials
// of different requests can never be mixed; a re-sent request finds its join open and completes it
// with whichever partials arrive first (re-sends carry the same input). Times are steady_ms().
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "transport/messages.h"

namespace dnn {

class JoinTable {
 public:
  explicit JoinTable(size_t capacity) : capacity_(capacity) {}

  // Opens a join for the partials of `request_id` at `stage`, until now_ms + budget_ms (0 = the
  // default budget). True when it is open already (a re-send; its deadline moves on). False when the
  // table is full: the caller fails the request.
  bool expect(const std::string& request_id, int stage, int count, uint64_t now_ms, uint32_t budget_ms,
              std::string reply_to);

  // Adds a partial (its stage, shard_index, shard_count). Returns all partials in shard order when
  // this one completes the join. Throws MessageError for a partial nobody expects (late, after its
  // join expired), a duplicate, or one that does not match its join.
  std::optional<std::vector<TensorMessage>> add(TensorMessage partial);

  struct Expired {
    std::string request_id, reply_to;
    int stage;
    int received, count;
  };
  // Closes the joins whose time is up.
  std::vector<Expired> expire(uint64_t now_ms);

  size_t open() const { return joins_.size(); }

 private:
  struct Join {
    int count = 0;
    int received = 0;
    uint64_t deadline_ms = 0;
    std::string reply_to;
    std::vector<std::optional<TensorMessage>> parts;
  };
  size_t capacity_;
  std::map<std::pair<std::string, int>, Join> joins_;
};

// Joins complete partials (in shard order) into the message of their stage's output.
TensorMessage join_partials(std::vector<TensorMessage> parts);

}  // namespace dnn
