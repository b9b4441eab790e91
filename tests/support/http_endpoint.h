// A test HTTP endpoint (cpp-httplib) on 127.0.0.1 for health checks.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace vane::test {

// An HTTP endpoint on 127.0.0.1 that can be stopped, restarted, or made to lie.
class Endpoint {
 public:
  explicit Endpoint(uint16_t port = 0) : port_(port) { start(); }
  ~Endpoint() { stop(); }
  void start() {
    server_ = std::make_unique<httplib::Server>();
    server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (int d = delay_ms_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(d));
      res.set_content(body_.load() ? "ok\n" : "degraded\n", "text/plain");
    });
    if (port_ == 0)
      port_ = static_cast<uint16_t>(server_->bind_to_any_port("127.0.0.1"));
    else
      server_->bind_to_port("127.0.0.1", port_);
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
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  std::atomic<bool> body_{true};
  std::atomic<int> delay_ms_{0};
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace vane::test
