// Listening sockets: one UDP and one TCP socket per (worker, address), all
// SO_REUSEPORT on the same port so the kernel spreads load across workers.
// Created before the workers start; a port of 0 is resolved once and shared.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "error.h"

namespace vane::server {

// Owns a file descriptor; closes it in the destructor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

struct WorkerSockets {
  std::vector<Fd> udp;
  std::vector<Fd> tcp;
  std::vector<bool> udp_wildcard;  // bound to 0.0.0.0/:: : answer from the address asked (PKTINFO)
};

// Binds every listen address once per worker. Rewrites port 0 in `listen`
// to the port actually bound, so logs and tests can read it.
Result<std::vector<WorkerSockets>> open_sockets(std::vector<ListenAddr>& listen, unsigned workers);

std::string format_addr(const sockaddr_storage& ss);

}  // namespace vane::server
