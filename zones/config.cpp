// vane.yaml parsing with yaml-cpp. Unknown keys are errors (a typo must not
// silently change behaviour); each message carries file:line.
#include "config.h"
#include "yaml_tree.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace vane {

namespace {

struct Ctx {
  const std::string& path;
  const std::string& base_dir;
  const std::vector<CheckSpec>* checks = nullptr;  // parsed before records:
};

const std::vector<CheckSpec>& cfg_checks(const Ctx& c) {
  static const std::vector<CheckSpec> none;
  return c.checks ? *c.checks : none;
}

Error err(const Ctx& c, const yaml::Node& n, std::string msg) {
  return Error{c.path, n.Mark().is_null() ? 0 : n.Mark().line + 1, std::move(msg)};
}

// Runs once per zone of a 100 000-zone config: no allocation unless it fails.
std::optional<Error> check_keys(const Ctx& c, const yaml::Node& map, std::initializer_list<std::string_view> known,
                                std::string_view where) {
  if (!map.IsMap()) return err(c, map, std::string(where) + " must be a mapping");
  for (const auto& kv : map) {
    std::string key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (std::string_view k : std::set<std::string_view>(known)) (list += list.empty() ? "" : ", ") += k;
      return err(c, kv.first, "unknown key '" + key + "' in " + std::string(where) + " (known: " + list + ")");
    }
  }
  return std::nullopt;
}

template <class T>
std::optional<Error> get_uint(const Ctx& c, const yaml::Node& n, T& out, uint64_t lo, uint64_t hi, const char* what) {
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

std::optional<Error> get_duration(const Ctx& c, const yaml::Node& n, uint32_t& out_ms, const char* what) {
  uint64_t ms;
  if (!n.IsScalar() || !parse_duration_ms(n.Scalar(), ms) || ms > UINT32_MAX)
    return err(c, n, std::string(what) + " must be a duration like 500ms, 10s or 15m");
  out_ms = static_cast<uint32_t>(ms);
  return std::nullopt;
}

std::string resolve_path(const Ctx& c, const std::string& p) {
  if (c.base_dir.empty() || p.starts_with('/')) return p;  // absolute, or nothing to resolve against
  return c.base_dir + (c.base_dir.ends_with('/') ? "" : "/") + p;
}

std::optional<Error> parse_tcp(const Ctx& c, const yaml::Node& n, TcpOptions& t) {
  if (auto e = check_keys(c, n, {"idle_timeout", "max_connections", "max_per_client", "max_pipelined_bytes"}, "tcp"))
    return e;
  if (n["idle_timeout"])
    if (auto e = get_duration(c, n["idle_timeout"], t.idle_timeout_ms, "tcp.idle_timeout")) return e;
  if (n["max_connections"])
    if (auto e = get_uint(c, n["max_connections"], t.max_connections, 1, 1000000, "tcp.max_connections")) return e;
  if (n["max_per_client"])
    if (auto e = get_uint(c, n["max_per_client"], t.max_per_client, 1, 1000000, "tcp.max_per_client")) return e;
  if (n["max_pipelined_bytes"])
    if (auto e =
            get_uint(c, n["max_pipelined_bytes"], t.max_pipelined_bytes, 65536, 1 << 26, "tcp.max_pipelined_bytes"))
      return e;
  return std::nullopt;
}

std::optional<Error> parse_udp(const Ctx& c, const yaml::Node& n, UdpOptions& u) {
  if (auto e = check_keys(c, n, {"coalesce", "receive"}, "udp")) return e;
  if (const auto& v = n["receive"]) {
    std::string r = v.IsScalar() ? v.Scalar() : "";
    if (r == "auto") u.receive = UdpOptions::Receive::kAuto;
    else if (r == "io_uring") u.receive = UdpOptions::Receive::kIoUring;
    else if (r == "recvmmsg") u.receive = UdpOptions::Receive::kRecvmmsg;
    else return err(c, v, "udp.receive must be auto, io_uring or recvmmsg");
  }
  if (const auto& v = n["coalesce"]) {
    uint64_t us;
    if (!v.IsScalar() || !parse_duration_us(v.Scalar(), us) || us > 1000)
      return err(c, v, "udp.coalesce must be a duration from 0 to 1ms, like 100us (0: off)");
    u.coalesce_us = static_cast<uint32_t>(us);
  }
  return std::nullopt;
}

std::string scalar(const yaml::Node& n);
bool parse_bool(const yaml::Node& n, bool& out);
std::optional<Error> parse_cidr(const Ctx& c, const yaml::Node& n, uint8_t& family, uint8_t& prefix, uint8_t addr[16]);

// tsig: { NAME: { algorithm, secret_file } }: the secret (base64, the first
// line of the file) is read here, at start and on every reload.
std::optional<Error> parse_tsig(const Ctx& c, const yaml::Node& n, zones::TsigKeys& keys) {
  if (!n.IsMap()) return err(c, n, "tsig must be a map of key names to { algorithm, secret_file }");
  for (const auto& kv : n) {
    zones::TsigKey k;
    k.name = kv.first.as<std::string>();
    std::transform(k.name.begin(), k.name.end(), k.name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (!k.name.empty() && k.name.back() == '.') k.name.pop_back();
    dns::NameBuf nb;
    if (k.name.empty() || !dns::from_text(k.name, nb)) return err(c, kv.first, "bad tsig key name '" + k.name + "'");
    const yaml::Node& v = kv.second;
    if (auto e = check_keys(c, v, {"algorithm", "secret_file"}, "tsig." + k.name)) return e;
    k.algorithm = v["algorithm"] ? scalar(v["algorithm"]) : "hmac-sha256";
    if (!zones::tsig_algorithm_known(k.algorithm))
      return err(c, v["algorithm"], "tsig." + k.name + ".algorithm must be hmac-sha256, hmac-sha384 or hmac-sha512, not '" +
                                        k.algorithm + "'");
    if (!v["secret_file"]) return err(c, v, "tsig." + k.name + " needs secret_file (a file holding the base64 secret)");
    auto secret = read_token_file(resolve_path(c, scalar(v["secret_file"])));
    if (!secret) return err(c, v["secret_file"], "tsig." + k.name + ": " + secret.error().to_string());
    if (!zones::tsig_secret_valid(*secret))
      return err(c, v["secret_file"], "tsig." + k.name + ": the secret file must hold base64 of at least 16 bytes");
    k.secret = *secret;
    k.line = c.path.empty() ? 0 : kv.first.Mark().line + 1;
    keys[k.name] = std::move(k);
  }
  return std::nullopt;
}

// transfer: { allow: [{ cidr, key }], notify: ["IP:PORT"], unsigned }
std::optional<Error> parse_transfer(const Ctx& c, const yaml::Node& n, const zones::TsigKeys& keys,
                                    zones::TransferSpec& t) {
  if (auto e = check_keys(c, n, {"allow", "notify", "unsigned"}, "transfer")) return e;
  t.line = n.Mark().line + 1;
  if (const auto& a = n["allow"]) {
    if (!a.IsSequence()) return err(c, a, "transfer.allow must be a list of { cidr, key }");
    for (const auto& e : a) {
      if (auto x = check_keys(c, e, {"cidr", "key"}, "a transfer.allow entry")) return x;
      if (!e["cidr"] && !e["key"]) return err(c, e, "a transfer.allow entry needs a cidr, a key, or both");
      zones::TransferAllow al;
      if (e["cidr"])
        if (auto x = parse_cidr(c, e["cidr"], al.family, al.prefix, al.addr)) return x;
      if (e["key"]) {
        al.key = scalar(e["key"]);
        if (!keys.count(al.key)) return err(c, e["key"], "transfer.allow names key '" + al.key + "', which tsig: does not define");
      }
      t.allow.push_back(al);
    }
  }
  if (const auto& no = n["notify"]) {
    if (!no.IsSequence()) return err(c, no, "transfer.notify must be a list like [\"192.0.2.53:53\"]");
    for (const auto& a : no) {
      ListenAddr la;
      if (!a.IsScalar() || !parse_listen(a.Scalar(), la))
        return err(c, a, "bad transfer.notify address '" + scalar(a) + "' (want IP:PORT or [IPv6]:PORT)");
      t.notify.push_back(a.Scalar());
    }
  }
  if (n["unsigned"] && !parse_bool(n["unsigned"], t.unsigned_ok)) return err(c, n["unsigned"], "transfer.unsigned must be true or false");
  return std::nullopt;
}

// primary: { servers: ["IP:PORT"], key, max_zone_size, max_transfer_time }
std::optional<Error> parse_primary(const Ctx& c, const yaml::Node& n, const zones::TsigKeys& keys,
                                   zones::SecondarySpec& s) {
  if (auto e = check_keys(c, n, {"servers", "key", "max_zone_size", "max_transfer_time"}, "primary")) return e;
  s.line = n.Mark().line + 1;
  const auto& sv = n["servers"];
  if (!sv || !sv.IsSequence() || sv.size() == 0)
    return err(c, sv ? sv : n, "primary.servers must be a non-empty list like [\"192.0.2.5:53\"]");
  for (const auto& a : sv) {
    ListenAddr la;
    if (!a.IsScalar() || !parse_listen(a.Scalar(), la))
      return err(c, a, "bad primary server '" + scalar(a) + "' (want IP:PORT or [IPv6]:PORT)");
    s.servers.push_back(a.Scalar());
  }
  if (n["key"]) {
    s.key = scalar(n["key"]);
    if (!keys.count(s.key)) return err(c, n["key"], "primary.key names '" + s.key + "', which tsig: does not define");
  }
  if (n["max_zone_size"])
    if (auto e = get_uint(c, n["max_zone_size"], s.max_records, 1, 100000000, "primary.max_zone_size (records)"))
      return e;
  if (const auto& t = n["max_transfer_time"]) {
    if (auto e = get_duration(c, t, s.max_transfer_ms, "primary.max_transfer_time")) return e;
    if (s.max_transfer_ms < 1000 || s.max_transfer_ms > 86400000)
      return err(c, t, "primary.max_transfer_time must be between 1s and 24h");
  }
  return std::nullopt;
}

std::optional<Error> parse_zones(const Ctx& c, const yaml::Node& n, Config& cfg) {
  if (!n.IsSequence()) return err(c, n, "zones must be a list of { name, file }");
  std::set<std::string> seen;
  for (const auto& z : n) {
    if (auto e = check_keys(c, z, {"name", "file", "dnssec", "transfer", "primary"}, "a zone")) return e;
    if (!z["name"] || (!z["file"] && !z["primary"]))
      return err(c, z, "a zone needs a name and either file (vane is its primary) or primary (vane is a secondary)");
    if (z["file"] && z["primary"])
      return err(c, z["primary"], "a zone has either file (vane is its primary) or primary (vane is a secondary), not both");
    zones::ZoneSource src;
    src.origin = z["name"].as<std::string>();
    dns::NameBuf nb;
    if (!dns::from_text(src.origin, nb)) return err(c, z["name"], "bad zone name '" + src.origin + "'");
    std::string key = dns::to_text(nb.wire());
    if (!seen.insert(key).second) return err(c, z["name"], "zone " + key + " is listed twice");
    if (z["file"]) {
      src.file = resolve_path(c, z["file"].as<std::string>());
    } else {
      if (auto e = parse_primary(c, z["primary"], cfg.tsig, src.secondary)) return e;
      // The copy from the last transfer: served at start, before the primary answers.
      src.file = cfg.state_dir + "/secondary/" + (key.size() > 1 ? key.substr(0, key.size() - 1) : "root") + ".zone";
    }
    if (const yaml::Node& d = z["dnssec"]) {
      if (!d.IsMap()) return err(c, d, "dnssec must be a map: { signing: online, algorithm, key_dir }");
      if (auto e = check_keys(c, d, {"signing", "algorithm", "key_dir", "cds"}, "dnssec")) return e;
      std::string signing = d["signing"] ? scalar(d["signing"]) : "online";
      if (signing != "online" && signing != "off")
        return err(c, d["signing"], "dnssec.signing must be online or off, not '" + signing + "'");
      src.dnssec.online = signing == "online";
      if (d["algorithm"] && !zones::algorithm_from_name(scalar(d["algorithm"]), src.dnssec.algorithm))
        return err(c, d["algorithm"],
                   "dnssec.algorithm must be ecdsap256sha256 or ed25519, not '" + scalar(d["algorithm"]) + "'");
      std::string zone_dir = key.size() > 1 ? key.substr(0, key.size() - 1) : "root";
      src.dnssec.key_dir = d["key_dir"] ? resolve_path(c, scalar(d["key_dir"])) : cfg.state_dir + "/keys/" + zone_dir;
      if (d["cds"] && !parse_bool(d["cds"], src.dnssec.cds))
        return err(c, d["cds"], "dnssec.cds must be true or false");
    }
    if (const yaml::Node& t = z["transfer"]) {
      if (auto e = parse_transfer(c, t, cfg.tsig, src.transfer)) return e;
      // Online signatures are made per answer and never stored: a secondary
      // could only serve the zone unsigned, which a validating resolver
      // that holds the DS treats as bogus. Only on the operator's word.
      if (src.dnssec.online && src.transfer.enabled() && !src.transfer.unsigned_ok)
        return err(c, t, "zone " + key + " is signed online and its signatures cannot be transferred: "
                         "secondaries would serve it unsigned. Set transfer: { unsigned: true } to transfer it so, "
                         "or leave transfer out");
    }
    cfg.zones.push_back(std::move(src));
  }
  return std::nullopt;
}

bool parse_bool(const yaml::Node& n, bool& out) {
  if (!n.IsScalar()) return false;
  if (n.Scalar() == "true")
    out = true;
  else if (n.Scalar() == "false")
    out = false;
  else
    return false;
  return true;
}

std::string scalar(const yaml::Node& n) {
  return n.IsScalar() ? n.Scalar() : std::string();
}

// "10.1.0.0/16" or "2001:db8::/32", no host bits past the prefix.
std::optional<Error> parse_cidr(const Ctx& c, const yaml::Node& n, uint8_t& family, uint8_t& prefix, uint8_t addr[16]) {
  std::string cidr = scalar(n);
  size_t slash = cidr.find('/');
  std::string host = cidr.substr(0, slash);
  unsigned long bits = 0;
  bool ok = slash != std::string::npos && slash + 1 < cidr.size() &&
            cidr.find_first_not_of("0123456789", slash + 1) == std::string::npos;
  if (ok) bits = std::stoul(cidr.substr(slash + 1, 3));
  std::memset(addr, 0, 16);
  if (ok && inet_pton(AF_INET, host.c_str(), addr) == 1 && bits <= 32)
    family = 4;
  else if (ok && inet_pton(AF_INET6, host.c_str(), addr) == 1 && bits <= 128)
    family = 6;
  else
    return err(c, n, "bad cidr '" + cidr + "' (want e.g. 10.1.0.0/16 or 2001:db8::/32)");
  prefix = static_cast<uint8_t>(bits);
  for (size_t b = bits; b < 128; ++b)
    if (addr[b / 8] & (0x80 >> (b % 8)))
      return err(c, n, "cidr '" + cidr + "' has host bits set past /" + std::to_string(bits));
  return std::nullopt;
}

// rrl: (DESIGN.md "Response rate limiting").
std::optional<Error> parse_rrl(const Ctx& c, const yaml::Node& n, zones::RrlParams& r) {
  if (auto e = check_keys(c, n, {"responses_per_second", "slip", "ipv4_prefix", "ipv6_prefix", "exempt"}, "rrl"))
    return e;
  if (!n["responses_per_second"]) return err(c, n, "rrl needs responses_per_second (e.g. 20)");
  if (auto e = get_uint(c, n["responses_per_second"], r.rate, 1, 1000000, "rrl.responses_per_second")) return e;
  if (n["slip"])
    if (auto e = get_uint(c, n["slip"], r.slip, 0, 10, "rrl.slip")) return e;
  if (n["ipv4_prefix"])
    if (auto e = get_uint(c, n["ipv4_prefix"], r.v4_prefix, 8, 32, "rrl.ipv4_prefix")) return e;
  if (n["ipv6_prefix"])
    if (auto e = get_uint(c, n["ipv6_prefix"], r.v6_prefix, 16, 128, "rrl.ipv6_prefix")) return e;
  if (const auto& ex = n["exempt"]) {
    if (!ex.IsSequence()) return err(c, ex, "rrl.exempt must be a list of networks like [10.0.0.0/8]");
    for (const auto& x : ex) {
      zones::Client net;
      if (auto e = parse_cidr(c, x, net.family, net.prefix, net.addr)) return e;
      r.exempt.push_back(net);
    }
  }
  return std::nullopt;
}

// "EU", "EU/DE", "EU/DE/BY": a MaxMind continent code, an ISO 3166-1
// country, an ISO 3166-2 subdivision code (without the country part).
bool valid_geo(const std::string& g) {
  static const std::set<std::string> kContinents = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t slash; (slash = g.find('/', start)) != std::string::npos; start = slash + 1)
    parts.push_back(g.substr(start, slash - start));
  parts.push_back(g.substr(start));
  if (parts.size() > 3 || !kContinents.count(parts[0])) return false;
  if (parts.size() >= 2 && (parts[1].size() != 2 || !isupper(uint8_t(parts[1][0])) || !isupper(uint8_t(parts[1][1]))))
    return false;
  if (parts.size() == 3 && (parts[2].empty() || parts[2].size() > 3 ||
                            !std::all_of(parts[2].begin(), parts[2].end(), [](char ch) { return isalnum(uint8_t(ch)); })))
    return false;
  return true;
}

std::optional<Error> parse_regions(const Ctx& c, const yaml::Node& n, Config& cfg) {
  if (!n.IsSequence()) return err(c, n, "regions must be a list of { cidr | geo, order }");
  for (const auto& r : n) {
    if (auto e = check_keys(c, r, {"cidr", "geo", "order", "vantage"}, "a region rule")) return e;
    if ((!r["cidr"] && !r["geo"]) || !r["order"]) return err(c, r, "a region rule needs cidr (or geo) and order");
    if (r["cidr"] && r["geo"]) return err(c, r["geo"], "a region rule matches a cidr or a geo, not both");
    RegionSpec spec;
    spec.line = r.Mark().line + 1;
    if (r["geo"]) {
      spec.geo = scalar(r["geo"]);
      if (spec.geo != "default" && !valid_geo(spec.geo))
        return err(c, r["geo"],
                   "geo must be CONTINENT[/COUNTRY[/SUBDIVISION]] (e.g. EU, EU/DE, NA/US/CA; continents AF AN AS EU NA "
                   "OC SA) or default, not '" + spec.geo + "'");
      if (r["vantage"]) return err(c, r["vantage"], "vantage: is for cidr rules (latency_source: measured)");
      for (const auto& prev : cfg.regions)
        if (prev.geo == spec.geo)
          return err(c, r["geo"], "geo " + spec.geo + " is listed twice (first at line " + std::to_string(prev.line) + ")");
    } else {
      spec.cidr = scalar(r["cidr"]);
      if (auto e = parse_cidr(c, r["cidr"], spec.family, spec.prefix, spec.addr)) return e;
    }
    if (!r["order"].IsSequence() || r["order"].size() == 0)
      return err(c, r["order"], "order must be a non-empty list of region names");
    for (const auto& o : r["order"]) {
      if (scalar(o).empty()) return err(c, o, "a region name must be a non-empty string");
      spec.order.push_back(o.Scalar());
    }
    if (r["vantage"]) spec.vantage = scalar(r["vantage"]);
    if (spec.geo.empty())
      for (const auto& prev : cfg.regions)
        if (prev.geo.empty() && prev.family == spec.family && prev.prefix == spec.prefix &&
            std::memcmp(prev.addr, spec.addr, sizeof spec.addr) == 0)
          return err(c, r["cidr"],
                     "cidr " + spec.cidr + " is listed twice (first at line " + std::to_string(prev.line) + ")");
    cfg.regions.push_back(std::move(spec));
  }
  return std::nullopt;
}

// region_coords: { NAME: [lat, lon] } or { NAME: { coords: [lat, lon], bias: KM } }
std::optional<Error> parse_region_coords(const Ctx& c, const yaml::Node& n, Config& cfg) {
  if (!n.IsMap()) return err(c, n, "region_coords must be a map of region -> [lat, lon]");
  for (const auto& kv : n) {
    Config::RegionCoord rc;
    rc.region = scalar(kv.first);
    rc.line = kv.first.Mark().line + 1;
    yaml::Node v = kv.second, coords = v;
    if (v.IsMap()) {
      if (auto e = check_keys(c, v, {"coords", "bias"}, "a region's coordinates")) return e;
      coords = v["coords"];
      if (v["bias"]) {
        try {
          rc.bias_km = v["bias"].as<double>();
        } catch (const YAML::Exception&) {
          return err(c, v["bias"], "bias must be a number of km (positive: the region draws clients from further)");
        }
        if (std::abs(rc.bias_km) > 20000) return err(c, v["bias"], "bias must be within ±20000 km");
      }
    }
    bool ok = coords && coords.IsSequence() && coords.size() == 2;
    if (ok) {
      try {
        rc.lat = coords[0].as<double>();
        rc.lon = coords[1].as<double>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    if (!ok || std::abs(rc.lat) > 90 || std::abs(rc.lon) > 180)
      return err(c, v, "region " + rc.region + ": coordinates must be [latitude, longitude] in degrees");
    cfg.region_coords.push_back(rc);
  }
  return std::nullopt;
}

std::optional<Error> parse_endpoint(const Ctx& c, const yaml::Node& n, const RecordSpec& rec, EndpointSpec& ep) {
  if (auto e = check_keys(c, n, {"name", "address", "cname", "weight", "priority", "region", "check", "host", "port"},
                          "an endpoint"))
    return e;
  ep.line = n.Mark().line + 1;
  ep.name = scalar(n["name"]);
  if (ep.name.empty() || ep.name.find_first_of(" /\t") != std::string::npos)
    return err(c, n, "an endpoint needs a name (no spaces or '/')");
  if (rec.type == dns::kTypeCNAME) {
    if (n["address"]) return err(c, n["address"], "a CNAME record's endpoints have cname:, not address:");
    std::string t = scalar(n["cname"]);
    if (!t.empty() && t.back() != '.') t += '.';
    dns::NameBuf nb;
    if (t.empty() || !dns::from_text(t, nb)) return err(c, n, "endpoint " + ep.name + " needs a valid cname: target");
    ep.address = dns::to_text(nb.wire());
  } else {
    if (n["cname"]) return err(c, n["cname"], "cname: is only for CNAME records");
    ep.address = scalar(n["address"]);
    uint8_t buf[16];
    int fam = rec.type == dns::kTypeA ? AF_INET : AF_INET6;
    if (inet_pton(fam, ep.address.c_str(), buf) != 1)
      return err(c, n["address"] ? n["address"] : n,
                 "endpoint " + ep.name + " needs an " + (fam == AF_INET ? "IPv4" : "IPv6") + " address: for an " +
                     (fam == AF_INET ? "A" : "AAAA") + " record");
  }
  if (n["weight"])
    if (auto e = get_uint(c, n["weight"], ep.weight, 0, 255, "weight")) return e;
  if (n["priority"])
    if (auto e = get_uint(c, n["priority"], ep.priority, 0, 1u << 30, "priority")) return e;
  if (n["region"]) {
    ep.region = scalar(n["region"]);
    if (ep.region.empty()) return err(c, n["region"], "region must be a name");
  }
  if (n["check"]) {
    ep.check = scalar(n["check"]);
    bool known = false;
    for (const auto& ch : cfg_checks(c)) known |= ch.name == ep.check;
    if (!known) return err(c, n["check"], "endpoint " + ep.name + ": no check named '" + ep.check + "' in checks:");
  }
  if (n["host"]) {
    ep.host = scalar(n["host"]);
    uint8_t buf[16];
    if (inet_pton(AF_INET, ep.host.c_str(), buf) != 1 && inet_pton(AF_INET6, ep.host.c_str(), buf) != 1)
      return err(c, n["host"], "endpoint " + ep.name + ": host must be an IP address (where its check connects)");
  }
  if (n["port"])
    if (auto e = get_uint(c, n["port"], ep.port, 1, 65535, "port")) return e;
  if (!ep.check.empty()) {
    const CheckSpec* ch = nullptr;
    for (const auto& x : cfg_checks(c))
      if (x.name == ep.check) ch = &x;
    if (rec.type == dns::kTypeCNAME && ep.host.empty())
      return err(c, n, "endpoint " + ep.name + " has a check but no address to probe: add host: <IP>");
    if (ch->type == "tcp" && !ch->port && !ep.port)
      return err(c, n, "endpoint " + ep.name + ": its tcp check needs a port: (on the check or the endpoint)");
  }
  return std::nullopt;
}

std::optional<Error> parse_records(const Ctx& c, const yaml::Node& n, Config& cfg) {
  if (!n.IsSequence()) return err(c, n, "records must be a list");
  // Indexes, so that 100 000 records among 20 000 zones load in linear time:
  // zones by origin (lowercased wire), records by name.
  std::unordered_map<std::string, size_t> zone_of;
  for (size_t z = 0; z < cfg.zones.size(); ++z) {
    dns::NameBuf origin;
    std::string o = cfg.zones[z].origin;
    if (!o.empty() && o.back() != '.') o += '.';
    if (dns::from_text(o, origin)) zone_of.emplace(std::string(origin.wire().begin(), origin.wire().end()), z);
  }
  std::unordered_map<std::string, std::vector<size_t>> by_name;
  for (size_t i = 0; i < cfg.records.size(); ++i) by_name[cfg.records[i].name].push_back(i);
  cfg.records.reserve(cfg.records.size() + n.size());  // kept for the config's life: no room to spare
  for (const auto& r : n) {
    if (auto e = check_keys(
            c, r,
            {"name", "type", "ttl", "policy", "fail_closed", "sticky", "max_answers", "pick", "endpoints", "latency_source",
             "failback", "ttl_unsteady"},
            "a record"))
      return e;
    RecordSpec rec;
    rec.line = r.Mark().line + 1;
    std::string name = scalar(r["name"]);
    if (!name.empty() && name.back() != '.') name += '.';
    dns::NameBuf nb;
    if (name.empty() || !dns::from_text(name, nb))
      return err(c, r["name"] ? r["name"] : r, "a record needs a valid name");
    rec.name = dns::to_text(nb.wire());
    std::string type = scalar(r["type"]);
    if (type == "A")
      rec.type = dns::kTypeA;
    else if (type == "AAAA")
      rec.type = dns::kTypeAAAA;
    else if (type == "CNAME")
      rec.type = dns::kTypeCNAME;
    else
      return err(c, r["type"] ? r["type"] : r, "record " + rec.name + ": type must be A, AAAA or CNAME");
    if (r["ttl"])
      if (auto e = get_uint(c, r["ttl"], rec.ttl, 0, 2147483647, "ttl")) return e;
    std::string policy = r["policy"] ? scalar(r["policy"]) : "weighted";
    if (policy == "weighted")
      rec.policy = zones::Policy::kWeighted;
    else if (policy == "failover")
      rec.policy = zones::Policy::kFailover;
    else if (policy == "latency")
      rec.policy = zones::Policy::kLatency;
    else if (policy == "multivalue")
      rec.policy = zones::Policy::kMultivalue;
    else if (policy == "geo")
      rec.policy = zones::Policy::kGeo;
    else if (policy == "proximity")
      rec.policy = zones::Policy::kProximity;
    else
      return err(c, r["policy"], "policy must be weighted, failover, latency, geo, proximity or multivalue");
    if (r["fail_closed"] && !parse_bool(r["fail_closed"], rec.fail_closed))
      return err(c, r["fail_closed"], "fail_closed must be true or false");
    if (r["sticky"] && !parse_bool(r["sticky"], rec.sticky)) return err(c, r["sticky"], "sticky must be true or false");
    if (r["latency_source"]) {
      std::string src = scalar(r["latency_source"]);
      if (src != "regions" && src != "measured")
        return err(c, r["latency_source"], "latency_source must be regions or measured");
      if (rec.policy != zones::Policy::kLatency)
        return err(c, r["latency_source"], "latency_source is for latency records");
      rec.measured = src == "measured";
    }
    if (r["pick"]) {
      std::string pick = scalar(r["pick"]);
      if (pick != "one" && pick != "all") return err(c, r["pick"], "pick must be one (a weighted pick) or all");
      if (rec.policy != zones::Policy::kLatency && rec.policy != zones::Policy::kGeo &&
          rec.policy != zones::Policy::kProximity)
        return err(c, r["pick"], "pick is for latency, geo and proximity records");
      rec.pick_all = pick == "all";
    }
    if (r["max_answers"]) {
      if (rec.policy != zones::Policy::kMultivalue && !rec.pick_all)
        return err(c, r["max_answers"], "max_answers is for multivalue and pick: all");
      if (auto e = get_uint(c, r["max_answers"], rec.max_answers, 1, 64, "max_answers")) return e;
    }
    if (r["failback"]) {
      if (rec.policy != zones::Policy::kFailover) return err(c, r["failback"], "failback is for failover records");
      std::string fb = scalar(r["failback"]);
      uint64_t ms = 0;
      if (fb == "auto")
        rec.failback = zones::kFailbackAuto;
      else if (fb == "manual")
        rec.failback = zones::kFailbackManual;
      else if (parse_duration_ms(fb, ms) && ms > 0 && ms <= 7ULL * 86400 * 1000)
        rec.failback = static_cast<int64_t>(ms);
      else
        return err(c, r["failback"], "failback must be auto, manual or a duration like 10m (at most 7 days)");
    }
    if (r["ttl_unsteady"]) {
      if (auto e = get_uint(c, r["ttl_unsteady"], rec.ttl_unsteady, 1, 2147483647, "ttl_unsteady")) return e;
      if (rec.ttl_unsteady >= rec.ttl)
        return err(c, r["ttl_unsteady"], "ttl_unsteady must be below the record's ttl (" + std::to_string(rec.ttl) + ")");
    }
    if (rec.type == dns::kTypeCNAME && rec.policy == zones::Policy::kMultivalue)
      return err(c, r["policy"], "a CNAME cannot be multivalue (one CNAME per name)");
    const auto& eps = r["endpoints"];
    if (!eps || !eps.IsSequence() || eps.size() == 0 || eps.size() > zones::kMaxEndpoints)
      return err(c, eps ? eps : r,
                 "record " + rec.name + " needs endpoints: a list of 1 to " + std::to_string(zones::kMaxEndpoints));
    std::set<std::string> names;
    rec.endpoints.reserve(eps.size());
    for (const auto& e : eps) {
      EndpointSpec ep;
      if (auto x = parse_endpoint(c, e, rec, ep)) return x;
      if (!names.insert(ep.name).second) return err(c, e, "endpoint " + ep.name + " is listed twice in " + rec.name);
      if ((rec.policy == zones::Policy::kLatency || rec.policy == zones::Policy::kGeo ||
           rec.policy == zones::Policy::kProximity) &&
          ep.region.empty())
        return err(c, e,
                   "endpoint " + ep.name + " of " + zones::policy_name(rec.policy) + " record " + rec.name +
                       " needs a region");
      rec.endpoints.push_back(std::move(ep));
    }
    // The most specific served zone holds it: the longest suffix that is an origin.
    size_t best = SIZE_MAX;
    for (size_t i = 0; i <= nb.labels && best == SIZE_MAX; ++i) {
      auto sfx = nb.suffix(i);
      if (auto z = zone_of.find(std::string(sfx.begin(), sfx.end())); z != zone_of.end()) best = z->second;
    }
    if (best == SIZE_MAX) return err(c, r["name"], "record " + rec.name + " is outside every zone in zones:");
    rec.zone = best;
    auto& same_name = by_name[rec.name];
    for (size_t at : same_name) {
      const auto& prev = cfg.records[at];
      if (prev.type == rec.type)
        return err(
            c, r,
            "record " + rec.name + " " + type + " is defined twice (first at line " + std::to_string(prev.line) + ")");
      if (prev.type == dns::kTypeCNAME || rec.type == dns::kTypeCNAME)
        return err(c, r,
                   "record " + rec.name + ": a CNAME cannot share its name with other types (line " +
                       std::to_string(prev.line) + ")");
    }
    same_name.push_back(cfg.records.size());
    cfg.records.push_back(std::move(rec));
  }
  return std::nullopt;
}

std::optional<Error> parse_checks(const Ctx& c, const yaml::Node& n, Config& cfg) {
  if (!n.IsMap()) return err(c, n, "checks must be a mapping of name -> { type, ... }");
  for (const auto& kv : n) {
    CheckSpec ch;
    ch.name = kv.first.as<std::string>();
    const yaml::Node& v = kv.second;
    ch.line = v.Mark().line + 1;
    if (auto e = check_keys(
            c, v,
            {"type", "port", "path", "host", "expect_status", "body_contains", "tls_verify", "qname", "qtype",
             "expect_rcode", "interval", "timeout", "jitter", "fall", "rise", "quorum", "min_vantages", "damping"},
            "check " + ch.name))
      return e;
    if (v["type"]) ch.type = scalar(v["type"]);
    if (ch.type != "tcp" && ch.type != "http" && ch.type != "https" && ch.type != "dns")
      return err(c, v["type"], "check " + ch.name + ": type must be tcp, http, https or dns");
    if (v["port"])
      if (auto e = get_uint(c, v["port"], ch.port, 1, 65535, "port")) return e;
    if (v["path"]) {
      ch.path = scalar(v["path"]);
      if (ch.path.empty() || ch.path[0] != '/' || ch.path.find_first_of(" \r\n") != std::string::npos)
        return err(c, v["path"], "path must start with / and have no spaces");
    }
    if (v["host"]) ch.host = scalar(v["host"]);
    if (v["expect_status"]) {
      ch.expect_status.clear();
      const yaml::Node& es = v["expect_status"];
      if (es.IsScalar()) {
        uint16_t code;
        if (auto e = get_uint(c, es, code, 100, 599, "expect_status")) return e;
        ch.expect_status.push_back(code);
      } else {
        if (!es.IsSequence() || es.size() == 0) return err(c, es, "expect_status must be a status or a list of them");
        for (const auto& x : es) {
          uint16_t code;
          if (auto e = get_uint(c, x, code, 100, 599, "expect_status")) return e;
          ch.expect_status.push_back(code);
        }
      }
    }
    if (v["body_contains"]) ch.body_contains = scalar(v["body_contains"]);
    if (v["tls_verify"] && !parse_bool(v["tls_verify"], ch.tls_verify))
      return err(c, v["tls_verify"], "tls_verify must be true or false");
    if (v["qname"]) ch.qname = scalar(v["qname"]);
    if (v["qtype"]) {
      std::string t = scalar(v["qtype"]);
      ch.qtype = t == "A" ? 1 : t == "AAAA" ? 28 : t == "SOA" ? 6 : t == "NS" ? 2 : t == "TXT" ? 16 : 0;
      if (!ch.qtype) return err(c, v["qtype"], "qtype must be A, AAAA, SOA, NS or TXT");
    }
    if (v["expect_rcode"]) {
      std::string r = scalar(v["expect_rcode"]);
      int code = r == "NOERROR" ? 0 : r == "NXDOMAIN" ? 3 : r == "REFUSED" ? 5 : r == "SERVFAIL" ? 2 : -1;
      if (code < 0) return err(c, v["expect_rcode"], "expect_rcode must be NOERROR, NXDOMAIN, SERVFAIL or REFUSED");
      ch.expect_rcode = static_cast<uint8_t>(code);
    }
    if (ch.type == "dns" && ch.qname.empty()) return err(c, v, "check " + ch.name + ": a dns check needs qname");
    if (v["interval"])
      if (auto e = get_duration(c, v["interval"], ch.interval_ms, "interval")) return e;
    if (v["timeout"])
      if (auto e = get_duration(c, v["timeout"], ch.timeout_ms, "timeout")) return e;
    if (v["jitter"])
      if (auto e = get_duration(c, v["jitter"], ch.jitter_ms, "jitter")) return e;
    if (ch.interval_ms < 100) return err(c, v["interval"] ? v["interval"] : v, "interval must be at least 100ms");
    if (ch.timeout_ms == 0 || ch.timeout_ms > ch.interval_ms)
      return err(c, v["timeout"] ? v["timeout"] : v, "timeout must be above 0 and at most the interval");
    if (v["fall"])
      if (auto e = get_uint(c, v["fall"], ch.fall, 1, 100, "fall")) return e;
    if (v["rise"])
      if (auto e = get_uint(c, v["rise"], ch.rise, 1, 100, "rise")) return e;
    if (v["quorum"]) {
      try {
        ch.quorum = v["quorum"].as<double>();
      } catch (const YAML::Exception&) {
        ch.quorum = -1;
      }
      if (!(ch.quorum > 0 && ch.quorum <= 1)) return err(c, v["quorum"], "quorum must be a fraction in (0, 1]");
    }
    if (v["min_vantages"])
      if (auto e = get_uint(c, v["min_vantages"], ch.min_vantages, 1, 1000, "min_vantages")) return e;
    if (const yaml::Node& d = v["damping"]) {
      if (auto e = check_keys(c, d, {"flips", "window", "hold"}, "damping of check " + ch.name)) return e;
      if (!d["flips"] || !d["window"] || !d["hold"])
        return err(c, d, "damping needs flips, window and hold, e.g. { flips: 4, window: 10m, hold: 15m }");
      if (auto e = get_uint(c, d["flips"], ch.damping_flips, 1, 1000, "damping flips")) return e;
      uint32_t window = 0, hold = 0;
      if (auto e = get_duration(c, d["window"], window, "damping window")) return e;
      if (auto e = get_duration(c, d["hold"], hold, "damping hold")) return e;
      if (window == 0 || hold == 0) return err(c, d, "damping window and hold must be above 0");
      ch.damping_window_ms = window;
      ch.damping_hold_ms = hold;
    }
    cfg.checks.push_back(std::move(ch));
  }
  return std::nullopt;
}

std::optional<Error> check_regions(const Ctx& c, const Config& cfg) {
  std::set<std::string> known;
  for (const auto& r : cfg.regions) known.insert(r.order.begin(), r.order.end());
  for (const auto& rc : cfg.region_coords) known.insert(rc.region);
  bool geo_rules = std::any_of(cfg.regions.begin(), cfg.regions.end(), [](const auto& r) { return !r.geo.empty(); });
  if (geo_rules && cfg.geo_database.empty())
    return Error{c.path, cfg.regions.front().line, "geo: rules in regions: need geo: { database: FILE }"};
  for (const auto& rec : cfg.records) {
    if (rec.policy == zones::Policy::kGeo && cfg.regions.empty())
      return Error{c.path, rec.line, "geo record " + rec.name + " needs regions: rules (geo: or cidr:)"};
    if (rec.policy == zones::Policy::kProximity && (cfg.region_coords.empty() || cfg.geo_database.empty()))
      return Error{c.path, rec.line,
                   "proximity record " + rec.name + " needs geo: { database: FILE } and region_coords: { REGION: [lat, lon] }"};
    if (rec.policy == zones::Policy::kLatency && cfg.regions.empty())
      return Error{c.path, rec.line, "latency record " + rec.name + " needs regions: (client networks -> regions)"};
    if (rec.measured &&
        std::none_of(cfg.regions.begin(), cfg.regions.end(), [](const auto& r) { return !r.vantage.empty(); }))
      return Error{c.path, rec.line, "latency_source: measured needs regions: rules that name a vantage:"};
    for (const auto& ep : rec.endpoints)
      if (!ep.region.empty() && !cfg.regions.empty() && !known.count(ep.region))
        return Error{c.path, ep.line,
                     "endpoint " + ep.name + " has region '" + ep.region + "', which no regions: order lists (typo?)"};
  }
  return std::nullopt;
}

bool valid_key_part(const std::string& s) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(), [](char ch) { return isalnum(uint8_t(ch)) || strchr("-_.", ch); });
}

std::optional<Error> parse_cluster(const Ctx& c, const yaml::Node& n, ClusterSpec& cl) {
  if (auto e = check_keys(c, n, {"etcd", "prefix", "node", "tls", "auth"}, "cluster")) return e;
  cl.line = n.Mark().is_null() ? 0 : n.Mark().line + 1;
  const auto& urls = n["etcd"];
  if (!urls || !urls.IsSequence() || urls.size() == 0)
    return err(c, urls ? urls : n, "cluster.etcd must be a non-empty list of URLs like [\"http://10.0.0.1:2379\"]");
  for (const auto& u : urls) {
    std::string url = u.IsScalar() ? u.Scalar() : "";
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      return err(c, u, "cluster.etcd: '" + url + "' is not an http:// or https:// URL of an etcd client endpoint");
    while (!url.empty() && url.back() == '/') url.pop_back();
    cl.etcd.push_back(url);
  }
  if (n["prefix"]) {
    cl.prefix = n["prefix"].IsScalar() ? n["prefix"].Scalar() : "";
    while (cl.prefix.size() > 1 && cl.prefix.back() == '/') cl.prefix.pop_back();
    if (cl.prefix.size() < 2 || cl.prefix[0] != '/' || cl.prefix.find_first_of(" \t\n") != std::string::npos)
      return err(c, n["prefix"], "cluster.prefix must be a key prefix like /vane/prod");
  }
  if (n["node"]) {
    cl.node = n["node"].IsScalar() ? n["node"].Scalar() : "";
  } else {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    cl.node = host;
  }
  if (!valid_key_part(cl.node))
    return err(c, n["node"] ? n["node"] : n, "cluster.node '" + cl.node + "' must be letters, digits, '-', '_' or '.'");
  if (const auto& t = n["tls"]) {
    if (auto e = check_keys(c, t, {"ca", "cert", "key"}, "cluster.tls")) return e;
    if (t["ca"]) cl.tls_ca = resolve_path(c, t["ca"].as<std::string>());
    if (t["cert"]) cl.tls_cert = resolve_path(c, t["cert"].as<std::string>());
    if (t["key"]) cl.tls_key = resolve_path(c, t["key"].as<std::string>());
    if (cl.tls_cert.empty() != cl.tls_key.empty()) return err(c, t, "cluster.tls: cert and key go together");
  }
  if (const auto& a = n["auth"]) {
    if (auto e = check_keys(c, a, {"user", "password_file"}, "cluster.auth")) return e;
    if (!a["user"] || !a["password_file"]) return err(c, a, "cluster.auth needs user and password_file");
    cl.user = a["user"].as<std::string>();
    cl.password_file = resolve_path(c, a["password_file"].as<std::string>());
  }
  return std::nullopt;
}

bool loopback_host(std::string host) {
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// api: { listen, tls: { cert, key, client_ca }, max_body, tokens: [{ name, token_file, scope, rate }] }
std::optional<Error> parse_api(const Ctx& c, const yaml::Node& n, Config& cfg) {
  ApiSpec& api = cfg.api;
  if (auto e = check_keys(c, n, {"listen", "tls", "tokens", "max_body"}, "api")) return e;
  api.line = n.Mark().line + 1;
  if (!n["listen"] || scalar(n["listen"]).empty()) return err(c, n, "api needs listen: HOST:PORT, like \"127.0.0.1:8443\"");
  api.listen = scalar(n["listen"]);
  size_t colon = api.listen.rfind(':');
  int port = colon == std::string::npos ? -1 : std::atoi(api.listen.c_str() + colon + 1);
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535 ||
      api.listen.find_first_not_of("0123456789", colon + 1) != std::string::npos)
    return err(c, n["listen"], "api.listen must be HOST:PORT, like \"127.0.0.1:8443\" (port 0: any)");
  if (const auto& t = n["tls"]) {
    if (auto e = check_keys(c, t, {"cert", "key", "client_ca"}, "api.tls")) return e;
    if (!t["cert"] || !t["key"]) return err(c, t, "api.tls needs cert: and key: (PEM files)");
    api.cert = resolve_path(c, scalar(t["cert"]));
    api.key = resolve_path(c, scalar(t["key"]));
    if (t["client_ca"]) api.client_ca = resolve_path(c, scalar(t["client_ca"]));
    for (auto [key, path] : {std::pair{"cert", &api.cert}, std::pair{"key", &api.key}, std::pair{"client_ca", &api.client_ca}})
      if (!path->empty() && access(path->c_str(), R_OK) != 0)
        return err(c, t[key], std::string("api.tls.") + key + ": cannot read " + *path + ": " + strerror(errno));
  } else if (!loopback_host(api.listen.substr(0, colon))) {
    return err(c, n["listen"], "api.listen " + api.listen +
                                   " is not a loopback address: without tls: { cert, key } the API (bearer tokens in "
                                   "clear) may only listen on 127.0.0.1 or [::1]");
  }
  if (n["max_body"])
    if (auto e = get_uint(c, n["max_body"], api.max_body, 1024, 16u << 20, "api.max_body")) return e;
  const auto& toks = n["tokens"];
  if (!toks || !toks.IsSequence() || toks.size() == 0)
    return err(c, toks ? toks : n, "api needs tokens: [{ name, token_file, scope }] (every request needs one)");
  std::set<std::string> names, secrets;
  for (const auto& t : toks) {
    if (auto e = check_keys(c, t, {"name", "token_file", "scope", "rate"}, "api.tokens")) return e;
    ApiToken tok;
    tok.line = t.Mark().line + 1;
    tok.name = t["name"] ? scalar(t["name"]) : "";
    bool good = !tok.name.empty() && tok.name.size() <= 64;
    for (char ch : tok.name) good &= isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
    if (!good) return err(c, t["name"] ? t["name"] : t, "api token name must be 1-64 letters, digits, '-', '_' or '.'");
    if (!names.insert(tok.name).second) return err(c, t["name"], "api token '" + tok.name + "' is named twice");
    if (!t["token_file"]) return err(c, t, "api token '" + tok.name + "' needs token_file: (the secret's file)");
    auto secret = read_token_file(resolve_path(c, scalar(t["token_file"])));
    if (!secret) return err(c, t["token_file"], "api token '" + tok.name + "': " + secret.error().to_string());
    if (secret->size() < 16)
      return err(c, t["token_file"], "api token '" + tok.name + "': the token must be at least 16 characters (e.g. openssl rand -hex 32)");
    if (!secrets.insert(*secret).second)
      return err(c, t["token_file"], "api token '" + tok.name + "' has the same secret as another token");
    tok.secret = *secret;
    const auto& sc = t["scope"];
    if (!sc) return err(c, t, "api token '" + tok.name + "' needs scope: [read, write, \"write:ZONE\", admin]");
    std::vector<yaml::Node> items;
    if (sc.IsSequence())
      for (const auto& s : sc) items.push_back(s);
    else
      items.push_back(sc);
    for (const auto& s : items) {
      std::string v = s.IsScalar() ? s.Scalar() : "";
      if (v == "read") {
        tok.read = true;
      } else if (v == "write") {
        tok.write = true;
      } else if (v == "admin") {
        tok.admin = true;
      } else if (v.rfind("write:", 0) == 0 && v.size() > 6) {
        std::string zone = dns::canonical_text(v.substr(6));
        bool known = false;
        for (const auto& z : cfg.zones) known |= dns::canonical_text(z.origin) == zone;
        if (!known) return err(c, s, "api token '" + tok.name + "': scope " + v + " names no zone of this config");
        tok.write_zones.push_back(zone);
      } else {
        return err(c, s, "api token '" + tok.name + "': unknown scope '" + v + "' (read, write, write:ZONE or admin)");
      }
    }
    if (const auto& r = t["rate"]) {
      uint32_t rate = 0;
      if (auto e = get_uint(c, r, rate, 1, 100000, "api token rate (requests per second)")) return e;
      tok.rate = rate;
    }
    api.tokens.push_back(std::move(tok));
  }
  return std::nullopt;
}

std::optional<Error> parse_root(const Ctx& c, const yaml::Node& root, Config& cfg) {
  if (auto e = check_keys(c, root,
                          {"listen", "threads", "state_dir", "admin", "http", "vantage", "zones", "edns_udp_size", "dnssec_cache",
                           "tcp", "udp", "records", "regions", "checks", "cluster", "rrl", "tsig", "geo",
                           "region_coords", "dnstap", "api"},
                          "the top level"))
    return e;
  if (const auto& l = root["listen"]) {
    if (!l.IsSequence() || l.size() == 0) return err(c, l, "listen must be a non-empty list like [\"127.0.0.1:5353\"]");
    for (const auto& a : l) {
      ListenAddr la;
      if (!a.IsScalar() || !parse_listen(a.Scalar(), la))
        return err(c, a,
                   "bad listen address '" + (a.IsScalar() ? a.Scalar() : std::string("?")) +
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
  if (root["dnssec_cache"])
    if (auto e = get_uint(c, root["dnssec_cache"], cfg.dnssec_cache, 1024, 1u << 24, "dnssec_cache")) return e;
  // Relative to the config file's directory, like every other path in it.
  cfg.state_dir = resolve_path(c, root["state_dir"] ? root["state_dir"].as<std::string>() : "state");
  if (const auto& a = root["admin"]) {
    if (auto e = check_keys(c, a, {"socket"}, "admin")) return e;
    if (a["socket"]) cfg.admin_socket = resolve_path(c, a["socket"].as<std::string>());
  }
  if (const auto& h = root["http"]) {
    if (auto e = check_keys(c, h, {"listen", "token_file", "endpoint_metrics"}, "http")) return e;
    if (h["listen"]) cfg.http_listen = h["listen"].as<std::string>();
    if (h["token_file"]) cfg.http_token_file = resolve_path(c, h["token_file"].as<std::string>());
    if (const auto& m = h["endpoint_metrics"]) {
      std::string v = scalar(m);
      if (v == "all")
        cfg.endpoint_metrics = Config::EndpointMetrics::kAll;
      else if (v == "problems")
        cfg.endpoint_metrics = Config::EndpointMetrics::kProblems;
      else if (v == "auto")
        cfg.endpoint_metrics = Config::EndpointMetrics::kAuto;
      else
        return err(c, m, "http.endpoint_metrics must be all, problems or auto (all up to 1000 endpoints)");
    }
  }
  if (root["vantage"]) {
    cfg.vantage = root["vantage"].as<std::string>();
    cfg.vantage_set = true;
  }
  if (root["cluster"])
    if (auto e = parse_cluster(c, root["cluster"], cfg.cluster)) return e;
  if (root["rrl"])
    if (auto e = parse_rrl(c, root["rrl"], cfg.rrl)) return e;
  if (cfg.cluster.enabled() && !cfg.vantage_set) cfg.vantage = cfg.cluster.node;
  if (root["tcp"])
    if (auto e = parse_tcp(c, root["tcp"], cfg.tcp)) return e;
  if (root["udp"])
    if (auto e = parse_udp(c, root["udp"], cfg.udp)) return e;
  if (root["tsig"])
    if (auto e = parse_tsig(c, root["tsig"], cfg.tsig)) return e;
  if (root["zones"])
    if (auto e = parse_zones(c, root["zones"], cfg)) return e;
  if (cfg.zones.empty()) return Error{c.path, 0, "no zones configured (add zones: [{ name: ..., file: ... }])"};
  if (const auto& d = root["dnstap"]) {
    DnstapSpec& t = cfg.dnstap;
    if (auto e = check_keys(c, d, {"socket", "file", "tcp", "identity", "version", "sample", "log_queries", "log_responses"},
                            "dnstap"))
      return e;
    t.line = d.Mark().line + 1;
    int sinks = bool(d["socket"]) + bool(d["file"]) + bool(d["tcp"]);
    if (sinks != 1)
      return err(c, d, "dnstap needs exactly one of socket: PATH (a Frame Streams reader, e.g. fstrm_capture), file: PATH or tcp: HOST:PORT");
    if (d["socket"]) t.socket = resolve_path(c, scalar(d["socket"]));
    if (d["file"]) t.file = resolve_path(c, scalar(d["file"]));
    if (d["tcp"]) {
      ListenAddr la;
      t.tcp = scalar(d["tcp"]);
      if (!parse_listen(t.tcp, la)) return err(c, d["tcp"], "dnstap tcp must be IP:PORT or [IPv6]:PORT, not '" + t.tcp + "'");
    }
    if (d["identity"]) t.identity = scalar(d["identity"]);
    if (d["version"]) t.version = scalar(d["version"]);
    if (d["sample"])
      if (auto e = get_uint(c, d["sample"], t.sample, 1, 1000000, "sample")) return e;
    for (auto [key, flag] : {std::pair{"log_queries", &t.log_queries}, std::pair{"log_responses", &t.log_responses}})
      if (d[key] && !parse_bool(d[key], *flag)) return err(c, d[key], std::string(key) + " must be true or false");
    if (!t.log_queries && !t.log_responses) return err(c, d, "dnstap logs nothing with log_queries and log_responses false");
  }
  if (const auto& g = root["geo"]) {
    if (auto e = check_keys(c, g, {"database"}, "geo")) return e;
    if (!g["database"] || scalar(g["database"]).empty())
      return err(c, g, "geo needs database: a MaxMind DB format file (GeoIP2/GeoLite2 City or Country)");
    cfg.geo_database = resolve_path(c, scalar(g["database"]));
    cfg.geo_line = g.Mark().line + 1;
  }
  if (root["regions"])
    if (auto e = parse_regions(c, root["regions"], cfg)) return e;
  if (root["region_coords"])
    if (auto e = parse_region_coords(c, root["region_coords"], cfg)) return e;
  if (root["checks"])
    if (auto e = parse_checks(c, root["checks"], cfg)) return e;
  Ctx with_checks{c.path, c.base_dir, &cfg.checks};
  if (root["records"])
    if (auto e = parse_records(with_checks, root["records"], cfg)) return e;
  if (auto e = check_regions(c, cfg)) return e;
  if (root["api"])
    if (auto e = parse_api(c, root["api"], cfg)) return e;
  if (cfg.admin_socket.empty()) cfg.admin_socket = cfg.state_dir + "/admin.sock";
  if (cfg.threads == 0) cfg.threads = std::max(1u, std::thread::hardware_concurrency());
  return std::nullopt;
}

}  // namespace

namespace {

// "<digits><unit>" in microseconds; `us_ok` admits the "us" unit.
bool parse_duration(const std::string& text, bool us_ok, uint64_t& us) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) {
    v = v * 10 + static_cast<uint64_t>(text[i++] - '0');
    if (v > (1ULL << 32)) return false;  // × 3.6e9 (hours in µs) stays within 64 bits
  }
  if (i == 0) return false;
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"", 1000000}, {"s", 1000000}, {"ms", 1000}, {"m", 60000000}, {"h", 3600000000}, {"us", 1}};
  for (const auto& [unit, scale] : kUnits)
    if (text.compare(i, std::string::npos, unit) == 0 && (us_ok || scale != 1)) {
      us = v * scale;
      return true;
    }
  return false;
}

}  // namespace

bool parse_duration_ms(const std::string& text, uint64_t& ms) {
  uint64_t us;
  if (!parse_duration(text, false, us)) return false;
  ms = us / 1000;
  return true;
}

bool parse_duration_us(const std::string& text, uint64_t& us) { return parse_duration(text, true, us); }

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

Result<Config> parse_config(const std::string& text, const std::string& path, const std::string& base_dir,
                            const ZoneHook* zone_hook) {
  Config cfg;
  cfg.path = path;
  Ctx c{path, base_dir};
  yaml::Doc doc;
  yaml::Doc::ItemHook hook{"zones", [&](const yaml::Node& z) {
                             if (!z.IsMap() || z.size() != 2) return;
                             yaml::Node name = z["name"], file = z["file"];
                             if (name && file && name.IsScalar() && file.IsScalar())
                               (*zone_hook)(name.Scalar(), resolve_path(c, file.Scalar()));
                           }};
  try {
    doc.parse(text, zone_hook ? &hook : nullptr);
  } catch (const YAML::ParserException& e) {
    return Error{path, e.mark.line + 1, e.msg};
  }
  yaml::Node root = doc.root();
  try {
    if (!root.IsMap()) return Error{path, 1, "the config must be a YAML mapping (listen:, zones:, ...)"};
    if (auto e = parse_root(c, root, cfg)) return *e;
  } catch (const YAML::Exception& e) {
    return Error{path, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg};
  }
  return cfg;
}

Result<std::string> read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{path, 0, std::string("cannot read token file: ") + strerror(errno)};
  std::string line;
  std::getline(in, line);
  size_t a = line.find_first_not_of(" \t\r\n");
  size_t b = line.find_last_not_of(" \t\r\n");
  if (a == std::string::npos) return Error{path, 1, "token file is empty"};
  return line.substr(a, b - a + 1);
}

Result<AgentConfig> load_agent_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{path, 0, std::string("cannot read agent config: ") + strerror(errno)};
  std::stringstream ss;
  ss << in.rdbuf();
  auto dir = std::filesystem::path(path).parent_path().string();
  Ctx c{path, dir};
  AgentConfig a;
  a.path = path;
  try {
    yaml::Doc doc;
    doc.parse(ss.str());
    yaml::Node root = doc.root();
    if (!root.IsMap()) return Error{path, 1, "the agent config must be a YAML mapping"};
    if (auto e =
            check_keys(c, root, {"vantage", "report_to", "token_file", "config", "report_interval", "targets_refresh"},
                       "the top level"))
      return *e;
    for (const char* k : {"vantage", "token_file"})
      if (!root[k] || scalar(root[k]).empty()) return Error{path, 0, std::string("the agent config needs ") + k + ":"};
    if (!root["report_to"] || (root["report_to"].IsScalar() && scalar(root["report_to"]).empty()) ||
        (root["report_to"].IsSequence() && root["report_to"].size() == 0))
      return Error{path, 0, "the agent config needs report_to:"};
    a.vantage = scalar(root["vantage"]);
    if (root["report_to"].IsSequence()) {
      for (const auto& u : root["report_to"]) a.report_to.push_back(scalar(u));
    } else {
      a.report_to.push_back(scalar(root["report_to"]));
    }
    for (const auto& u : a.report_to)
      if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
        return err(c, root["report_to"],
                   "report_to must be an http:// or https:// URL of the main instance's http.listen (or a list of "
                   "them, one per node)");
    if (std::set<std::string>(a.report_to.begin(), a.report_to.end()).size() != a.report_to.size())
      return err(c, root["report_to"], "report_to names a URL twice");
    a.token_file = resolve_path(c, scalar(root["token_file"]));
    if (root["config"]) a.config = resolve_path(c, scalar(root["config"]));
    if (root["targets_refresh"]) {
      if (a.config.size()) return err(c, root["targets_refresh"], "targets_refresh is for fetched targets (no config:)");
      if (auto e = get_duration(c, root["targets_refresh"], a.targets_refresh_ms, "targets_refresh")) return *e;
      if (a.targets_refresh_ms < 500) return err(c, root["targets_refresh"], "targets_refresh must be at least 500ms");
    }
    if (root["report_interval"])
      if (auto e = get_duration(c, root["report_interval"], a.report_interval_ms, "report_interval")) return *e;
    if (a.report_interval_ms < 100) return err(c, root["report_interval"], "report_interval must be at least 100ms");
  } catch (const YAML::Exception& e) {
    return Error{path, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg};
  }
  return a;
}

Result<Config> load_config(const std::string& path, const ZoneHook* zone_hook) {
  std::ifstream in(path);
  if (!in) return Error{path, 0, std::string("cannot read config: ") + strerror(errno)};
  std::stringstream ss;
  ss << in.rdbuf();
  auto dir = std::filesystem::path(path).parent_path().string();
  return parse_config(ss.str(), path, dir, zone_hook);
}

namespace {

// FNV-1a, 64 bit: stable across builds and hosts, which is all a digest that
// nodes compare needs (not a security boundary).
struct Fnv {
  uint64_t h = 1469598103934665603ULL;
  void add(std::string_view s) {
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;  // field separator
  }
  void add(uint64_t v) { add(std::to_string(v)); }
};

}  // namespace

std::string serving_digest(const Config& cfg) {
  Fnv f;
  auto contents = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  for (const auto& z : cfg.zones) {
    f.add(z.origin);
    if (z.dnssec.online) {  // every node must sign with the same keys: their public halves count
      f.add(uint64_t(z.dnssec.algorithm));
      f.add(uint64_t(z.dnssec.cds));
      std::vector<std::filesystem::path> keys;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(z.dnssec.key_dir, ec))
        if (e.path().extension() == ".key" || e.path().extension() == ".state") keys.push_back(e.path());
      std::sort(keys.begin(), keys.end());
      for (const auto& k : keys) f.add(k.filename().string()), f.add(contents(k));
    }
    f.add(z.text.empty() ? contents(z.file) : z.text);
  }
  for (const auto& r : cfg.records) {
    f.add(r.name), f.add(r.type), f.add(r.ttl), f.add(uint64_t(r.policy)), f.add(r.fail_closed), f.add(r.sticky);
    f.add(uint64_t(r.failback)), f.add(r.ttl_unsteady), f.add(r.pick_all), f.add(r.max_answers);
    for (const auto& e : r.endpoints) {
      bool cname = r.type == dns::kTypeCNAME;  // (address, then cname: as when they were two fields)
      f.add(e.name), f.add(cname ? std::string() : e.address), f.add(cname ? e.address : std::string());
      f.add(e.weight), f.add(e.priority), f.add(e.region), f.add(e.check);
    }
  }
  f.add(cfg.geo_database);
  for (const auto& rc : cfg.region_coords)
    f.add(rc.region), f.add(std::to_string(rc.lat)), f.add(std::to_string(rc.lon)), f.add(std::to_string(rc.bias_km));
  for (const auto& g : cfg.regions) {
    f.add(g.geo), f.add(g.cidr), f.add(g.vantage);
    for (const auto& o : g.order) f.add(o);
  }
  for (const auto& ch : cfg.checks)
    f.add(ch.name), f.add(ch.type), f.add(ch.port), f.add(ch.path), f.add(ch.interval_ms), f.add(ch.fall),
        f.add(ch.rise), f.add(std::to_string(ch.quorum)), f.add(ch.min_vantages), f.add(ch.damping_flips),
        f.add(ch.damping_window_ms), f.add(ch.damping_hold_ms);
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(f.h));
  return buf;
}

}  // namespace vane
