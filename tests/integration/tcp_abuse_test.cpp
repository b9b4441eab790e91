// TCP abuse (RFC 7766 §6.2.3, tcp: limits): 5 000 idle connections, clients
// that send a frame a byte a second, and readers that never read, all at
// once. UDP must go on answering, new TCP clients must be served within the
// configured limits, and the idle ones must be closed at idle_timeout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

int connect_from(const std::string& source, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::vector<uint8_t> framed(const std::string& name, uint16_t id) {
  auto q = make_query(name, "A", {}, id);
  std::vector<uint8_t> f{uint8_t(q.size() >> 8), uint8_t(q.size())};
  f.insert(f.end(), q.begin(), q.end());
  return f;
}

// This process's descriptor limit raised to the hard limit; returns it.
rlim_t raise_fd_limit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// Closed by the server: a read returns 0 (or an error) within `ms`.
bool closed_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return false;
  uint8_t buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return true;
    if (n < 0) return poll(&p, 1, ms) > 0 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0;
  }
}

TEST(TcpAbuse, IdleSlowAndNonReadingClients_StarveNeitherUdpNorNewTcpClients) {
  ASSERT_GE(raise_fd_limit(), 6000u) << "this test needs 6000 descriptors";
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Vaned v(dir, R"(
listen: ["127.0.0.1:0"]
threads: 2
tcp: { idle_timeout: 4s, max_connections: 6000, max_per_client: 64, max_pipelined_bytes: 65536 }
zones: [{ name: example.com, file: example.com.zone }]
records:
)" + www_weighted(false));

  auto udp_seconds = [&] {  // 2 000 sequential UDP queries; all must be answered
    auto t0 = std::chrono::steady_clock::now();
    int answered = 0;
    for (int i = 0; i < 2000; ++i) {
      auto r = query("127.0.0.1", v.port(), "www.example.com", "A", {.timeout_ms = 1000});
      answered += r && r->answer.size() == 1;
    }
    EXPECT_EQ(answered, 2000);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double quiet_s = udp_seconds();

  // 5 000 idle connections, 64 per source address (127.0.1.1 ...).
  std::vector<int> idle;
  auto idle_opening = std::chrono::steady_clock::now();
  for (int i = 0; idle.size() < 5000 && i < 200; ++i)
    for (int j = 0; j < 64 && idle.size() < 5000; ++j) {
      int fd = connect_from("127.0.1." + std::to_string(i + 1), v.port());
      if (fd >= 0) idle.push_back(fd);
    }
  ASSERT_EQ(idle.size(), 5000u);
  // How long opening them took (seconds under ASan): the last one's idle
  // timeout ends that much after the first one's.
  int idle_spread_ms = int(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - idle_opening).count());
  // 50 slow clients: one byte of a query a second.
  std::atomic<bool> stop{false};
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) slow.push_back(connect_from("127.0.2.1", v.port()));
  std::thread trickle([&] {
    auto q = framed("www.example.com", 7);
    for (size_t b = 0; b < q.size() && !stop; ++b) {
      for (int fd : slow) send(fd, &q[b], 1, MSG_NOSIGNAL);
      for (int t = 0; t < 10 && !stop; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  // 20 readers that never read: thousands of pipelined queries each.
  std::vector<int> deaf;
  std::vector<uint8_t> flood;
  for (int i = 0; i < 2000; ++i) {
    auto f = framed("www.example.com", uint16_t(i));
    flood.insert(flood.end(), f.begin(), f.end());
  }
  for (int i = 0; i < 20; ++i) {
    int fd = connect_from("127.0.3.1", v.port());
    ASSERT_GE(fd, 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    send(fd, flood.data(), flood.size(), MSG_NOSIGNAL);  // as much as the kernel takes
    deaf.push_back(fd);
  }

  // UDP goes on: 2 000 queries, every one answered.
  double udp_s = udp_seconds();
  // New TCP clients are served, each within a second.
  for (int i = 0; i < 20; ++i) {
    auto s = std::chrono::steady_clock::now();
    auto r = query("127.0.0.1", v.port(), "www.example.com", "A", {.tcp = true, .timeout_ms = 2000});
    ASSERT_TRUE(r) << "new TCP client " << i << " not served";
    EXPECT_EQ(r->answer.size(), 1u);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count(), 1.0);
  }
  // The idle ones are closed at idle_timeout (4 s), the slow ones too: a
  // byte a second is not a query.
  EXPECT_TRUE(closed_within(idle.front(), 8000));
  EXPECT_TRUE(closed_within(idle.back(), idle_spread_ms + 2000))
      << "opened " << idle_spread_ms << " ms after the first";
  EXPECT_TRUE(closed_within(slow.front(), 8000));
  stop = true;
  trickle.join();
  RecordProperty("udp_qps_quiet", int(2000 / quiet_s));
  RecordProperty("udp_qps_under_abuse", int(2000 / udp_s));
  printf("UDP, 2000 sequential queries: quiet %.0f q/s, under abuse %.0f q/s\n", 2000 / quiet_s, 2000 / udp_s);
  for (int fd : idle) close(fd);
  for (int fd : slow) close(fd);
  for (int fd : deaf) close(fd);
}

// Gray failure (issue: TCP exhaustion): with the default limits, 2 000 idle
// connections from 50 addresses (40 each, under the per-client cap) fill
// the server-wide cap. A fresh client from another address must still be
// answered, within a second, every time: at the cap the idlest connection
// of the address holding most is closed to let it in (RFC 7766 §6.2.3).
TEST(TcpAbuse, IdleFloodAtTheCap_AFreshClientIsAnsweredEveryTime) {
  ASSERT_GE(raise_fd_limit(), 3000u) << "this test needs 3000 descriptors";
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Vaned v(dir, "listen: [\"127.0.0.1:0\"]\nthreads: 2\nhttp: { listen: \"127.0.0.1:0\" }\n"
               "zones: [{ name: example.com, file: example.com.zone }]\nrecords:\n" + www_weighted(false));
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i)
    for (int j = 0; j < 40; ++j) {
      int fd = connect_from("127.0.4." + std::to_string(i + 1), v.port());
      if (fd >= 0) idle.push_back(fd);
    }
  ASSERT_EQ(idle.size(), 2000u);  // accepted by the kernel; vaned holds at most max_connections (1024) of them
  // A resolver gives up on a server after about a second. Under ASan,
  // which runs vaned several times slower, on a shared 2-core CI machine,
  // the bound is 3 s: it is the eviction that is tested there, not speed.
  const int limit_ms = under_asan() ? 3000 : 1000;
  int answered = 0;
  std::string tries;  // each try's outcome, for a failure's message
  for (int i = 0; i < 24; ++i) {
    auto s = std::chrono::steady_clock::now();
    int fd = connect_from("127.0.5.1", v.port());
    ASSERT_GE(fd, 0);
    auto q = framed("www.example.com", uint16_t(100 + i));
    send(fd, q.data(), q.size(), MSG_NOSIGNAL);
    pollfd p{fd, POLLIN, 0};
    uint8_t buf[1024];
    ssize_t n = poll(&p, 1, limit_ms) > 0 ? recv(fd, buf, sizeof buf, 0) : -1;
    int took_ms = int(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
    bool ok = false;
    if (n > 14) {
      auto r = parse_response(std::vector<uint8_t>(buf + 2, buf + n));
      ok = r && r->id == 100 + i && r->answer == std::vector<std::string>{"www.example.com. 60 IN A 192.0.2.10"} &&
           took_ms < limit_ms;
    }
    answered += ok;
    tries += " " + std::to_string(i) + (ok ? ":ok/" : n > 0 ? ":wrong/" : ":none/") + std::to_string(took_ms) + "ms";
    close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // 24 tries over 12 s
  }
  EXPECT_EQ(answered, 24) << "tries:" << tries;
  httplib::Client c("127.0.0.1", http_port(v.process()));
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("\nvane_tcp_evicted_total "), std::string::npos);
  EXPECT_EQ(m->body.find("\nvane_tcp_evicted_total 0\n"), std::string::npos) << "no connection was evicted";
  for (int fd : idle) close(fd);
}

}  // namespace
}  // namespace vane::test
