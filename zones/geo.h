// Geography (DESIGN.md "Geography"): a MaxMind DB format file (GeoIP2 /
// GeoLite2 City or Country, DB-IP lite) read with libmaxminddb, turned off
// the hot path into decision tables: for every address, the region order a
// `geo` (or `proximity`) record answers from, as the largest aligned
// networks that all get that same order — which is also the ECS scope.
//
// The tables are built by walking the database's search tree once per
// policy; a data record's location is classified once (cached by its
// offset), and sibling subtrees with one result merge upwards, as gdnsd's
// geoip plugin does. Lookups are a binary search over a sorted array: no
// allocation, no lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "error.h"

struct MMDB_s;

namespace vane::zones {

// Where the database puts an address.
struct GeoLocation {
  std::string continent;                 // "EU"
  std::string country;                   // "DE"
  std::vector<std::string> subdivisions; // ISO 3166-2 codes, largest first ("BY")
  bool has_coords = false;
  double lat = 0, lon = 0;
};

// An open database. Off the hot path (build, explain, status).
class GeoDb {
 public:
  static Result<std::shared_ptr<GeoDb>> open(const std::string& path);
  ~GeoDb();
  GeoDb(const GeoDb&) = delete;
  GeoDb& operator=(const GeoDb&) = delete;

  const std::string& path() const { return path_; }
  std::string type() const;  // "GeoLite2-City"
  uint64_t build_epoch() const;
  uint32_t node_count() const;
  unsigned ip_version() const;
  // The database network holding the address (as "203.0.113.0/24") and its
  // location; false when the database has none for it.
  bool lookup(uint8_t family, const uint8_t* addr, std::string& network, GeoLocation& loc) const;

  // Every network of the database with the same result under `classify`
  // merged into the largest aligned networks. Calls `emit` in address order
  // with (address bits, prefix, result) for the IPv4 space (32-bit
  // addresses, the ::/96 part of an IPv6 database) and then for IPv6
  // (everything else; IPv4-like spaces the database aliases to the IPv4
  // tree — ::ffff:0:0/96, 6to4 2002::/16, Teredo 2001::/32 in MaxMind's —
  // come out as kV4At96 / kV4At16 / kV4At32: the IPv4 address follows
  // that many bits).
  static constexpr uint16_t kV4At96 = 0xfffe, kV4At16 = 0xfffd, kV4At32 = 0xfffc;
  static bool v4_alias(uint16_t r) { return r >= kV4At32 && r <= kV4At96; }
  static uint8_t v4_alias_bits(uint16_t r) { return r == kV4At96 ? 96 : r == kV4At32 ? 32 : 16; }
  using Classify = std::function<uint16_t(const GeoLocation* loc)>;  // nullptr: no location
  struct Range {
    uint64_t hi, lo;  // address bits (IPv4: in lo's low 32 bits)
    uint8_t prefix;
    uint16_t result;
  };
  void walk(const Classify& classify, std::vector<Range>& v4, std::vector<Range>& v6) const;

 private:
  GeoDb() = default;
  std::string path_;
  std::unique_ptr<MMDB_s> db_;
};

// address -> (result, prefix of the merged network), one per family.
// Stored as runs: the first address of each maximal interval of equal
// result (IPv4: 6 bytes a run, IPv6: 18). The merged network around an
// address is the largest aligned block inside its run — the same network
// a trie merge finds — computed from the run's ends in O(1).
class GeoTable {
 public:
  struct Hit {
    uint16_t result;
    uint8_t prefix;  // of the merged network, in the client's family's bits
  };
  GeoTable() = default;
  GeoTable(const std::vector<GeoDb::Range>& v4, const std::vector<GeoDb::Range>& v6);
  Hit find(uint8_t family, const uint8_t* addr) const;
  size_t size() const { return v4_.size() + v6_.size(); }  // runs
  size_t bytes() const;

 private:
  Hit find4(uint32_t a) const;
  std::vector<uint32_t> v4_;  // run starts, sorted
  std::vector<uint16_t> v4_res_;
  std::vector<std::pair<uint64_t, uint64_t>> v6_;
  std::vector<uint16_t> v6_res_;
};

// Great-circle distance in km.
double distance_km(double lat1, double lon1, double lat2, double lon2);

}  // namespace vane::zones

namespace vane::zones {

// What the tables are built from (vane.yaml's geo: rules and region_coords).
struct GeoPlan {
  struct Rule {
    std::string continent, country, subdivision;  // "" beyond the rule's depth; all "" for default
    std::vector<uint16_t> order;                  // RegionMap ids
    std::string text;                             // "EU/DE", "default"
    int line = 0;
  };
  std::vector<Rule> rules;
  struct Coord {
    uint16_t region;
    double lat, lon, bias_km;
  };
  std::vector<Coord> coords;
  bool geo = false, proximity = false;  // which tables the records need
};

// The database and the tables built from it for one plan; shared by
// snapshots until the file or the plan changes.
struct GeoState {
  static constexpr uint16_t kNoOrder = 0xffff;
  std::shared_ptr<GeoDb> db;
  GeoPlan plan;
  GeoTable geo, proximity;
  std::vector<std::vector<uint16_t>> orders;  // table result -> region order
  double build_ms = 0;
};
// Off the hot path: walks the database once per table the plan needs.
std::shared_ptr<const GeoState> build_geo(std::shared_ptr<GeoDb> db, GeoPlan plan);
// The rule that decides for a location: the most specific of subdivision,
// country, continent, default; -1 when none does.
int match_geo_rule(const GeoPlan& plan, const GeoLocation* loc);
// Regions with coordinates, nearest first (distance − bias), the nearest
// kProximityRegions of them (gdnsd's auto_dc_limit default): a longer
// list splits the address space into more orders, and so shortens ECS
// scopes, for a choice that matters only when three regions are down
// (then every up endpoint is a candidate).
inline constexpr size_t kProximityRegions = 3;
std::vector<uint16_t> proximity_order(const GeoPlan& plan, const GeoLocation& loc);

}  // namespace vane::zones
