#include "geo.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

namespace vane::zones {

namespace {

std::string text_at(MMDB_entry_s& e, const char* const* path) {
  MMDB_entry_data_s d{};
  if (MMDB_aget_value(&e, &d, path) != MMDB_SUCCESS || !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING)
    return "";
  return std::string(d.utf8_string, d.data_size);
}

bool number_at(MMDB_entry_s& e, const char* const* path, double& out) {
  MMDB_entry_data_s d{};
  if (MMDB_aget_value(&e, &d, path) != MMDB_SUCCESS || !d.has_data) return false;
  if (d.type == MMDB_DATA_TYPE_DOUBLE) out = d.double_value;
  else if (d.type == MMDB_DATA_TYPE_FLOAT) out = d.float_value;
  else return false;
  return true;
}

// City and Country databases: continent.code, country.iso_code,
// subdivisions[i].iso_code, location.latitude/longitude.
GeoLocation location_of(MMDB_entry_s e) {
  GeoLocation loc;
  static const char* const kContinent[] = {"continent", "code", nullptr};
  static const char* const kCountry[] = {"country", "iso_code", nullptr};
  static const char* const kLat[] = {"location", "latitude", nullptr};
  static const char* const kLon[] = {"location", "longitude", nullptr};
  loc.continent = text_at(e, kContinent);
  loc.country = text_at(e, kCountry);
  for (int i = 0; i < 8; ++i) {
    std::string idx = std::to_string(i);
    const char* const path[] = {"subdivisions", idx.c_str(), "iso_code", nullptr};
    std::string s = text_at(e, path);
    if (s.empty()) break;
    loc.subdivisions.push_back(std::move(s));
  }
  loc.has_coords = number_at(e, kLat, loc.lat) && number_at(e, kLon, loc.lon);
  return loc;
}

void set_bit(uint64_t& hi, uint64_t& lo, int bit, int width) {
  if (width == 32) {
    lo |= uint64_t(1) << (31 - bit);
  } else if (bit < 64) {
    hi |= uint64_t(1) << (63 - bit);
  } else {
    lo |= uint64_t(1) << (127 - bit);
  }
}

// One walk over a subtree (the IPv4 one, or the whole IPv6 tree).
struct Walker {
  static constexpr uint32_t kMixed = 0x10000;
  const MMDB_s* db;
  const GeoDb::Classify& classify;
  std::unordered_map<uint32_t, uint16_t>& cache;  // data offset -> result (UINT32_MAX: no data)
  uint32_t v4_node;                               // the IPv4 subtree's node (UINT32_MAX: none)
  int width;                                      // 32 or 128
  std::vector<GeoDb::Range>& out;

  uint32_t leaf(uint32_t key, const MMDB_entry_s* entry) {
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    uint16_t r;
    if (entry) {
      GeoLocation loc = location_of(*entry);
      r = classify(&loc);
    } else {
      r = classify(nullptr);
    }
    cache.emplace(key, r);
    return r;
  }

  uint32_t record(uint8_t type, uint64_t value, const MMDB_entry_s& entry, int depth, uint64_t hi, uint64_t lo) {
    switch (type) {
      case MMDB_RECORD_TYPE_SEARCH_NODE:
        if (width == 128 && value == v4_node && (depth == 96 || depth == 32 || depth == 16))
          return depth == 96 ? GeoDb::kV4At96 : depth == 32 ? GeoDb::kV4At32 : GeoDb::kV4At16;
        if (depth >= width) return leaf(UINT32_MAX, nullptr);
        return node(uint32_t(value), depth, hi, lo);
      case MMDB_RECORD_TYPE_DATA:
        return leaf(entry.offset, &entry);
      default:
        return leaf(UINT32_MAX, nullptr);
    }
  }

  uint32_t node(uint32_t n, int depth, uint64_t hi, uint64_t lo) {
    MMDB_search_node_s s{};
    if (MMDB_read_node(db, n, &s) != MMDB_SUCCESS) return leaf(UINT32_MAX, nullptr);
    uint64_t rhi = hi, rlo = lo;
    set_bit(rhi, rlo, depth, width);
    uint32_t l = record(s.left_record_type, s.left_record, s.left_record_entry, depth + 1, hi, lo);
    uint32_t r = record(s.right_record_type, s.right_record, s.right_record_entry, depth + 1, rhi, rlo);
    if (l == r && l != kMixed) return l;
    if (l != kMixed) out.push_back({hi, lo, uint8_t(depth + 1), uint16_t(l)});
    if (r != kMixed) out.push_back({rhi, rlo, uint8_t(depth + 1), uint16_t(r)});
    return kMixed;
  }

  void run(uint32_t root) {
    uint32_t all = root == UINT32_MAX ? leaf(UINT32_MAX, nullptr) : node(root, 0, 0, 0);
    if (all != kMixed) out.push_back({0, 0, 0, uint16_t(all)});
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo; });
  }
};

}  // namespace

Result<std::shared_ptr<GeoDb>> GeoDb::open(const std::string& path) {
  std::shared_ptr<GeoDb> g(new GeoDb);
  g->path_ = path;
  g->db_ = std::make_unique<MMDB_s>();
  int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, g->db_.get());
  if (rc != MMDB_SUCCESS) {
    std::string why = rc == MMDB_IO_ERROR ? std::string(MMDB_strerror(rc)) + ": " + strerror(errno) : MMDB_strerror(rc);
    g->db_.reset();
    return Error{path, 0, "cannot open the geo database: " + why};
  }
  if (g->db_->metadata.ip_version != 4 && g->db_->metadata.ip_version != 6) return Error{path, 0, "unknown ip_version"};
  return g;
}

GeoDb::~GeoDb() {
  if (db_) MMDB_close(db_.get());
}

std::string GeoDb::type() const { return db_->metadata.database_type ? db_->metadata.database_type : ""; }
uint64_t GeoDb::build_epoch() const { return db_->metadata.build_epoch; }
uint32_t GeoDb::node_count() const { return db_->metadata.node_count; }
unsigned GeoDb::ip_version() const { return db_->metadata.ip_version; }

bool GeoDb::lookup(uint8_t family, const uint8_t* addr, std::string& network, GeoLocation& loc) const {
  sockaddr_storage ss{};
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, 4);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, 16);
  }
  int err = 0;
  MMDB_lookup_result_s r = MMDB_lookup_sockaddr(db_.get(), reinterpret_cast<sockaddr*>(&ss), &err);
  if (err != MMDB_SUCCESS) return false;
  unsigned bits = r.netmask;
  if (family == 4 && db_->metadata.ip_version == 6) bits = bits >= 96 ? bits - 96 : 0;
  uint8_t net[16] = {};
  size_t len = family == 4 ? 4 : 16;
  for (size_t i = 0; i < len; ++i) {
    unsigned keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
    net[i] = keep ? uint8_t(addr[i] & (0xff << (8 - keep))) : 0;
  }
  char text[INET6_ADDRSTRLEN];
  inet_ntop(family == 4 ? AF_INET : AF_INET6, net, text, sizeof text);
  network = std::string(text) + "/" + std::to_string(bits);
  if (!r.found_entry) return false;
  loc = location_of(r.entry);
  return true;
}

void GeoDb::walk(const Classify& classify, std::vector<Range>& v4, std::vector<Range>& v6) const {
  std::unordered_map<uint32_t, uint16_t> cache;
  const MMDB_s* db = db_.get();
  uint32_t v4_node = UINT32_MAX;
  if (db->metadata.ip_version == 4) {
    v4_node = 0;
  } else {
    // Follow ::/96: the IPv4 subtree of an IPv6 database.
    uint32_t n = 0;
    int depth = 0;
    for (; depth < 96; ++depth) {
      MMDB_search_node_s s{};
      if (MMDB_read_node(db, n, &s) != MMDB_SUCCESS) break;
      if (s.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE) {
        // The whole IPv4 space has one record.
        uint32_t r = s.left_record_type == MMDB_RECORD_TYPE_DATA
                         ? Walker{db, classify, cache, UINT32_MAX, 32, v4}.leaf(s.left_record_entry.offset, &s.left_record_entry)
                         : Walker{db, classify, cache, UINT32_MAX, 32, v4}.leaf(UINT32_MAX, nullptr);
        v4.push_back({0, 0, 0, uint16_t(r)});
        break;
      }
      n = uint32_t(s.left_record);
    }
    if (depth == 96) v4_node = n;
  }
  if (v4_node != UINT32_MAX) Walker{db, classify, cache, UINT32_MAX, 32, v4}.run(v4_node);
  if (db->metadata.ip_version == 6)
    Walker{db, classify, cache, v4_node, 128, v6}.run(0);
  else
    v6.push_back({0, 0, 0, classify(nullptr)});
}

GeoTable::GeoTable(const std::vector<GeoDb::Range>& v4, const std::vector<GeoDb::Range>& v6) {
  for (const auto& r : v4)
    if (v4_res_.empty() || v4_res_.back() != r.result) v4_.push_back(uint32_t(r.lo)), v4_res_.push_back(r.result);
  for (const auto& r : v6)
    if (v6_res_.empty() || v6_res_.back() != r.result) v6_.push_back({r.hi, r.lo}), v6_res_.push_back(r.result);
  v4_.shrink_to_fit(), v4_res_.shrink_to_fit(), v6_.shrink_to_fit(), v6_res_.shrink_to_fit();
}

size_t GeoTable::bytes() const { return v4_.capacity() * 6 + v6_.capacity() * 18; }

namespace {

// The shortest prefix p such that a's /p block lies inside [s, e]: it must
// differ from s − 1 and from e + 1 within its first p bits.
int clz128(uint64_t hi, uint64_t lo) { return hi ? __builtin_clzll(hi) : 64 + __builtin_clzll(lo); }

}  // namespace

GeoTable::Hit GeoTable::find4(uint32_t a) const {
  if (v4_.empty()) return {GeoState::kNoOrder, 0};
  size_t i = size_t(std::upper_bound(v4_.begin(), v4_.end(), a) - v4_.begin()) - 1;
  uint32_t s = v4_[i];
  int p = 0;
  if (s) p = std::max(p, __builtin_clz(a ^ (s - 1)) + 1);
  if (i + 1 < v4_.size()) p = std::max(p, __builtin_clz(a ^ v4_[i + 1]) + 1);
  return {v4_res_[i], uint8_t(p)};
}

GeoTable::Hit GeoTable::find(uint8_t family, const uint8_t* addr) const {
  if (family == 4) return find4(uint32_t(addr[0]) << 24 | uint32_t(addr[1]) << 16 | uint32_t(addr[2]) << 8 | addr[3]);
  if (v6_.empty()) return {GeoState::kNoOrder, 0};
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = hi << 8 | addr[i];
  for (int i = 8; i < 16; ++i) lo = lo << 8 | addr[i];
  std::pair<uint64_t, uint64_t> key{hi, lo};
  size_t i = size_t(std::upper_bound(v6_.begin(), v6_.end(), key) - v6_.begin()) - 1;
  Hit h{v6_res_[i], 0};
  auto [shi, slo] = v6_[i];
  if (shi | slo) {  // s − 1
    uint64_t phi = shi - (slo == 0), plo = slo - 1;
    h.prefix = uint8_t(std::max<int>(h.prefix, clz128(hi ^ phi, lo ^ plo) + 1));
  }
  if (i + 1 < v6_.size())  // e + 1 is the next run's start
    h.prefix = uint8_t(std::max<int>(h.prefix, clz128(hi ^ v6_[i + 1].first, lo ^ v6_[i + 1].second) + 1));
  if (GeoDb::v4_alias(h.result)) {
    uint8_t base = GeoDb::v4_alias_bits(h.result);
    const uint8_t* a = addr + base / 8;
    Hit in = find4(uint32_t(a[0]) << 24 | uint32_t(a[1]) << 16 | uint32_t(a[2]) << 8 | a[3]);
    return {in.result, uint8_t(base + in.prefix)};
  }
  return h;
}

double distance_km(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = M_PI / 180, kEarthKm = 6371.0088;
  double dlat = (lat2 - lat1) * kRad, dlon = (lon2 - lon1) * kRad;
  double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthKm * std::asin(std::min(1.0, std::sqrt(a)));
}

int match_geo_rule(const GeoPlan& plan, const GeoLocation* loc) {
  int best = -1, best_level = -1;
  for (size_t i = 0; i < plan.rules.size(); ++i) {
    const auto& r = plan.rules[i];
    int level = r.continent.empty() ? 0 : r.country.empty() ? 1 : r.subdivision.empty() ? 2 : 3;
    if (level > 0) {
      if (!loc || loc->continent != r.continent) continue;
      if (level >= 2 && loc->country != r.country) continue;
      if (level == 3 && std::find(loc->subdivisions.begin(), loc->subdivisions.end(), r.subdivision) ==
                            loc->subdivisions.end())
        continue;
    }
    if (level > best_level) best = int(i), best_level = level;
  }
  return best;
}

std::vector<uint16_t> proximity_order(const GeoPlan& plan, const GeoLocation& loc) {
  std::vector<std::pair<double, uint16_t>> d;
  for (const auto& c : plan.coords) d.push_back({distance_km(loc.lat, loc.lon, c.lat, c.lon) - c.bias_km, c.region});
  std::stable_sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<uint16_t> out;
  for (const auto& [km, region] : d)
    if (out.size() < kProximityRegions) out.push_back(region);
  return out;
}

std::shared_ptr<const GeoState> build_geo(std::shared_ptr<GeoDb> db, GeoPlan plan) {
  auto t0 = std::chrono::steady_clock::now();
  auto st = std::make_shared<GeoState>();
  st->db = std::move(db);
  st->plan = std::move(plan);
  std::map<std::vector<uint16_t>, uint16_t> ids;
  auto id_of = [&](const std::vector<uint16_t>& order) -> uint16_t {
    auto [it, fresh] = ids.emplace(order, uint16_t(st->orders.size()));
    if (fresh) st->orders.push_back(order);
    return it->second;
  };
  auto by_rule = [&](const GeoLocation* loc) -> uint16_t {
    int r = match_geo_rule(st->plan, loc);
    return r < 0 ? GeoState::kNoOrder : id_of(st->plan.rules[size_t(r)].order);
  };
  if (st->plan.geo) {
    std::vector<GeoDb::Range> v4, v6;
    st->db->walk(by_rule, v4, v6);
    st->geo = GeoTable(v4, v6);
  }
  if (st->plan.proximity) {
    std::vector<GeoDb::Range> v4, v6;
    st->db->walk(
        [&](const GeoLocation* loc) -> uint16_t {
          if (!loc || !loc->has_coords || st->plan.coords.empty()) return by_rule(loc);
          return id_of(proximity_order(st->plan, *loc));
        },
        v4, v6);
    st->proximity = GeoTable(v4, v6);
  }
  st->build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace vane::zones
