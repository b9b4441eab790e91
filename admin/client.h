// The client side of the admin socket: one JSON request, one JSON response.
// Used by vanectl and by the tests; blocking, never on a DNS or loop thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "error.h"

namespace vane::admin {

// Sends `request` as one line and reads one response line. Transport
// problems (no socket, no vaned, timeout, garbage) are an Error; a
// {"ok":false} answer is a value.
Result<nlohmann::json> call(const std::string& socket_path, const nlohmann::json& request, int timeout_ms = 120000);

// The same request over the HTTP API (vanectl --url): POST /v1/<cmd> with
// the other fields as the body, a bearer token, and for https a CA to trust
// and optionally a client certificate. A write carries an Idempotency-Key
// and is retried (twice, with the same key) when the connection fails, so a
// retry never applies a change twice. An error status's JSON body is a value
// like {"ok":false}; 429 adds its Retry-After to the error.
struct ApiTarget {
  std::string url;  // "https://ns1.example.net:8443"
  std::string token;
  std::string ca_file, cert_file, key_file;
};
Result<nlohmann::json> call_api(const ApiTarget& target, const nlohmann::json& request, int timeout_ms = 120000);

}  // namespace vane::admin
