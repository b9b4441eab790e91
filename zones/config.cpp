// vane.yaml parsing with yaml-cpp. Unknown keys are errors (a typo must not
// silently change behaviour); each message carries file:line.
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace vane {

namespace {

struct Ctx {
  const std::string& path;
  const std::string& base_dir;
};

Error err(const Ctx& c, const YAML::Node& n, std::string msg) {
  return Error{c.path, n.Mark().is_null() ? 0 : n.Mark().line + 1, std::move(msg)};
}

std::optional<Error> check_keys(const Ctx& c, const YAML::Node& map, const std::set<std::string>& known,
                                const std::string& where) {
  if (!map.IsMap()) return err(c, map, where + " must be a mapping");
  for (const auto& kv : map) {
    std::string key = kv.first.as<std::string>();
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return err(c, kv.first, "unknown key '" + key + "' in " + where + " (known: " + list + ")");
    }
  }
  return std::nullopt;
}

template <class T>
std::optional<Error> get_uint(const Ctx& c, const YAML::Node& n, T& out, uint64_t lo, uint64_t hi, const char* what) {
  uint64_t v;
  try {
    v = n.as<uint64_t>();
  } catch (const YAML::Exception&) {
    return err(c, n, std::string(what) + " must be a whole number");
  }
  if (v < lo || v > hi)
    return err(c, n, std::string(what) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  out = static_cast<T>(v);
  return std::nullopt;
}

std::optional<Error> get_duration(const Ctx& c, const YAML::Node& n, uint32_t& out_ms, const char* what) {
  uint64_t ms;
  if (!n.IsScalar() || !parse_duration_ms(n.Scalar(), ms) || ms > UINT32_MAX)
    return err(c, n, std::string(what) + " must be a duration like 500ms, 10s or 15m");
  out_ms = static_cast<uint32_t>(ms);
  return std::nullopt;
}

std::string resolve_path(const Ctx& c, const std::string& p) {
  std::filesystem::path fp(p);
  return fp.is_relative() && !c.base_dir.empty() ? (std::filesystem::path(c.base_dir) / fp).string() : p;
}

std::optional<Error> parse_tcp(const Ctx& c, const YAML::Node& n, TcpOptions& t) {
  if (auto e = check_keys(c, n, {"idle_timeout", "max_connections", "max_per_client", "max_pipelined_bytes"}, "tcp"))
    return e;
  if (n["idle_timeout"])
    if (auto e = get_duration(c, n["idle_timeout"], t.idle_timeout_ms, "tcp.idle_timeout")) return e;
  if (n["max_connections"])
    if (auto e = get_uint(c, n["max_connections"], t.max_connections, 1, 1000000, "tcp.max_connections")) return e;
  if (n["max_per_client"])
    if (auto e = get_uint(c, n["max_per_client"], t.max_per_client, 1, 1000000, "tcp.max_per_client")) return e;
  if (n["max_pipelined_bytes"])
    if (auto e = get_uint(c, n["max_pipelined_bytes"], t.max_pipelined_bytes, 65536, 1 << 26, "tcp.max_pipelined_bytes"))
      return e;
  return std::nullopt;
}

std::optional<Error> parse_zones(const Ctx& c, const YAML::Node& n, Config& cfg) {
  if (!n.IsSequence()) return err(c, n, "zones must be a list of { name, file }");
  std::set<std::string> seen;
  for (const auto& z : n) {
    if (auto e = check_keys(c, z, {"name", "file"}, "a zone")) return e;
    if (!z["name"] || !z["file"]) return err(c, z, "a zone needs both name and file");
    zones::ZoneSource src;
    src.origin = z["name"].as<std::string>();
    dns::NameBuf nb;
    if (!dns::from_text(src.origin, nb)) return err(c, z["name"], "bad zone name '" + src.origin + "'");
    std::string key = dns::to_text(nb.wire());
    if (!seen.insert(key).second) return err(c, z["name"], "zone " + key + " is listed twice");
    src.file = resolve_path(c, z["file"].as<std::string>());
    cfg.zones.push_back(std::move(src));
  }
  return std::nullopt;
}

std::optional<Error> parse_root(const Ctx& c, const YAML::Node& root, Config& cfg) {
  // Steering (records, regions, checks) arrives with its own issues; until
  // then those keys are refused loudly rather than accepted and ignored.
  if (auto e = check_keys(c, root,
                          {"listen", "threads", "state_dir", "admin", "http", "vantage", "zones", "edns_udp_size",
                           "tcp"},
                          "the top level"))
    return e;
  if (const auto& l = root["listen"]) {
    if (!l.IsSequence() || l.size() == 0) return err(c, l, "listen must be a non-empty list like [\"127.0.0.1:5353\"]");
    for (const auto& a : l) {
      ListenAddr la;
      if (!a.IsScalar() || !parse_listen(a.Scalar(), la))
        return err(c, a, "bad listen address '" + (a.IsScalar() ? a.Scalar() : std::string("?")) +
                             "' (want IP:PORT or [IPv6]:PORT)");
      cfg.listen.push_back(la);
    }
  } else {
    ListenAddr la;
    parse_listen("127.0.0.1:5353", la);
    cfg.listen.push_back(la);
  }
  if (root["threads"])
    if (auto e = get_uint(c, root["threads"], cfg.threads, 1, 256, "threads")) return e;
  if (root["edns_udp_size"])
    if (auto e = get_uint(c, root["edns_udp_size"], cfg.edns_udp_size, 512, 4096, "edns_udp_size")) return e;
  // Relative to the config file's directory, like every other path in it.
  cfg.state_dir = resolve_path(c, root["state_dir"] ? root["state_dir"].as<std::string>() : "state");
  if (const auto& a = root["admin"]) {
    if (auto e = check_keys(c, a, {"socket"}, "admin")) return e;
    if (a["socket"]) cfg.admin_socket = resolve_path(c, a["socket"].as<std::string>());
  }
  if (const auto& h = root["http"]) {
    if (auto e = check_keys(c, h, {"listen", "token_file"}, "http")) return e;
    if (h["listen"]) cfg.http_listen = h["listen"].as<std::string>();
    if (h["token_file"]) cfg.http_token_file = resolve_path(c, h["token_file"].as<std::string>());
  }
  if (root["vantage"]) cfg.vantage = root["vantage"].as<std::string>();
  if (root["tcp"])
    if (auto e = parse_tcp(c, root["tcp"], cfg.tcp)) return e;
  if (root["zones"])
    if (auto e = parse_zones(c, root["zones"], cfg)) return e;
  if (cfg.zones.empty()) return Error{c.path, 0, "no zones configured (add zones: [{ name: ..., file: ... }])"};
  if (cfg.admin_socket.empty()) cfg.admin_socket = cfg.state_dir + "/admin.sock";
  if (cfg.threads == 0) cfg.threads = std::max(1u, std::thread::hardware_concurrency());
  return std::nullopt;
}

}  // namespace

bool parse_duration_ms(const std::string& text, uint64_t& ms) {
  if (text.empty()) return false;
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) {
    v = v * 10 + static_cast<uint64_t>(text[i++] - '0');
    if (v > (1ULL << 40)) return false;
  }
  if (i == 0) return false;
  std::string unit = text.substr(i);
  if (unit.empty() || unit == "s") ms = v * 1000;
  else if (unit == "ms") ms = v;
  else if (unit == "m") ms = v * 60000;
  else if (unit == "h") ms = v * 3600000;
  else return false;
  return true;
}

bool parse_listen(const std::string& text, ListenAddr& out) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long p = std::stoul(port);
  if (p > 65535) return false;
  out = ListenAddr{};
  out.text = text;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    out.len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(p));
    out.len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

Result<Config> parse_config(const std::string& text, const std::string& path, const std::string& base_dir) {
  Config cfg;
  cfg.path = path;
  Ctx c{path, base_dir};
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Error{path, e.mark.line + 1, e.msg};
  }
  try {
    if (!root.IsMap()) return Error{path, 1, "the config must be a YAML mapping (listen:, zones:, ...)"};
    if (auto e = parse_root(c, root, cfg)) return *e;
  } catch (const YAML::Exception& e) {
    return Error{path, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg};
  }
  return cfg;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{path, 0, std::string("cannot read config: ") + strerror(errno)};
  std::stringstream ss;
  ss << in.rdbuf();
  auto dir = std::filesystem::path(path).parent_path().string();
  return parse_config(ss.str(), path, dir);
}

}  // namespace vane
