#include "rrl.h"

#include <cstring>

namespace vane::server {

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

uint64_t hash_bytes(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ULL;
  return h;
}

bool in_network(const zones::Client& c, const zones::Client& net) {
  if (c.family != net.family) return false;
  size_t full = net.prefix / 8, rest = net.prefix % 8;
  if (std::memcmp(c.addr, net.addr, full) != 0) return false;
  return rest == 0 || ((c.addr[full] ^ net.addr[full]) & uint8_t(0xFF00 >> rest)) == 0;
}

}  // namespace

Rrl::Verdict Rrl::check(const zones::RrlParams& p, const QueryContext& ctx, const uint8_t* resp, size_t len,
                        uint32_t now_s) {
  if (p.rate == 0 || len < dns::kHeaderSize) return Verdict::kSend;
  const zones::Client& src = ctx.source;
  // The client's network: /24 and /56 by default, like Knot and BIND.
  uint8_t bits = src.family == 4 ? p.v4_prefix : p.v6_prefix;
  uint64_t h = mix(0xcbf29ce484222325ULL, src.family);
  size_t full = bits / 8;
  h = hash_bytes(h, src.addr, full);
  if (bits % 8) h = mix(h, src.addr[full] & uint8_t(0xFF00 >> (bits % 8)));
  // The answer class: errors by rcode alone; NXDOMAIN by zone, so that a
  // flood of random names is one bucket; everything else by name and type.
  uint8_t rcode = resp[3] & 0x0F;
  h = mix(h, rcode);
  if (rcode == dns::kRcodeNxDomain && ctx.zone) {
    auto origin = ctx.zone->origin();
    h = hash_bytes(h, origin.data(), origin.size());
  } else if (rcode == dns::kRcodeNoError) {
    h = hash_bytes(h, ctx.query.qname.data, ctx.query.qname.len);
    h = mix(h, ctx.query.qtype);
  }
  Bucket& b = table_[h & (kBuckets - 1)];
  if (b.key != h || b.second != now_s) {
    if (b.key != h) b.limited = 0;
    b.key = h;
    b.second = now_s;
    b.tokens = int32_t(p.rate);
  }
  if (b.tokens > 0) {
    --b.tokens;
    return Verdict::kSend;
  }
  for (const auto& net : p.exempt)
    if (in_network(src, net)) return Verdict::kSend;
  ++b.limited;
  return p.slip && b.limited % p.slip == 0 ? Verdict::kSlip : Verdict::kDrop;
}

size_t Rrl::truncate(uint8_t* resp, const QueryContext& ctx) {
  size_t len = ctx.query.has_question ? ctx.query.question_end : dns::kHeaderSize;
  resp[2] |= 0x02;  // TC
  std::memset(resp + 6, 0, 6);  // no answer, authority or additional records
  return len;
}

}  // namespace vane::server
