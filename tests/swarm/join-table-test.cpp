// The join table alone: partials meet by (request, stage), never mix, and expire when their budget
// (or the default budget) runs out.
#include <gtest/gtest.h>

#include "swarm/join_table.h"

namespace dnn {
namespace {

TensorMessage partial(const std::string& id, int stage, int index, int count, float value) {
  TensorMessage m;
  m.request_id = id;
  m.stage = stage;
  m.shard_index = index;
  m.shard_count = count;
  m.join_axis = JoinAxis::OutputRows;
  m.tensors.push_back({"h", Tensor::from_f32({1, 2}, {value, value})});
  m.hops.push_back({"shard" + std::to_string(index), stage, index, 1, 2, 3});
  return m;
}

TEST(JoinTable, InterleavedPartialsOfTwoRequestsJoinSeparately) {
  JoinTable t(8);
  ASSERT_TRUE(t.expect("c/1", 2, 2, 0, 1000, "r"));
  ASSERT_TRUE(t.expect("c/2", 2, 2, 0, 1000, "r"));
  EXPECT_FALSE(t.add(partial("c/2", 2, 1, 2, 21)));
  EXPECT_FALSE(t.add(partial("c/1", 2, 0, 2, 10)));
  auto two = t.add(partial("c/2", 2, 0, 2, 20));
  ASSERT_TRUE(two);
  TensorMessage joined = join_partials(std::move(*two));
  EXPECT_EQ(joined.request_id, "c/2");
  const float* y = joined.tensors[0].tensor.f32();
  EXPECT_EQ(joined.tensors[0].tensor.shape(), (Shape{1, 4}));
  EXPECT_EQ(y[0], 20);   // shard order, whatever the arrival order
  EXPECT_EQ(y[2], 21);
  EXPECT_EQ(joined.hops.size(), 2u);   // both shards' hops
  EXPECT_EQ(t.open(), 1u);
  auto one = t.add(partial("c/1", 2, 1, 2, 11));
  ASSERT_TRUE(one);
  EXPECT_EQ(join_partials(std::move(*one)).tensors[0].tensor.f32()[3], 11);
  EXPECT_EQ(t.open(), 0u);
}

TEST(JoinTable, RefusesStrayDuplicateAndMismatchedPartials) {
  JoinTable t(8);
  EXPECT_THROW(t.add(partial("c/9", 1, 0, 2, 0)), MessageError);   // nobody expects it
  ASSERT_TRUE(t.expect("c/1", 1, 3, 0, 1000, "r"));
  EXPECT_THROW(t.add(partial("c/1", 2, 0, 3, 0)), MessageError);   // another stage
  EXPECT_THROW(t.add(partial("c/1", 1, 0, 2, 0)), MessageError);   // wrong count
}

TEST(JoinTable, AReSentRequestCompletesTheSameJoinOnce) {
  JoinTable t(1);
  ASSERT_TRUE(t.expect("c/1", 1, 2, 0, 1000, "r"));
  EXPECT_FALSE(t.add(partial("c/1", 1, 0, 2, 5)));
  ASSERT_TRUE(t.expect("c/1", 1, 2, 900, 1000, "r"));   // the re-send: same join, deadline moved to 1900
  EXPECT_EQ(t.open(), 1u);
  EXPECT_FALSE(t.add(partial("c/1", 1, 0, 2, 6)));      // shard 0 again: the first one stands
  EXPECT_TRUE(t.expire(1500).empty());
  auto done = t.add(partial("c/1", 1, 1, 2, 7));
  ASSERT_TRUE(done);
  EXPECT_EQ(join_partials(std::move(*done)).tensors[0].tensor.f32()[0], 5);
  EXPECT_THROW(t.add(partial("c/1", 1, 1, 2, 7)), MessageError);   // after the join: late
}

TEST(JoinTable, AJoinWithoutBudgetExpiresAfterTheDefault) {
  JoinTable t(1);
  ASSERT_TRUE(t.expect("c/1", 1, 2, 100, 0, "r"));
  EXPECT_FALSE(t.expect("c/2", 1, 2, 100, 0, "r"));   // full
  EXPECT_TRUE(t.expire(100 + kDefaultBudgetMs).empty());
  ASSERT_EQ(t.expire(101 + kDefaultBudgetMs).size(), 1u);
  EXPECT_TRUE(t.expect("c/2", 1, 2, 200, 0, "r"));    // room again
}

TEST(JoinTable, BoundedAndExpiringAtTheDeadline) {
  JoinTable t(2);
  ASSERT_TRUE(t.expect("c/1", 1, 2, 0, 1000, "reply/1"));
  ASSERT_TRUE(t.expect("c/2", 1, 2, 0, 5000, "reply/2"));
  EXPECT_FALSE(t.expect("c/3", 1, 2, 0, 5000, "reply/3"));   // full
  EXPECT_FALSE(t.add(partial("c/1", 1, 0, 2, 0)));
  auto expired = t.expire(2000);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].request_id, "c/1");
  EXPECT_EQ(expired[0].reply_to, "reply/1");
  EXPECT_EQ(expired[0].received, 1);
  EXPECT_TRUE(t.expect("c/3", 1, 2, 0, 5000, "reply/3"));    // room again
  EXPECT_THROW(t.add(partial("c/1", 1, 1, 2, 0)), MessageError);   // late
}

}  // namespace
}  // namespace dnn
