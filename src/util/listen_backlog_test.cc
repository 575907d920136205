#include "util/listen_backlog.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace strata::util {
namespace {

TEST(RaiseListenBacklogTest, FindsTheListeningSocketOfAPort) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t length = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  int port = ntohs(addr.sin_port);
  // Bound but not listening: not what httplib leaves behind.
  EXPECT_EQ(RaiseListenBacklog(port).error().kind, ErrorKind::kNotFound);
  ASSERT_EQ(::listen(fd, 1), 0);
  EXPECT_TRUE(RaiseListenBacklog(port).ok());
  ::close(fd);
  EXPECT_FALSE(RaiseListenBacklog(port).ok());
}

}  // namespace
}  // namespace strata::util
