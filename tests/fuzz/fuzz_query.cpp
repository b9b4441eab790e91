// libFuzzer: the query parser and the whole answer path (EDNS, ECS, every
// section) on a zone with every answer shape: static data, CNAME chains,
// DNAME, wildcards, a delegation, steered records with ECS regions, signed
// online (queries with DO get RRSIGs, compact denial and wildcard proofs;
// the key is made in a temporary directory). Every response must fit its
// buffer and carry the query's id.
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <filesystem>

#include "answer.h"
#include "config.h"
#include "server.h"

namespace {

constexpr const char* kZone = R"($ORIGIN example.com.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
@ IN MX 10 mail
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
www IN A 192.0.2.10
www IN AAAA 2001:db8::10
alias IN CNAME www
loop1 IN CNAME loop2
loop2 IN CNAME loop1
old IN DNAME new
new IN A 192.0.2.62
host.new IN A 192.0.2.63
dloop IN DNAME x.dloop
*.wild IN A 192.0.2.99
deleg IN NS ns1.deleg
ns1.deleg IN A 192.0.2.200
deleg IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
nods IN NS ns1.deleg
*.a IN TXT "wild"
x.y.z.a IN A 192.0.2.98
big IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789"
big IN TXT "1123456789012345678901234567890123456789012345678901234567890123456789"
)";

constexpr const char* kConfig = R"(
listen: ["127.0.0.1:0"]
zones: [{ name: example.com, file: inline }]
regions:
  - { cidr: 10.1.0.0/16, order: [east, west] }
  - { cidr: 0.0.0.0/0, order: [west, east] }
records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: a, address: 192.0.2.20, priority: 1, region: east }
      - { name: b, address: 198.51.100.20, priority: 2, region: west }
  - name: geo.example.com
    type: A
    policy: latency
    endpoints:
      - { name: e, address: 192.0.2.30, region: east }
      - { name: w, address: 198.51.100.30, region: west }
  - name: go.example.com
    type: CNAME
    policy: weighted
    endpoints:
      - { name: x, cname: www.example.com., weight: 1 }
)";

struct Fixture {
  vane::zones::StateTable states;
  std::shared_ptr<vane::zones::ZoneSet> zones;
  std::string key_dir;
  Fixture() {
    auto cfg = vane::parse_config(kConfig, "fuzz.yaml", "");
    if (!cfg) abort();
    cfg->zones[0].text = kZone;
    char tmpl[] = "/tmp/vane-fuzz-query-XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    key_dir = tmpl;
    cfg->zones[0].dnssec = {true, vane::zones::kAlgEcdsaP256, key_dir};
    auto zs = vane::server::build_zone_set(*cfg, states, true);
    if (!zs) abort();
    zones = zs.take();
  }
  ~Fixture() { std::filesystem::remove_all(key_dir); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  static vane::server::QueryContext ctx;
  static uint8_t out[65535];
  if (size < 1) return 0;
  // The first byte picks the transport and the client's address.
  bool tcp = data[0] & 1;
  sockaddr_storage peer{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&peer);
  v4->sin_family = AF_INET;
  v4->sin_addr.s_addr = htonl(0x0A010000u | data[0]);
  vane::server::set_source(ctx, peer);
  ctx.wall = 1795700000;
  size_t cap = tcp ? sizeof out : 4096;
  size_t n = vane::server::answer(*f.zones, {data + 1, size - 1}, {out, cap},
                                  tcp ? vane::server::Transport::kTcp : vane::server::Transport::kUdp, {}, ctx);
  if (n > cap) abort();
  if (n >= 2 && size >= 3 && std::memcmp(out, data + 1, 2) != 0) abort();  // the id is echoed
  return 0;
}
