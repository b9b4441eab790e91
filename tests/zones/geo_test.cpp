// GeoTable: the merged network around an address is the largest aligned
// block inside its range, checked against a brute-force search.
#include "geo.h"

#include <gtest/gtest.h>

#include <random>

namespace vane::zones {
namespace {

// The shortest p whose /p block around `a` lies inside [s, e] (32-bit).
int brute4(uint32_t a, uint64_t s, uint64_t e) {
  for (int p = 0; p <= 32; ++p) {
    uint64_t mask = p == 0 ? 0 : (~uint64_t(0) << (32 - p)) & 0xffffffff;
    uint64_t lo = a & mask, hi = lo | (~mask & 0xffffffff);
    if (lo >= s && hi <= e) return p;
  }
  return -1;
}

TEST(GeoTable, ScopeIsTheLargestAlignedBlockInsideTheRange_V4AndV6) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    // Random boundaries; every range gets a result unlike its neighbours'.
    std::vector<uint32_t> starts{0};
    for (int i = 0; i < 50; ++i) starts.push_back(rng());
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    std::vector<GeoDb::Range> v4, v6;
    for (size_t i = 0; i < starts.size(); ++i) {
      v4.push_back({0, starts[i], 0, uint16_t(i % 2 ? 1 : 2 + i)});
      v6.push_back({uint64_t(starts[i]) << 32, 0, 0, uint16_t(i % 2 ? 1 : 2 + i)});  // the same, in the top 32 bits
    }
    GeoTable t(v4, v6);
    for (int q = 0; q < 2000; ++q) {
      uint32_t a = rng();
      size_t i = size_t(std::upper_bound(starts.begin(), starts.end(), a) - starts.begin()) - 1;
      uint64_t e = i + 1 < starts.size() ? uint64_t(starts[i + 1]) - 1 : 0xffffffffULL;
      uint8_t addr[16] = {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
      GeoTable::Hit h4 = t.find(4, addr);
      EXPECT_EQ(h4.result, v4[i].result);
      EXPECT_EQ(h4.prefix, brute4(a, starts[i], e)) << a;
      // IPv6, the same boundaries in the top 32 bits, any low 96 bits: the
      // same block (a /32 around the address always fits in its range).
      for (int k = 4; k < 16; ++k) addr[k] = uint8_t(rng());
      GeoTable::Hit h6 = t.find(6, addr);
      EXPECT_EQ(h6.result, v6[i].result);
      EXPECT_EQ(h6.prefix, brute4(a, starts[i], e)) << a;
    }
  }
}

TEST(GeoTable, IPv4AliasesInIPv6_AnswerFromTheIPv4Table) {
  std::vector<GeoDb::Range> v4{{0, 0, 0, 5}, {0, 0x0a000000, 8, 6}, {0, 0x0b000000, 8, 5}};
  // ::/96 (v4compat) and ::ffff:0:0/96 alias the IPv4 tree; 2002::/16 too.
  std::vector<GeoDb::Range> v6{{0, 0, 96, GeoDb::kV4At96},
                               {0, 0x100000000ULL, 96, 9},
                               {0, 0xffff00000000ULL, 96, GeoDb::kV4At96},
                               {0, 0x1000000000000ULL, 48, 9},
                               {0x2002000000000000ULL, 0, 16, GeoDb::kV4At16},
                               {0x2003000000000000ULL, 0, 16, 9}};
  GeoTable t(v4, v6);
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
  EXPECT_EQ(t.find(6, mapped).result, 6);
  EXPECT_EQ(t.find(6, mapped).prefix, 96 + 8);
  uint8_t six_to_four[16] = {0x20, 0x02, 10, 9, 9, 9};
  EXPECT_EQ(t.find(6, six_to_four).result, 6);
  EXPECT_EQ(t.find(6, six_to_four).prefix, 16 + 8);
  uint8_t other[16] = {0x20, 0x03};
  EXPECT_EQ(t.find(6, other).result, 9);
}

TEST(GeoDistance, GreatCircle) {
  EXPECT_NEAR(distance_km(50.1, 8.7, 38.9, -77.0), 6530, 15);  // Frankfurt - Washington
  EXPECT_NEAR(distance_km(35.7, 139.7, 35.7, 139.7), 0, 1e-9);
  EXPECT_NEAR(distance_km(0, 0, 0, 180), 20015, 5);
}

}  // namespace
}  // namespace vane::zones
