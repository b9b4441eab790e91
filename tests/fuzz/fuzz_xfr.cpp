// libFuzzer: a zone transfer request as a TCP client sends it — the query
// parser, the IXFR serial in the authority section, TSIG verification (ldns)
// and the access rules — and the whole answer stream it gets: AXFR, IXFR
// from a history of steps, refusals, NOTAUTH with an error TSIG, signed
// streams. Every message must be framed, carry the request's id and fit in
// 64 KiB. Seeds: signed and unsigned AXFR and IXFR requests (kdig's).
#include <arpa/inet.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "config.h"
#include "server.h"
#include "xfr_out.h"

namespace {

constexpr const char* kZone = R"($ORIGIN example.com.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
@ IN MX 10 mail
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
www IN A 192.0.2.10
alias IN CNAME www
old IN DNAME new
*.wild IN A 192.0.2.99
deleg IN NS ns1.deleg
ns1.deleg IN A 192.0.2.200
big IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789"
)";

constexpr const char* kConfig = R"(
listen: ["127.0.0.1:0"]
zones: [{ name: example.com, file: inline }]
records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: a, address: 192.0.2.20, priority: 1 }
      - { name: b, address: 198.51.100.20, priority: 2 }
  - name: go.example.com
    type: CNAME
    policy: weighted
    endpoints:
      - { name: x, cname: www.example.com., weight: 1 }
      - { name: y, cname: mail.example.com., weight: 1 }
)";

struct Fixture {
  vane::zones::StateTable states;
  vane::zones::TransferPublisher transfers;
  Fixture() {
    auto cfg = vane::parse_config(kConfig, "fuzz.yaml", "");
    if (!cfg) abort();
    cfg->zones[0].text = kZone;
    // Two allow entries: a network, and a key from anywhere (the seeds' key).
    vane::zones::TransferAllow net;
    net.family = 4;
    net.prefix = 8;
    net.addr[0] = 10;
    vane::zones::TransferAllow key;
    key.key = "xfr";
    cfg->zones[0].transfer.allow = {net, key};
    auto zs = vane::server::build_zone_set(*cfg, states, true);
    if (!zs) abort();
    auto view = std::make_shared<vane::zones::TransferView>();
    view->snapshot = zs.take();
    view->keys["xfr"] = {"xfr", "hmac-sha256", "c2VjcmV0IG9mIHRoZSBmdXp6IGhhcm5lc3MsIDMyIGJ5dGVz"};
    const vane::zones::Zone* z = view->snapshot->zones()[0].get();
    vane::zones::ZoneTransfer& t = view->zones[z];
    t.zone = z;
    t.spec = cfg->zones[0].transfer;
    t.serial = 3;
    t.steered = {{0}, {0, 1}};
    for (uint32_t from : {1u, 2u}) {  // two steps: 1 -> 2 -> 3
      vane::zones::IxfrStep s;
      s.from = from;
      s.to = from + 1;
      static const uint8_t kOwner[] = {3, 'a', 'p', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
      static const uint8_t kA[] = {192, 0, 2, 20}, kB[] = {198, 51, 100, 20};
      s.removed.add(kOwner, 1, 60, from == 1 ? kA : kB, 4);
      s.added.add(kOwner, 1, 60, from == 1 ? kB : kA, 4);
      t.history.push_back(std::move(s));
    }
    transfers.publish(std::move(view));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  if (size < 1) return 0;
  // The first byte picks the client's address (inside 10/8 or not).
  sockaddr_storage peer{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&peer);
  v4->sin_family = AF_INET;
  v4->sin_addr.s_addr = htonl((data[0] & 1 ? 0x0A000000u : 0xC0000200u) | data[0]);
  std::span<const uint8_t> req{data + 1, size - 1};
  if (!vane::server::is_transfer_request(req)) return 0;
  // The seeds were signed at 1796006400 (2026-11-30); a fixed clock keeps them inside the fudge.
  vane::server::XfrOut x(req, peer, f.transfers, 1796006400);
  std::vector<uint8_t> out;
  bool more = true;
  for (int rounds = 0; more; ++rounds) {
    if (rounds > 1000) abort();  // the stream must end
    out.clear();
    more = x.next(out, 256 * 1024);
    for (size_t pos = 0; pos < out.size();) {  // every message framed, with the request's id
      if (out.size() - pos < 2 + 12) abort();
      size_t len = size_t(out[pos]) << 8 | out[pos + 1];
      if (len < 12 || pos + 2 + len > out.size()) abort();
      if (std::memcmp(out.data() + pos + 2, req.data(), 2) != 0) abort();
      pos += 2 + len;
    }
  }
  return 0;
}
