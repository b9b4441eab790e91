// bench/run.sh's latency probe: an open-loop DNS client. Queries leave on a
// fixed schedule (RATE per second, whatever the answers do), each stamped
// when it is sent and when its answer is read, so the percentiles are of
// what every client saw — dnsperf reports an average only. Several source
// sockets, so that a server with SO_REUSEPORT workers spreads them.
//
//   vane-latency PORT RATE SECONDS QUERYFILE   (127.0.0.1 only)
//   -> "sent N answered N lost N avg_us X p50_us X p99_us X p999_us X max_us X
//       p99_sent_us X"
//
// The percentiles are of the answers. p99_sent_us is of every query sent,
// an unanswered one counted as kLostUs (a resolver waits out its timeout
// for it): a server that drops its slowest queries does not better its p99
// by that.
//
// With LAT_TRACE=FILE in the environment, it also writes one line per
// answer to FILE: "SENT_US LATENCY_US", SENT_US counted from the first
// query; bench/stalls.sh reads it to find the stalls behind a tail.
//
// QUERYFILE holds "NAME TYPE" lines (dnsperf's format, A/AAAA/NS/SOA/TXT/MX).
// Meant to run alone on a core: it polls without sleeping.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kSockets = 8;
constexpr double kLostUs = 1e6;  // what an unanswered query counts for in p99_sent_us
constexpr int kBatch = 64;

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

uint16_t type_code(const std::string& t) {
  static const std::pair<const char*, uint16_t> kTypes[] = {
      {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"MX", 15}, {"TXT", 16}, {"AAAA", 28}};
  for (const auto& [name, code] : kTypes)
    if (t == name) return code;
  return 1;
}

// A query in wire form with ID 0 and RD clear.
std::vector<uint8_t> encode(const std::string& name, uint16_t type) {
  std::vector<uint8_t> q = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  std::stringstream labels(name);
  for (std::string label; std::getline(labels, label, '.');) {
    if (label.empty()) continue;
    q.push_back(uint8_t(label.size()));
    q.insert(q.end(), label.begin(), label.end());
  }
  q.insert(q.end(), {0, uint8_t(type >> 8), uint8_t(type), 0, 1});
  return q;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: vane-latency PORT RATE SECONDS QUERYFILE\n");
    return 2;
  }
  const uint16_t port = uint16_t(std::atoi(argv[1]));
  const double rate = std::atof(argv[2]);
  const double seconds = std::atof(argv[3]);
  std::vector<std::vector<uint8_t>> queries;
  std::ifstream in(argv[4]);
  for (std::string name, type; in >> name >> type;) queries.push_back(encode(name, type_code(type)));
  if (queries.empty() || rate <= 0 || seconds <= 0) {
    std::fprintf(stderr, "vane-latency: no queries, or a rate or duration that is not positive\n");
    return 2;
  }

  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fds[kSockets];
  for (int& fd : fds) {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0) {
      std::perror("vane-latency: socket");
      return 1;
    }
  }

  // Per socket, the send time of each of the 65536 IDs (0: none in flight).
  std::vector<uint64_t> sent_at(size_t(kSockets) * 65536, 0);
  std::vector<uint32_t> latencies;
  latencies.reserve(size_t(rate * seconds) + 1);
  const char* trace_path = std::getenv("LAT_TRACE");
  std::vector<std::pair<uint64_t, uint32_t>> trace;  // send time from start, latency; ns
  if (trace_path) trace.reserve(latencies.capacity());
  uint64_t sent = 0, late_or_lost = 0;
  uint16_t next_id[kSockets] = {};
  const uint64_t total = uint64_t(rate * seconds);
  const double interval_ns = 1e9 / rate;
  const uint64_t start = now_ns();
  const uint64_t drain_until = start + uint64_t(seconds * 1e9) + 1000000000;  // answers get 1 s more

  static uint8_t rx[kBatch][512];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  uint8_t tx[512];
  for (uint64_t now = now_ns(); now < drain_until; now = now_ns()) {
    // Send everything the schedule says is due (a burst if the client fell behind).
    while (sent < total && start + uint64_t(double(sent) * interval_ns) <= now) {
      const auto& q = queries[sent % queries.size()];
      int s = int(sent % kSockets);
      uint16_t id = next_id[s]++;
      std::memcpy(tx, q.data(), q.size());
      tx[0] = uint8_t(id >> 8);
      tx[1] = uint8_t(id);
      uint64_t& slot = sent_at[size_t(s) * 65536 + id];
      if (slot) ++late_or_lost;  // the ID came round with its query unanswered
      slot = now_ns();
      if (send(fds[s], tx, q.size(), 0) < 0) slot = 0, ++late_or_lost;
      ++sent;
    }
    for (int s = 0; s < kSockets; ++s) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {rx[i], sizeof rx[i]};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fds[s], msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) continue;
      uint64_t t = now_ns();
      for (int i = 0; i < n; ++i) {
        if (msgs[i].msg_len < 12) continue;
        uint16_t id = uint16_t(rx[i][0] << 8 | rx[i][1]);
        uint64_t& slot = sent_at[size_t(s) * 65536 + id];
        if (!slot) continue;
        latencies.push_back(uint32_t(std::min<uint64_t>(t - slot, UINT32_MAX)));
        if (trace_path) trace.emplace_back(slot - start, latencies.back());
        slot = 0;
      }
    }
    if (sent == total && latencies.size() + late_or_lost >= total) break;
  }

  if (trace_path) {
    FILE* f = std::fopen(trace_path, "w");
    if (!f) {
      std::perror("vane-latency: LAT_TRACE");
      return 1;
    }
    for (const auto& [at, latency] : trace)
      std::fprintf(f, "%llu %u\n", (unsigned long long)(at / 1000), latency / 1000);
    std::fclose(f);
  }
  const uint64_t answered = latencies.size();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    if (latencies.empty()) return 0.0;
    size_t i = std::min(latencies.size() - 1, size_t(p * double(latencies.size())));
    return latencies[i] / 1000.0;
  };
  // The answers sorted, then the lost ones after them.
  auto pct_sent = [&](double p) {
    size_t i = size_t(p * double(sent));
    return i < answered ? latencies[i] / 1000.0 : kLostUs;
  };
  double sum = 0;
  for (uint32_t l : latencies) sum += l;
  std::printf(
      "sent %llu answered %llu lost %llu avg_us %.1f p50_us %.1f p99_us %.1f p999_us %.1f max_us %.1f "
      "p99_sent_us %.1f\n",
      (unsigned long long)sent, (unsigned long long)answered, (unsigned long long)(sent - answered),
      answered ? sum / double(answered) / 1000.0 : 0.0, pct(0.5), pct(0.99), pct(0.999),
      latencies.empty() ? 0.0 : latencies.back() / 1000.0, pct_sent(0.99));
  for (int fd : fds) close(fd);
  return 0;
}
