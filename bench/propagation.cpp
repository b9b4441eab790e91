// Cluster propagation: from the acknowledgement of a change on one node to
// the new answer on the others. Alternates `force RECORD ENDPOINT down` and
// `auto` on node A's admin socket; after each ack it polls every other node
// over UDP (1 ms apart) until it answers the new address. Prints p50/p99/max.
//
//   vane-propagation SOCKET_A RECORD ENDPOINT UP_ADDR DOWN_ADDR PORT_B [PORT_C ...] [--flips N]
//
// Only 127.0.0.1 is queried.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "client.h"

namespace {

std::vector<uint8_t> make_query(const std::string& name, uint16_t id) {
  std::vector<uint8_t> q{uint8_t(id >> 8), uint8_t(id), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(uint8_t(dot - start));
    q.insert(q.end(), name.begin() + long(start), name.begin() + long(dot));
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

// The first A record's address in a response, or "".
std::string first_a(const uint8_t* p, size_t n) {
  if (n < 12 || (p[7] == 0 && p[6] == 0)) return "";
  size_t off = 12;
  while (off < n && p[off]) off += p[off] + 1;  // the question's name
  off += 5;
  if (off + 12 > n) return "";
  off += (p[off] & 0xC0) == 0xC0 ? 2 : 0;  // a compressed owner (vane always compresses it)
  uint16_t type = uint16_t(p[off] << 8 | p[off + 1]);
  uint16_t len = uint16_t(p[off + 8] << 8 | p[off + 9]);
  if (type != 1 || len != 4 || off + 14 > n) return "";
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, p + off + 10, buf, sizeof buf);
  return buf;
}

std::string ask(int fd, uint16_t port, const std::vector<uint8_t>& q) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, 200) <= 0) return "";
  uint8_t buf[1500];
  ssize_t r = recv(fd, buf, sizeof buf, 0);
  return r > 0 ? first_a(buf, size_t(r)) : "";
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s SOCKET_A RECORD ENDPOINT UP_ADDR DOWN_ADDR PORT_B [PORT_C ...] [--flips N]\n", argv[0]);
    return 2;
  }
  std::string sock = argv[1], record = argv[2], endpoint = argv[3], up = argv[4], down = argv[5];
  std::vector<uint16_t> ports;
  int flips = 500;
  for (int i = 6; i < argc; ++i) {
    if (std::string(argv[i]) == "--flips" && i + 1 < argc)
      flips = atoi(argv[++i]);
    else
      ports.push_back(uint16_t(atoi(argv[i])));
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  std::vector<double> ms;
  int missed = 0;
  for (int i = 0; i < flips; ++i) {
    bool to_down = i % 2 == 0;
    auto r = vane::admin::call(sock,
                               {{"cmd", "force"}, {"record", record}, {"endpoint", endpoint},
                                {"state", to_down ? "down" : "auto"}},
                               10000);
    if (!r || !(*r)["ok"].get<bool>()) {
      fprintf(stderr, "flip %d failed: %s\n", i, r ? r->dump().c_str() : r.error().to_string().c_str());
      return 1;
    }
    auto t0 = std::chrono::steady_clock::now();
    const std::string& want = to_down ? down : up;
    for (uint16_t port : ports) {
      auto q = make_query(record, uint16_t(i));
      while (true) {
        double el = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (ask(fd, port, q) == want) {
          ms.push_back(el);
          break;
        }
        if (el > 5000) {
          ++missed;
          break;
        }
        usleep(1000);
      }
    }
  }
  close(fd);
  printf("propagation over %d flips x %zu nodes: p50 %.1f ms, p99 %.1f ms, max %.1f ms, missed %d\n", flips,
         ports.size(), pct(ms, 0.5), pct(ms, 0.99), pct(ms, 1.0), missed);
  return missed ? 1 : 0;
}
