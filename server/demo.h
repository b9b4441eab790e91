// The embedded demo: a config and zone compiled into vaned, so that a fresh
// machine can run `vaned --demo` with nothing on disk.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "config.h"

namespace vane::server {

Result<Config> demo_config();

inline constexpr uint16_t kDemoEndpointPorts[2] = {5380, 5381};

// The two local HTTP endpoints the demo's health checks probe: GET /health
// answers "ok"; GET /fail makes it answer 503, GET /recover mends it.
class DemoEndpoints {
 public:
  DemoEndpoints();
  ~DemoEndpoints();
  std::optional<Error> start();

 private:
  struct Site;
  std::vector<std::unique_ptr<Site>> sites_;
};

}  // namespace vane::server
