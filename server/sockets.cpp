// Socket creation for the listeners; start-up only.
#include "sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vane::server {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string format_addr(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  char out[INET6_ADDRSTRLEN + 10];
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    snprintf(out, sizeof out, "%s:%u", host, unsigned{ntohs(a->sin_port)});
  } else {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    snprintf(out, sizeof out, "[%s]:%u", host, unsigned{ntohs(a->sin6_port)});
  }
  return out;
}

namespace {

uint16_t port_of(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
}

void set_port(sockaddr_storage& ss, uint16_t port) {
  if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}

bool is_wildcard(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr == INADDR_ANY;
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
}

Result<Fd> bind_socket(const ListenAddr& la, int type) {
  Fd fd(socket(la.addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Error{"", 0, std::string("socket: ") + strerror(errno)};
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return Error{"", 0, std::string("SO_REUSEPORT: ") + strerror(errno)};
  if (la.addr.ss_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (type == SOCK_DGRAM) {
    // Generous buffers absorb bursts between two batches (values are capped by the kernel).
    int size = 4 << 20;
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (is_wildcard(la.addr)) {
      if (la.addr.ss_family == AF_INET) setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
      else setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    }
    // Path MTU information is ignored (as NSD and Knot do): a forged ICMP
    // "fragmentation needed" cannot make vaned fragment its answers to a
    // resolver, the way into cache poisoning by fragments. An answer over
    // the interface's MTU is still fragmented (IPv4: DF unset), and the
    // EDNS size keeps answers below it.
    const bool v4 = la.addr.ss_family == AF_INET;
    int omit = v4 ? IP_PMTUDISC_OMIT : IPV6_PMTUDISC_OMIT;
    setsockopt(fd.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER, &omit, sizeof omit);
  }
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&la.addr), la.len) != 0)
    return Error{"", 0, "cannot bind " + std::string(type == SOCK_DGRAM ? "udp " : "tcp ") + format_addr(la.addr) +
                            ": " + strerror(errno)};
  if (type == SOCK_STREAM && listen(fd.get(), 1024) != 0)
    return Error{"", 0, "listen " + format_addr(la.addr) + ": " + strerror(errno)};
  return fd;
}

}  // namespace

Result<std::vector<WorkerSockets>> open_sockets(std::vector<ListenAddr>& listen, unsigned workers) {
  std::vector<WorkerSockets> out(workers);
  uint16_t shared_port = 0;  // port 0 on several addresses: one port for all when possible
  for (ListenAddr& la : listen) {
    bool ephemeral = port_of(la.addr) == 0;
    if (ephemeral && shared_port) {
      ListenAddr tryit = la;
      set_port(tryit.addr, shared_port);
      auto u = bind_socket(tryit, SOCK_DGRAM), t = bind_socket(tryit, SOCK_STREAM);
      if (u && t) set_port(la.addr, shared_port), ephemeral = false;
    }
    // With port 0 the first UDP bind picks the port; the TCP side and the
    // other workers must then get the same one. Rarely TCP finds it taken: retry.
    for (int attempt = 0;; ++attempt) {
      ListenAddr bound = la;
      std::vector<Fd> udp, tcp;
      std::optional<Error> failure;
      for (unsigned w = 0; w < workers && !failure; ++w) {
        auto u = bind_socket(bound, SOCK_DGRAM);
        if (!u) {
          failure = u.error();
          break;
        }
        if (w == 0 && ephemeral) {
          sockaddr_storage ss{};
          socklen_t len = sizeof ss;
          getsockname(u->get(), reinterpret_cast<sockaddr*>(&ss), &len);
          set_port(bound.addr, port_of(ss));
        }
        udp.push_back(u.take());
        auto t = bind_socket(bound, SOCK_STREAM);
        if (!t) {
          failure = t.error();
          break;
        }
        tcp.push_back(t.take());
      }
      if (failure) {
        if (ephemeral && attempt < 20) continue;
        return *failure;
      }
      la.addr = bound.addr;
      if (ephemeral && !shared_port) shared_port = port_of(la.addr);
      for (unsigned w = 0; w < workers; ++w) {
        out[w].udp.push_back(std::move(udp[w]));
        out[w].tcp.push_back(std::move(tcp[w]));
        out[w].udp_wildcard.push_back(is_wildcard(la.addr));
      }
      break;
    }
  }
  return out;
}

}  // namespace vane::server
