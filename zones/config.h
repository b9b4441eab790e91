// vane.yaml: parsed and validated into plain values (yaml-cpp). Every error
// names file:line. Off the hot path; re-read on reload.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "error.h"
#include "steering.h"
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
  bool operator==(const TcpOptions&) const = default;
};

// UDP receive loop. With `coalesce_us` set, under load the thread waits up to
// that long before the next receive, so that one recvmmsg/sendmmsg pair
// serves more queries: interrupt moderation, in user space
// (server/worker.cpp). Off by default: a wait is latency every query in it
// pays (3x the peers' average at 40k q/s), and no default may buy CPU so.
// `receive`: recvmmsg/sendmmsg (the default: measured as cheap as io_uring
// and steadier at saturation, bench/RESULTS.md), io_uring (multishot
// recvmsg, provided buffers, the answers sent by the syscall that waits), or
// auto (io_uring when a probe at start finds it works). kUnset: the config
// does not say; Server::start decides (recvmmsg, or VANE_UDP_RECEIVE).
struct UdpOptions {
  static constexpr double kCoalesceMin = 8;      // worth a wait: the cap gathers this many
  static constexpr double kCoalesceTarget = 48;  // a wait lasts until about this many arrived
  enum class Receive { kUnset, kAuto, kIoUring, kRecvmmsg };
  uint32_t coalesce_us = 0;
  Receive receive = Receive::kUnset;
  bool operator==(const UdpOptions&) const = default;
};

// A health check (DESIGN.md "Health checks"), referenced by endpoints.
struct CheckSpec {
  std::string name;
  std::string type = "tcp";  // tcp | http | https | dns
  uint16_t port = 0;         // default: 80 / 443 / 53; an endpoint's port: wins
  std::string path = "/";    // http(s)
  std::string host;          // http(s) Host header (default: the endpoint's host)
  std::vector<uint16_t> expect_status{200};
  std::string body_contains;
  bool tls_verify = true;
  std::string qname;         // dns
  uint16_t qtype = 1;
  uint8_t expect_rcode = 0;
  uint32_t interval_ms = 10000;
  uint32_t timeout_ms = 2000;
  uint32_t jitter_ms = 0;
  uint32_t fall = 3;
  uint32_t rise = 2;
  double quorum = 0.5;
  uint32_t min_vantages = 1;
  // damping: { flips, window, hold } (DESIGN.md "Failback and damping"):
  // more than `flips` verdict changes within `window` hold the endpoint down
  // for `hold`. flips 0: no damping.
  uint32_t damping_flips = 0;
  uint64_t damping_window_ms = 0, damping_hold_ms = 0;
  int line = 0;
};

// One endpoint of a steered record (DESIGN.md "Steering records").
struct EndpointSpec {
  std::string name;
  std::string address;  // A / AAAA records: the address; CNAME records: the target (absolute)
  std::string region;
  std::string check;  // name in checks:, or empty
  std::string host;   // where a check probes (default: address)
  uint32_t priority = 1;
  int line = 0;
  uint16_t port = 0;
  uint8_t weight = 1;
};

struct RecordSpec {
  std::string name;  // absolute, presentation form, lowercase
  uint16_t type = 0;
  uint32_t ttl = 60;
  zones::Policy policy = zones::Policy::kWeighted;
  bool fail_closed = false;
  bool sticky = false;
  bool measured = false;  // latency_source: measured
  bool pick_all = false;  // pick: all (latency, geo, proximity)
  uint8_t max_answers = 8;
  // failover records: zones::kFailbackAuto, kFailbackManual, or the ms the
  // preferred tier must stay healthy before traffic returns to it.
  int64_t failback = 0;
  uint32_t ttl_unsteady = 0;  // seconds: the TTL while an endpoint wavers (0: off)
  size_t zone = 0;  // index into Config::zones
  std::vector<EndpointSpec> endpoints;
  int line = 0;
};

struct RegionSpec {
  std::string geo;  // "EU", "EU/DE", "EU/DE/BY" or "default" (then cidr is empty)
  std::string cidr;
  uint8_t family = 4;
  uint8_t prefix = 0;
  uint8_t addr[16] = {};
  std::vector<std::string> order;
  std::string vantage;  // whose measured RTTs speak for these clients (latency_source: measured)
  int line = 0;
};

// cluster: (DESIGN.md "Cluster"): several vaned nodes sharing one state
// through etcd. Absent: this node keeps its state in RocksDB alone.
struct ClusterSpec {
  std::vector<std::string> etcd;  // "http://10.0.0.1:2379", ...
  std::string prefix = "/vane";   // keys live under prefix + "/"
  std::string node;               // default: the hostname
  std::string tls_ca, tls_cert, tls_key;
  std::string user, password_file;
  int line = 0;
  bool enabled() const { return !etcd.empty(); }
};

// dnstap: (DESIGN.md "Query log (dnstap)"); server/dnstap.h writes it.
struct DnstapSpec {
  int line = 0;
  std::string socket, file, tcp;  // exactly one: a unix socket path, a file path, or HOST:PORT
  std::string identity, version;
  uint32_t sample = 1;  // log one query in N
  bool log_queries = true, log_responses = true;
  bool enabled() const { return !socket.empty() || !file.empty() || !tcp.empty(); }
  std::string sink() const {
    return !socket.empty() ? "unix:" + socket : !file.empty() ? "file:" + file : !tcp.empty() ? "tcp:" + tcp : "";
  }
  bool operator==(const DnstapSpec& o) const {
    return socket == o.socket && file == o.file && tcp == o.tcp && identity == o.identity && version == o.version &&
           sample == o.sample && log_queries == o.log_queries && log_responses == o.log_responses;
  }
};

// api: the HTTP API (DESIGN.md "HTTP API"). A token's secret is read from
// its token_file when the config is loaded (and on every reload); it is
// never logged, journaled or shown.
struct ApiToken {
  std::string name;    // the actor in the journal
  std::string secret;  // the token file's first line
  bool read = false, write = false, admin = false;  // admin grants read and write too
  std::vector<std::string> write_zones;  // write:ZONE, canonical ("example.com.")
  double rate = 10;                      // requests per second (burst: 2 s worth, at least 10)
  int line = 0;
};
struct ApiSpec {
  std::string listen;  // HOST:PORT; without tls a loopback address only
  std::string cert, key, client_ca;  // tls: (client_ca: client certificates required)
  std::vector<ApiToken> tokens;
  size_t max_body = 64 * 1024;  // larger request bodies: 413
  int line = 0;
  bool enabled() const { return !listen.empty(); }
  bool tls() const { return !cert.empty(); }
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
  ApiSpec api;
  // Per-endpoint series on /metrics (http.endpoint_metrics): every endpoint
  // (all), only those out of the ordinary — down, out of answers, overridden,
  // an admin weight, a stale vantage — (problems), or all up to
  // kEndpointMetricsAuto endpoints and problems above (auto, the default).
  enum class EndpointMetrics { kAuto, kAll, kProblems };
  static constexpr size_t kEndpointMetricsAuto = 1000;
  EndpointMetrics endpoint_metrics = EndpointMetrics::kAuto;
  std::string vantage = "local";
  bool vantage_set = false;  // vantage: written in the config (else, in a cluster, the node name)
  ClusterSpec cluster;
  zones::RrlParams rrl;  // rate 0: off
  uint16_t edns_udp_size = 1232;
  uint32_t dnssec_cache = 65536;  // signatures cached per DNS thread (88 bytes each)
  TcpOptions tcp;
  UdpOptions udp;
  zones::TsigKeys tsig;  // tsig: (zone transfers)
  std::vector<zones::ZoneSource> zones;
  std::vector<RecordSpec> records;
  std::vector<RegionSpec> regions;
  std::vector<CheckSpec> checks;
  // geo: { database } (DESIGN.md "Geography") and region_coords (proximity).
  std::string geo_database;
  int geo_line = 0;
  struct RegionCoord {
    std::string region;
    double lat = 0, lon = 0, bias_km = 0;
    int line = 0;
  };
  std::vector<RegionCoord> region_coords;
  DnstapSpec dnstap;
};

// `vaned agent --config agent.yaml`: a remote vantage. It probes the
// endpoints the main instance serves at GET /v1/targets (or those of a copy
// of its config) and reports to its http.listen.
struct AgentConfig {
  std::string path;
  std::string vantage;
  // "http://10.0.0.1:8053", or several nodes of a cluster: the agent reports
  // to each of them, so a path cut to one node loses nothing.
  std::vector<std::string> report_to;
  std::string token_file;
  std::string config;     // a copy of the main instance's vane.yaml; empty: fetch GET /v1/targets
  uint32_t report_interval_ms = 2000;
  uint32_t targets_refresh_ms = 10000;  // how often fetched targets are checked for changes
};
Result<AgentConfig> load_agent_config(const std::string& path);

// A bearer token file (http.token_file, an agent's token_file): the first
// line, trimmed. An empty token is an error.
Result<std::string> read_token_file(const std::string& path);

// Parses YAML text; relative paths are resolved against `base_dir`.
// `zone_hook`, when given, is called during the parse with each zones:
// entry that is just `{ name, file }` (the file resolved), as soon as the
// parse has read it, before the rest of the file is checked: a start-up
// can begin reading zones (server::ZonePreload). The config may still
// turn out bad.
using ZoneHook = std::function<void(const std::string& origin, const std::string& file)>;
Result<Config> parse_config(const std::string& text, const std::string& path, const std::string& base_dir,
                            const ZoneHook* zone_hook = nullptr);
Result<Config> load_config(const std::string& path, const ZoneHook* zone_hook = nullptr);

// A digest of what a node serves (zone file contents, records, regions,
// checks), hex: nodes of one cluster should agree on it. Node-local settings
// (listen, state_dir, node, ...) are left out.
std::string serving_digest(const Config& cfg);

// "10s", "500ms", "15m", "1h" or a bare number of seconds.
bool parse_duration_ms(const std::string& text, uint64_t& ms);
// The same, in microseconds, and also taking "us" (e.g. 100us, 1ms).
bool parse_duration_us(const std::string& text, uint64_t& us);
bool parse_listen(const std::string& text, ListenAddr& out);

}  // namespace vane
