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

}  // namespace vane::admin
