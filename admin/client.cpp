#include "client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace vane::admin {

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Result<nlohmann::json> call(const std::string& socket_path, const nlohmann::json& request, int timeout_ms) {
  sockaddr_un sun{};
  if (socket_path.size() >= sizeof sun.sun_path) return Error{socket_path, 0, "socket path too long"};
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd s{socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return Error{socket_path, 0, std::string("socket: ") + strerror(errno)};
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    int err = errno;
    std::string hint = err == ENOENT || err == ECONNREFUSED ? " (is vaned running? is -s right?)" : "";
    return Error{socket_path, 0, std::string("cannot connect: ") + strerror(err) + hint};
  }
  std::string out = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  for (size_t off = 0; off < out.size();) {
    ssize_t n = send(s.fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{socket_path, 0, std::string("send: ") + strerror(errno)};
    off += static_cast<size_t>(n);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string in;
  char buf[65536];
  while (in.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Error{socket_path, 0, "no answer from vaned within " + std::to_string(timeout_ms) + " ms"};
    pollfd p{s.fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    ssize_t n = recv(s.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{socket_path, 0, std::string("recv: ") + strerror(errno)};
    if (n == 0) return Error{socket_path, 0, "vaned closed the connection without an answer"};
    in.append(buf, static_cast<size_t>(n));
  }
  in.resize(in.find('\n'));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    return Error{socket_path, 0, std::string("unreadable answer from vaned: ") + e.what()};
  }
}

}  // namespace vane::admin
