// BoundedQueue: the bound, and urgent items that jump the queue into room of their own.
#include <gtest/gtest.h>

#include "transport/bounded_queue.h"

namespace dnn {
namespace {

TEST(BoundedQueue, UrgentItemsGoFirstInOrderAndIntoTheirOwnRoom) {
  BoundedQueue<int> q(2);
  ASSERT_TRUE(q.try_push(1));
  ASSERT_TRUE(q.try_push(2));
  EXPECT_FALSE(q.try_push(3));                 // full for ordinary items
  EXPECT_TRUE(q.try_push_urgent(10, 2));       // an error report still goes out
  EXPECT_TRUE(q.try_push_urgent(11, 2));
  EXPECT_FALSE(q.try_push_urgent(12, 2));      // its room is bounded too
  for (int want : {10, 11, 1, 2}) EXPECT_EQ(q.pop_for(std::chrono::milliseconds(0)), want);
  EXPECT_FALSE(q.pop_for(std::chrono::milliseconds(0)));
  ASSERT_TRUE(q.try_push(4));
  ASSERT_TRUE(q.try_push_urgent(13, 2));       // ahead of the ordinary item waiting
  EXPECT_EQ(q.pop_for(std::chrono::milliseconds(0)), 13);
  EXPECT_EQ(q.pop_for(std::chrono::milliseconds(0)), 4);
}

}  // namespace
}  // namespace dnn
