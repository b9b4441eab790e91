// libFuzzer: the answer stream of a zone transfer as a primary sends it to
// vane the secondary — message parsing (ldns), id and rcode checks, TSIG
// verification, records outside the zone, the AXFR and IXFR state machine
// applying steps to a copy, the max_zone_size limit. The input is framed
// like TCP (2-byte lengths); its first byte picks AXFR or an IXFR from
// serial 100 of a small copy, and whether a TSIG key is expected.
// Seeds: AXFR, IXFR with steps, IXFR answered in AXFR form, the SOA alone.
#include <cstdint>
#include <cstdlib>

#include "xfr_in.h"

namespace {

std::shared_ptr<const vane::server::ZoneCopy> copy() {
  static auto c = [] {
    auto m = std::make_shared<vane::server::ZoneCopy>();
    for (const char* line : {"example.org.\t300\tIN\tSOA\tns1.example.org. h.example.org. 100 2 1 6 60",
                             "example.org.\t300\tIN\tNS\tns1.example.org.", "ns1.example.org.\t300\tIN\tA\t192.0.2.1",
                             "www.example.org.\t300\tIN\tA\t192.0.2.80"}) {
      std::string l = line;
      std::string owner = l.substr(0, l.find('\t')), rest = l.substr(l.find('\t', l.find('\t') + 1));
      (*m)[owner + rest] = l;
    }
    return m;
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const vane::zones::TsigKey key{"xfr", "hmac-sha256", "c2VjcmV0IG9mIHRoZSBmdXp6IGhhcm5lc3MsIDMyIGJ5dGVz"};
  bool ixfr = data[0] & 1;
  std::optional<vane::zones::TsigClient> tsig;
  if (data[0] & 2) tsig.emplace(key);
  vane::server::XfrInParser p("example.org.", ixfr ? std::optional<uint32_t>(100) : std::nullopt,
                              ixfr ? std::make_shared<vane::server::ZoneCopy>(*copy()) : nullptr, 50,
                              tsig ? &*tsig : nullptr, 0x1234);
  for (size_t pos = 1; pos + 2 <= size && p.status() == vane::server::XfrInParser::kMore;) {
    size_t len = size_t(data[pos]) << 8 | data[pos + 1];
    pos += 2;
    if (len > size - pos) break;
    p.feed({data + pos, len});
    pos += len;
  }
  if (p.status() == vane::server::XfrInParser::kDone) {
    auto c = p.take_copy();
    if (p.kind() != "up to date" && (!c || c->empty() || c->size() > 50)) abort();  // a copy has its SOA, within the limit
  }
  return 0;
}
