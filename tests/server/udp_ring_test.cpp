// UdpRing over a real loopback socket: three times more datagrams queued
// than it has buffers (whether the kernel ends the multishot receive with
// ENOBUFS or waits for buffers, none is lost), more than one batch at a time, each handed out once, whole and in order, with
// its sender; answers sent through the ring arrive. A write to its wake
// eventfd ends a wait that has no timeout, whether it comes before the wait
// or during it, and is not taken twice.
#include "udp_ring.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace vane::server {
namespace {

int bound_socket(sockaddr_in& a) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int big = 1 << 22;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  socklen_t len = sizeof a;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  return fd;
}

TEST(UdpRing, MoreDatagramsThanBuffers_EachOnceWholeInOrder_AnswersArrive) {
  ASSERT_EQ(UdpRing::probe(), "") << "io_uring is part of this machine's kernel";
  sockaddr_in server_addr, client_addr;
  int server = bound_socket(server_addr);
  int client = bound_socket(client_addr);
  UdpRing ring;
  std::string why;
  ASSERT_TRUE(ring.open(server, 512, 0, -1, why)) << why;

  constexpr int kCount = 3 * int(UdpRing::kBuffers) + 17;
  for (int i = 0; i < kCount; ++i) {
    std::string msg = "datagram " + std::to_string(i);
    ASSERT_EQ(sendto(client, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&server_addr), sizeof server_addr),
              ssize_t(msg.size()));
  }
  UdpRing::Datagram got[64];
  int next = 0;
  for (int calls = 0; next < kCount && calls < 1000; ++calls) {
    int n = ring.receive(got, 64, 1000, why);
    ASSERT_GE(n, 0) << why;
    ASSERT_LE(n, 64);
    for (int i = 0; i < n; ++i, ++next) {
      std::string msg = "datagram " + std::to_string(next);
      ASSERT_EQ(std::string(reinterpret_cast<char*>(got[i].payload), got[i].len), msg);
      EXPECT_EQ(got[i].flags & MSG_TRUNC, 0);
      ASSERT_EQ(got[i].namelen, sizeof(sockaddr_in));
      const auto* from = reinterpret_cast<const sockaddr_in*>(got[i].name);
      EXPECT_EQ(from->sin_port, client_addr.sin_port);
    }
    ring.release(got, n);
  }
  EXPECT_EQ(next, kCount);

  // Every buffer held by the caller: datagrams wait in the socket, and come
  // once the buffers are back, with no new datagram to wake the receive.
  std::vector<UdpRing::Datagram> held;
  for (int i = 0; i < int(UdpRing::kBuffers) + 100; ++i) {
    std::string msg = "held " + std::to_string(i);
    sendto(client, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&server_addr), sizeof server_addr);
  }
  for (int calls = 0; held.size() < UdpRing::kBuffers && calls < 100; ++calls) {
    int n = ring.receive(got, 64, 200, why);
    ASSERT_GE(n, 0) << why;
    held.insert(held.end(), got, got + n);
  }
  ASSERT_EQ(held.size(), UdpRing::kBuffers);
  EXPECT_EQ(ring.receive(got, 64, 100, why), 0) << "no buffer to receive into";
  ring.release(held.data(), int(held.size()));
  int rest = 0;
  for (int calls = 0; rest < 100 && calls < 20; ++calls) {
    int n = ring.receive(got, 64, 500, why);
    ASSERT_GE(n, 0) << why;
    for (int i = 0; i < n; ++i, ++rest)
      EXPECT_EQ(std::string(reinterpret_cast<char*>(got[i].payload), got[i].len),
                "held " + std::to_string(UdpRing::kBuffers + rest));
    ring.release(got, n);
  }
  EXPECT_EQ(rest, 100);

  // A datagram longer than the buffer's payload room is marked truncated.
  std::string big(600, 'x');
  sendto(client, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&server_addr), sizeof server_addr);
  ASSERT_EQ(ring.receive(got, 64, 1000, why), 1) << why;
  EXPECT_NE(got[0].flags & MSG_TRUNC, 0);
  ring.release(got, 1);

  // Answers: queued, sent by the next receive() (which waits for them).
  std::string reply = "answer";
  iovec iov{reply.data(), reply.size()};
  msghdr h{};
  h.msg_name = &client_addr;
  h.msg_namelen = sizeof client_addr;
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ring.send(&h));
  EXPECT_EQ(ring.receive(got, 64, 50, why), 0) << "nothing to receive: a timeout";
  for (int i = 0; i < 10; ++i) {
    pollfd p{client, POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 2000), 0) << "answer " << i;
    char buf[64];
    ASSERT_EQ(recv(client, buf, sizeof buf, 0), ssize_t(reply.size()));
  }
  EXPECT_EQ(ring.send_errors(), 0u);
  close(client);
  close(server);
}

TEST(UdpRing, AWakeEndsAnUntimedWait_SentBeforeOrDuringIt) {
  ASSERT_EQ(UdpRing::probe(), "");
  sockaddr_in server_addr, client_addr;
  int server = bound_socket(server_addr);
  int client = bound_socket(client_addr);
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(wake, 0);
  UdpRing ring;
  std::string why;
  ASSERT_TRUE(ring.open(server, 512, 0, wake, why)) << why;
  UdpRing::Datagram got[64];

  // Before the wait: kept in the eventfd, so the wait ends at once.
  eventfd_write(wake, 1);
  EXPECT_EQ(ring.receive(got, 64, -1, why), 0) << why;

  // During it, from another thread, five times: a lost wake would hang here
  // (the test's own timeout is the bound).
  for (int i = 0; i < 5; ++i) {
    std::thread waker([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      eventfd_write(wake, 1);
    });
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(ring.receive(got, 64, -1, why), 0) << why;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(15)) << "it waited for the wake";
    waker.join();
  }

  // A wake taken is gone (the next wait times out), and datagrams still come.
  EXPECT_EQ(ring.receive(got, 64, 50, why), 0) << why;
  sendto(client, "q", 1, 0, reinterpret_cast<sockaddr*>(&server_addr), sizeof server_addr);
  ASSERT_EQ(ring.receive(got, 64, -1, why), 1) << why;
  EXPECT_EQ(got[0].len, 1u);
  ring.release(got, 1);
  close(client);
  close(server);
  close(wake);
}

}  // namespace
}  // namespace vane::server
