// Small zones shared by the integration tests.
#pragma once

#include <chrono>
#include <functional>
#include <regex>
#include <string>
#include <thread>

#include "process.h"

namespace vane::test {

// r.test with an SOA of `serial` and www.r.test A `www` (6 lines, 4 records).
inline std::string zone_with(const std::string& www, int serial) {
  return "$ORIGIN r.test.\n$TTL 300\n@ IN SOA ns hostmaster " + std::to_string(serial) +
         " 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\nwww IN A " + www + "\n";
}

// example.com with just SOA, NS and the name server's A (steered records come from the config).
inline const char* kExampleZone =
    "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\n"
    "ns IN A 192.0.2.1\n";

// The port of http.listen, from vaned's "http on HOST:PORT" line (listen port 0).
inline uint16_t http_port(Process& p) {
  std::smatch m;
  std::string out = p.output();
  return std::regex_search(out, m, std::regex(R"(http on [^ ]*:(\d+) )")) ? uint16_t(std::stoi(m[1])) : 0;
}

// Polls `f` every 20 ms until it holds or `timeout_ms` passes.
inline bool eventually(const std::function<bool()>& f, int timeout_ms = 5000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

}  // namespace vane::test
