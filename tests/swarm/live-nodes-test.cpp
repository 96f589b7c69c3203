// LiveNodes alone: who is alive from heartbeats and status, and where a request goes around a
// silent replica.
#include <gtest/gtest.h>

#include "swarm/live_nodes.h"

namespace dnn {
namespace {

Heartbeat beat(const std::string& id, int stage, int depth, float ms) {
  Heartbeat hb;
  hb.info.node_id = id;
  hb.info.model = "m";
  hb.info.stage = stage;
  hb.info.caps.ms_per_frame = ms;
  hb.queue_depth = depth;
  return hb;
}

TEST(LiveNodes, SharedSubscriptionWhileAllAreHealthyLiveReplicaOtherwise) {
  LiveNodes live(1500);
  live.heard(beat("a", 1, 0, 10), 1000);
  live.heard(beat("b", 1, 0, 10), 1000);
  EXPECT_EQ(live.route("m", 1, 0, 1500), "");   // both healthy: the broker's round-robin
  EXPECT_NE(live.route("m", 1, 0, 1500, true), "");   // a re-send: a live one by name
  live.heard(beat("a", 1, 0, 10), 2900);             // b falls silent (last heard at 1000)
  EXPECT_TRUE(live.alive("a", 2900));
  EXPECT_FALSE(live.alive("b", 2600));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(live.route("m", 1, 0, 2900), "a");
  live.heard(beat("b", 1, 0, 10), 3000);             // b is back
  EXPECT_EQ(live.route("m", 1, 0, 3000), "");
}

TEST(LiveNodes, OfflineIsForgottenAtOnceAndSendsCountUntilTheNextHeartbeat) {
  LiveNodes live(1500);
  live.heard(beat("fast", 2, 0, 1), 0);
  live.heard(beat("slow", 2, 0, 100), 0);
  EXPECT_EQ(live.live_count("m", 2, 0, 10), 2);
  live.status("slow", false, 10);
  EXPECT_EQ(live.live_count("m", 2, 0, 10), 1);
  EXPECT_TRUE(live.alive("never-heard-of", 10));
  EXPECT_EQ(live.route("m", 2, 0, 10, true), "fast");
  Topics topics;
  EXPECT_EQ(live.status_message(topics, topics.node_status("fast"), "offline", 20), "fast");
  EXPECT_EQ(live.status_message(topics, topics.heartbeat("fast"), "offline", 20), "");
  EXPECT_EQ(live.live_count("m", 2, 0, 20), 0);
  EXPECT_FALSE(live.none_serves("m", 2, 0, steady_ms()));   // not listened long enough to tell
  EXPECT_TRUE(live.none_serves("m", 2, 0, steady_ms() + 2000));
  live.heard(beat("quiet", 2, 0, 1), 20);   // silent since, but not gone: it may come back
  EXPECT_EQ(live.live_count("m", 2, 0, steady_ms() + 2000), 0);
  EXPECT_FALSE(live.none_serves("m", 2, 0, steady_ms() + 2000));
}

TEST(LiveNodes, SilentNodeIsNotMadeFreshBySendingToIt) {
  LiveNodes live(1500);
  live.heard(beat("a", 0, 0, 10), 0);
  live.heard(beat("b", 0, 0, 10), 0);
  live.heard(beat("a", 0, 0, 10), 1400);
  // Routing to b before it goes stale must not keep it alive.
  for (int i = 0; i < 3; ++i) live.route("m", 0, 0, 1400, true);
  EXPECT_FALSE(live.alive("b", 1600));
  EXPECT_EQ(live.route("m", 0, 0, 1600, true), "a");
}

}  // namespace
}  // namespace dnn
