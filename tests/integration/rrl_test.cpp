// Response rate limiting against the real vaned over UDP: a flood from one
// source is limited (answers dropped, every slip-th sent truncated) while
// another source is answered in full; an exempt network is never limited;
// TCP is never limited; the counters show it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

struct Tally {
  int full = 0, truncated = 0, silent = 0;
};

// `n` queries for www.example.com A from `source`, sent as fast as the
// socket takes them; then every reply is read.
Tally burst(const std::string& source, uint16_t port, int n) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from), 0) << source;
  int rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; ++i) {
    auto q = make_query("www.example.com", "A", {}, uint16_t(i));
    sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  Tally t;
  int got = 0;
  pollfd p{fd, POLLIN, 0};
  while (got < n && poll(&p, 1, 400) > 0) {
    uint8_t buf[1500];
    ssize_t len = recv(fd, buf, sizeof buf, 0);
    if (len <= 0) break;
    ++got;
    auto r = parse_response({buf, buf + len});
    if (!r) continue;
    if (r->tc) {
      ++t.truncated;
      EXPECT_TRUE(r->answer.empty());
      EXPECT_EQ(r->question.size(), 1u);
    } else {
      ++t.full;
      EXPECT_EQ(r->answer.size(), 1u);
    }
  }
  t.silent = n - got;
  close(fd);
  return t;
}

TEST(Rrl, AFloodFromOneSourceIsLimited_AnotherIsAnsweredInFull) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Vaned v(dir, R"(
listen: ["127.0.0.1:0"]
threads: 1
http: { listen: "127.0.0.1:0" }
zones: [{ name: example.com, file: example.com.zone }]
rrl: { responses_per_second: 10, slip: 2, ipv4_prefix: 32, exempt: [127.0.0.4/32] }
records:
)" + www_weighted(false));
  // 300 queries at once from 127.0.0.2: about 10 answered, the rest held
  // back, half of those as truncated answers (slip 2), half dropped.
  Tally flood = burst("127.0.0.2", v.port(), 300);
  // 127.0.0.3, in the same second, within its own rate: every answer in full.
  Tally other = burst("127.0.0.3", v.port(), 8);
  // An exempt network: never limited.
  Tally exempt = burst("127.0.0.4", v.port(), 100);
  EXPECT_GE(flood.full, 10);
  EXPECT_LE(flood.full, 30);  // at most a second boundary's refill more
  EXPECT_GE(flood.truncated, 100);
  EXPECT_GE(flood.silent, 100);
  EXPECT_NEAR(flood.truncated, flood.silent, 20);
  EXPECT_EQ(other.full, 8);
  EXPECT_EQ(other.truncated + other.silent, 0);
  EXPECT_EQ(exempt.full, 100);
  // TCP is never limited (a truncated answer sends clients there).
  for (int i = 0; i < 20; ++i) {
    auto r = query("127.0.0.1", v.port(), "www.example.com", "A", {.tcp = true});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->answer.size(), 1u);
  }
  httplib::Client http("127.0.0.1", http_port(v.process()));
  auto m = http.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("vane_rrl_responses_total{action=\"dropped\"} " + std::to_string(flood.silent)),
            std::string::npos)
      << m->body.substr(m->body.find("vane_rrl"), 300);
  EXPECT_NE(m->body.find("vane_rrl_responses_total{action=\"slipped\"} " + std::to_string(flood.truncated)),
            std::string::npos);
}

TEST(Rrl, Off_AnswersEverything) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Vaned v(dir, "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: example.com.zone }]\n"
               "records:\n" + www_weighted(false));
  Tally t = burst("127.0.0.2", v.port(), 300);
  EXPECT_EQ(t.full, 300);
}

}  // namespace
}  // namespace vane::test
