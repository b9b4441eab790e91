// The control-plane HTTP listener (http.listen): agent reports at
// POST /v1/observations and what agents probe at GET /v1/targets (Bearer
// token from http.token_file), and /healthz.
// Runs on its own thread (cpp-httplib); hands validated reports to a
// callback and never touches DNS state itself.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "aggregator.h"
#include "error.h"

namespace vane::admin {

inline constexpr size_t kMaxReportBytes = 1 << 20;

class HttpServer {
 public:
  using OnObservations = std::function<void(std::vector<healthcheck::Observation>)>;
  // `known` says whether an endpoint key exists (unknown ones are counted, not kept).
  HttpServer(std::string token, std::string local_vantage, OnObservations on_obs,
             std::function<bool(const std::string&)> known);
  ~HttpServer();
  // Read-only pages (/, /metrics, /api/status): the callback returns
  // (content type, body), or nothing when vaned cannot answer in time.
  // /api/status?filter=NAME is asked for as "/api/status?filter=NAME"
  // (NAME decoded).
  using Page = std::function<std::optional<std::pair<std::string, std::string>>(const std::string& path)>;
  void set_pages(Page pages);
  // GET /v1/targets is answered through the pages callback, as
  // "/v1/targets" (each target with its check written out) or
  // "/v1/targets?checks=shared" (checks listed once). An agent that sends
  // If-None-Match: "<version>" with the current version gets a 304 without
  // one, answered on the HTTP thread from this callback (thread-safe).
  void set_targets_version(std::function<std::string()> version);
  std::optional<Error> start(const std::string& listen);  // "127.0.0.1:8053", port 0 = any
  void stop();
  uint16_t port() const { return port_; }

  // Validates a report body; fills `out` or returns the error. Public for tests.
  static std::optional<std::string> parse_report(const std::string& body, const std::string& local_vantage,
                                                 std::vector<healthcheck::Observation>& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace vane::admin
