// Large tensor buffers are recycled between frames: observed through the page faults a second
// allocation of the same size takes (none when the buffer comes back from the cache).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstring>

#include "core/tensor.h"

namespace dnn {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Faults taken by allocating and filling a 4 MB tensor (1,024 pages), after one was freed.
long faults_of_second_frame() {
  const Shape shape{1, 16, 256, 256};
  { std::memset(Tensor::uninitialized(shape).f32(), 1, 4 << 20); }
  const long before = minor_faults();
  std::memset(Tensor::uninitialized(shape).f32(), 1, 4 << 20);
  return minor_faults() - before;
}

TEST(BufferCache, FreedBufferIsReusedWithoutPageFaults) {
  set_buffer_cache_limit(size_t(64) << 20);
  EXPECT_LT(faults_of_second_frame(), 64);
}

TEST(BufferCache, LimitZeroReturnsBuffersToTheOs) {
  set_buffer_cache_limit(0);
  EXPECT_GE(faults_of_second_frame(), 1000);  // every page of the new buffer is fresh
}

TEST(BufferCache, ContentOfAReusedBufferIsZeroedWhenAsked) {
  set_buffer_cache_limit(size_t(64) << 20);
  { std::memset(Tensor::uninitialized({1 << 20}).f32(), 0xff, 4 << 20); }
  Tensor t({1 << 20});  // the zero-initialising constructor, on the same (cached) size
  for (int64_t i = 0; i < t.numel(); i += 997) ASSERT_EQ(0.f, t.f32()[i]) << i;
}

}  // namespace
}  // namespace dnn
