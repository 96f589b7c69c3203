// The node's retained state JSON (docs/protocol.md): every documented key, with its type.
#include <gtest/gtest.h>

#include "integrations/node_state.h"

namespace dnn {
namespace {

TEST(NodeState, JsonHasEveryDocumentedKey) {
  NodeState s;
  s.node_id = "pi-7";
  s.model = "lenet5";
  s.role = "shard";
  s.stage = 2;
  s.stage_name = "fc1";
  s.shard = 1;
  s.frames_per_s = 12.345;
  s.latency_ms = 1.23456;
  s.queue_depth = 3;
  s.queue_capacity = 64;
  s.rss_mb = 41.26;
  s.processed = 100;
  const auto j = node_state_json(s);
  for (const char* k : {"node", "model", "role", "stage_name"}) EXPECT_TRUE(j.at(k).is_string()) << k;
  for (const char* k : {"stage", "shard", "queue_depth", "queue_capacity", "processed", "failed", "refused", "expired", "uptime_s"})
    EXPECT_TRUE(j.at(k).is_number_integer()) << k;
  for (const char* k : {"frames_per_s", "latency_ms", "rss_mb"}) EXPECT_TRUE(j.at(k).is_number()) << k;
  EXPECT_EQ(j["role"], "shard");
  EXPECT_NEAR(j["frames_per_s"].get<double>(), 12.35, 1e-9);
  EXPECT_NEAR(j["latency_ms"].get<double>(), 1.235, 1e-9);
  EXPECT_NEAR(j["rss_mb"].get<double>(), 41.3, 1e-9);
}

TEST(NodeState, FramesPerSecond) {
  EXPECT_DOUBLE_EQ(frames_per_second(100, 150, 5.0), 10.0);
  EXPECT_DOUBLE_EQ(frames_per_second(100, 150, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(frames_per_second(150, 100, 5.0), 0.0);   // a counter reset is not negative speed
}

}  // namespace
}  // namespace dnn
