// vane.yaml: parsed and validated into plain values (yaml-cpp). Every error
// names file:line. Off the hot path; re-read on reload.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "error.h"
#include "zone_loader.h"

namespace vane {

struct ListenAddr {
  std::string text;          // as written, e.g. "[::1]:5353"
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct TcpOptions {
  uint32_t idle_timeout_ms = 10000;   // RFC 7766 §6.2.3: seconds, not minutes
  uint32_t max_connections = 1024;    // whole server
  uint32_t max_per_client = 64;       // one client address
  uint32_t max_pipelined_bytes = 262144;  // queued answers before we stop reading a connection
};

// Where the embedded demo (vaned --demo) keeps its state and admin socket;
// vanectl looks there when no ./vane.yaml names another.
inline constexpr const char* kDemoStateDir = "./vane-demo-state";

struct Config {
  std::string path;  // file it came from ("<demo>" for the embedded one)
  std::vector<ListenAddr> listen;
  unsigned threads = 0;  // 0: one per core
  std::string state_dir = "./state";
  std::string admin_socket;
  std::string http_listen;
  std::string http_token_file;
  std::string vantage = "local";
  uint16_t edns_udp_size = 1232;
  TcpOptions tcp;
  std::vector<zones::ZoneSource> zones;
};

// Parses YAML text; relative paths are resolved against `base_dir`.
Result<Config> parse_config(const std::string& text, const std::string& path, const std::string& base_dir);
Result<Config> load_config(const std::string& path);

// "10s", "500ms", "15m", "1h" or a bare number of seconds.
bool parse_duration_ms(const std::string& text, uint64_t& ms);
bool parse_listen(const std::string& text, ListenAddr& out);

}  // namespace vane
