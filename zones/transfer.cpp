// Zone transfers out: access rules and the RR lists of IXFR steps (see transfer.h).
#include "transfer.h"

#include "dns/wire.h"

namespace vane::zones {

namespace {

bool in_network(const TransferAllow& a, uint8_t family, const uint8_t* addr) {
  if (a.family == 0) return true;
  if (a.family != family) return false;
  for (uint8_t b = 0; b < a.prefix; ++b) {
    uint8_t mask = uint8_t(0x80 >> (b % 8));
    if ((addr[b / 8] & mask) != (a.addr[b / 8] & mask)) return false;
  }
  return true;
}

}  // namespace

bool transfer_allowed(const TransferSpec& spec, uint8_t family, const uint8_t* addr, const std::string& key) {
  for (const TransferAllow& a : spec.allow)
    if (in_network(a, family, addr) && (a.key.empty() || a.key == key)) return true;
  return false;
}

void RrList::add(std::span<const uint8_t> owner, uint16_t type, uint32_t ttl, const uint8_t* rdata, uint16_t rdlen) {
  wire.insert(wire.end(), owner.begin(), owner.end());
  uint8_t fixed[10];
  dns::put16(fixed, type);
  dns::put16(fixed + 2, dns::kClassIN);
  dns::put32(fixed + 4, ttl);
  dns::put16(fixed + 8, rdlen);
  wire.insert(wire.end(), fixed, fixed + 10);
  wire.insert(wire.end(), rdata, rdata + rdlen);
  ++count;
}

}  // namespace vane::zones
