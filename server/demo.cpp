// Embedded demo config and zone (vaned --demo). Keep it small and real: every
// kind of answer the README's walkthrough shows must come from here.
#include "demo.h"

namespace vane::server {

namespace {

constexpr const char* kDemoConfig = R"(# vaned --demo: the embedded demo config
listen: ["127.0.0.1:5300", "[::1]:5300"]
threads: 2
state_dir: ./vane-demo-state   # = kDemoStateDir
zones:
  - { name: example.com, file: example.com.zone }
)";

constexpr const char* kDemoZone = R"($ORIGIN example.com.
$TTL 300
@        3600 IN SOA  ns1 hostmaster 2026112401 7200 3600 1209600 300
@             IN NS   ns1
@             IN NS   ns2
@             IN MX   10 mail
@             IN TXT  "v=spf1 mx -all"
ns1           IN A    192.0.2.53
ns2           IN A    198.51.100.53
mail          IN A    192.0.2.25
www           IN A    192.0.2.10
www           IN AAAA 2001:db8::10
api           IN CNAME www
*.apps        IN A    192.0.2.80
_sip._udp     IN SRV  10 60 5060 mail
; a delegated child zone, with glue
eu            IN NS   ns1.eu
ns1.eu        IN A    203.0.113.53
)";

}  // namespace

Result<Config> demo_config() {
  auto cfg = parse_config(kDemoConfig, "<demo>", "");
  if (!cfg) return cfg;
  cfg->zones[0].text = kDemoZone;
  cfg->zones[0].file = "<demo>/example.com.zone";
  return cfg;
}

}  // namespace vane::server
