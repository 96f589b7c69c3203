#include "transport/loopback.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dnn {
namespace {

// A free port accepts nothing until someone listens on it, and nothing again once they stop.
TEST(Loopback, FreePortAcceptsOnlyWhileSomeoneListens) {
  const int port = free_loopback_port();
  ASSERT_GT(port, 0);
  ASSERT_LT(port, 65536);
  EXPECT_FALSE(loopback_port_accepts(port));

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
  ASSERT_EQ(0, ::listen(fd, 4));
  EXPECT_TRUE(loopback_port_accepts(port));
  ::close(fd);
  EXPECT_FALSE(loopback_port_accepts(port));
}

}  // namespace
}  // namespace dnn
