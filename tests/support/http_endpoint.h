// Test endpoints on 127.0.0.1 for health checks: an HTTP server (cpp-httplib)
// that can stop, lie, answer slowly or every other time, and a tarpit.
#pragma once

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace vane::test {

// An HTTP endpoint on 127.0.0.1 (or `host`, in the namespace of the thread
// that starts it) that can be stopped, restarted, or made to lie.
class Endpoint {
 public:
  explicit Endpoint(uint16_t port = 0, std::string host = "127.0.0.1") : port_(port), host_(std::move(host)) {
    start();
  }
  ~Endpoint() { stop(); }
  void start() {
    server_ = std::make_unique<httplib::Server>();
    server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (int d = delay_ms_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(d));
      ++requests_;
      if (alternate_.load() && ++flaky_ % 2 == 0) {  // every other answer a 503
        res.status = 503;
        res.set_content("flaky\n", "text/plain");
        return;
      }
      res.set_content(body_.load() ? "ok\n" : "degraded\n", "text/plain");
    });
    if (port_ == 0)
      port_ = static_cast<uint16_t>(server_->bind_to_any_port(host_));
    else
      server_->bind_to_port(host_, port_);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  void stop() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }
  void lie(bool l) { body_ = !l; }
  void delay(int ms) { delay_ms_ = ms; }  // answer slowly: a higher measured RTT
  void alternate(bool a) { flaky_ = 0, alternate_ = a; }  // 200 only every other time (the first is a 200)
  uint64_t requests() const { return requests_; }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  std::string host_;
  std::atomic<bool> body_{true};
  std::atomic<int> delay_ms_{0};
  std::atomic<bool> alternate_{false};
  std::atomic<uint64_t> flaky_{0}, requests_{0};
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

// A TCP socket listening on 127.0.0.1, on a port the kernel chose (`port`).
inline int listen_loopback(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, 1024) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("cannot listen on 127.0.0.1");
  port = ntohs(a.sin_port);
  return fd;
}

// A TCP listener that accepts and then says nothing: an HTTP server that
// hangs, a TLS handshake that stalls. Connections are held until the peer
// closes them.
class Tarpit {
 public:
  Tarpit() {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] { run(); });
  }
  ~Tarpit() {
    stop_ = true;
    thread_.join();
    for (int c : held_) close(c);
    close(fd_);
  }
  uint16_t port() const { return port_; }
  uint64_t accepted() const { return accepted_; }

 private:
  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int c : held_) fds.push_back({c, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = accept(fd_, nullptr, nullptr);
        if (c >= 0) held_.push_back(c), ++accepted_;
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        if (read(fds[i].fd, buf, sizeof buf) <= 0) {  // closed by the prober: let it go (what it sent is ignored)
          close(fds[i].fd);
          held_.erase(std::find(held_.begin(), held_.end(), fds[i].fd));
        }
      }
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::vector<int> held_;
  std::thread thread_;
};

}  // namespace vane::test
