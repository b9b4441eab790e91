// The HTTP API (api.listen; DESIGN.md "HTTP API"): every vanectl verb as JSON
// under /v1/, with bearer tokens and scopes. cpp-httplib serves it on its own
// threads — plain HTTP on loopback, or TLS (OpenSSL) with optional client
// certificates. ApiRouter decides who may do what; each admitted request is
// handed to `dispatch`, which runs it on the main loop exactly as the admin
// socket would (in a cluster: acknowledged after quorum), and its JSON reply
// is the answer.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api_router.h"
#include "error.h"

namespace vane::server {

class Api {
 public:
  // Runs an admitted request on the main loop; `done` may be called from any
  // thread, once.
  using Dispatch = std::function<void(const ApiRoute& route, std::function<void(ApiAnswer)> done)>;
  Api(const ApiSpec& spec, Dispatch dispatch);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  std::optional<Error> start();
  void stop();
  uint16_t port() const { return port_; }
  // Tokens re-read on reload (listen and tls take a restart).
  void set_tokens(const std::vector<ApiToken>& tokens) { router_.set_tokens(tokens); }
  // vane_api_requests_total{code} for /metrics.
  std::string metrics() const;

  // How long a request may wait for the main loop (a cluster write waits
  // for quorum) before it is answered 504.
  static constexpr int kWaitSeconds = 130;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ApiSpec spec_;
  ApiRouter router_;
  Dispatch dispatch_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  static constexpr std::array<int, 12> kCodes{200, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503, 504};
  std::array<std::atomic<uint64_t>, kCodes.size()> counts_{};
  void count(int status);
};

}  // namespace vane::server
