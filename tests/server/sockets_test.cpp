// Listening sockets as vaned opens them: the UDP ones ignore path MTU
// information (IP_PMTUDISC_OMIT / IPV6_PMTUDISC_OMIT), so a forged ICMP
// "fragmentation needed" cannot make vaned fragment its answers.
#include "sockets.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace vane::server {
namespace {

int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

TEST(Sockets, UdpIgnoresPathMtu_V4AndV6) {
  std::vector<ListenAddr> listen(2);
  ASSERT_TRUE(parse_listen("127.0.0.1:0", listen[0]));
  ASSERT_TRUE(parse_listen("[::1]:0", listen[1]));
  auto socks = open_sockets(listen, 1);
  if (!socks) {
    // No IPv6 on loopback here: the IPv4 socket alone.
    listen.resize(1);
    socks = open_sockets(listen, 1);
  }
  ASSERT_TRUE(socks) << socks.error().to_string();
  ASSERT_EQ((*socks)[0].udp.size(), listen.size());
  EXPECT_EQ(opt((*socks)[0].udp[0].get(), IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_OMIT);
  if (listen.size() == 2) {
    EXPECT_EQ(opt((*socks)[0].udp[1].get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER), IPV6_PMTUDISC_OMIT);
  }
  // TCP keeps the kernel's path MTU discovery.
  EXPECT_NE(opt((*socks)[0].tcp[0].get(), IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_OMIT);
}

}  // namespace
}  // namespace vane::server
