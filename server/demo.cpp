// Embedded demo config and zone (vaned --demo). Keep it small and real: every
// kind of answer the README's walkthrough shows must come from here.
#include "demo.h"

#include <httplib.h>

#include "log.h"

namespace vane::server {

namespace {

constexpr const char* kDemoConfig = R"(# vaned --demo: the embedded demo config
listen: ["127.0.0.1:5300", "[::1]:5300"]
threads: 2
state_dir: ./vane-demo-state   # = kDemoStateDir
http: { listen: "127.0.0.1:8053" }   # status page at /, /metrics, /healthz
zones:
  - { name: example.com, file: example.com.zone, transfer: { allow: [{ cidr: 127.0.0.0/8 }] } }

# Client networks -> regions, nearest first (longest prefix wins).
# Health checks against the two local endpoints the demo itself starts
# (127.0.0.1:5380 plays us-east-1, :5381 us-east-2). Break one with
#   curl 127.0.0.1:5380/fail      (and /recover to mend it)
checks:
  web: { type: http, path: /health, expect_status: [200], body_contains: ok,
         interval: 1s, timeout: 500ms, fall: 2, rise: 2 }

regions:
  - { cidr: 10.1.0.0/16, order: [us-east-1, us-east-2] }
  - { cidr: 10.2.0.0/16, order: [us-east-2, us-east-1] }
  - { cidr: 0.0.0.0/0,   order: [us-east-1, us-east-2] }
  - { cidr: "::/0",      order: [us-east-1, us-east-2] }

records:
  # The Route 53 style 255/0 flip: all traffic on use1 until an operator
  # moves it (vanectl weight www.example.com use1 0; ... use2 255).
  - name: www.example.com
    type: A
    ttl: 60
    policy: weighted
    endpoints:
      - { name: use1, address: 192.0.2.10,    weight: 255, region: us-east-1, check: web, host: 127.0.0.1, port: 5380 }
      - { name: use2, address: 198.51.100.10, weight: 0,   region: us-east-2, check: web, host: 127.0.0.1, port: 5381 }
  # Hot primary, warm standby: tier 2 answers only when tier 1 is down.
  - name: app.example.com
    type: A
    ttl: 30
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20,    priority: 1, region: us-east-1, check: web, host: 127.0.0.1, port: 5380 }
      - { name: standby, address: 198.51.100.20, priority: 2, region: us-east-2, check: web, host: 127.0.0.1, port: 5381 }
  # Nearest region for the client (ECS subnet, else the source address).
  - name: cdn.example.com
    type: A
    ttl: 60
    policy: latency
    endpoints:
      - { name: east1, address: 192.0.2.30,    region: us-east-1 }
      - { name: east2, address: 198.51.100.30, region: us-east-2 }
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
; www A, app A and cdn A are steered records (see records: in the config)
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

struct DemoEndpoints::Site {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> failing{false};
};

DemoEndpoints::DemoEndpoints() = default;

DemoEndpoints::~DemoEndpoints() {
  for (auto& s : sites_) {
    s->server.stop();
    if (s->thread.joinable()) s->thread.join();
  }
}

std::optional<Error> DemoEndpoints::start() {
  for (uint16_t port : {kDemoEndpointPorts[0], kDemoEndpointPorts[1]}) {
    auto site = std::make_unique<Site>();
    Site* s = site.get();
    s->server.Get("/health", [s](const httplib::Request&, httplib::Response& res) {
      if (s->failing) res.status = 503;
      res.set_content(s->failing ? "failing (GET /recover to mend)\n" : "ok\n", "text/plain");
    });
    s->server.Get("/fail", [s, port](const httplib::Request&, httplib::Response& res) {
      s->failing = true;
      VANE_INFO("demo endpoint 127.0.0.1:%u now fails its health check", unsigned(port));
      res.set_content("failing\n", "text/plain");
    });
    s->server.Get("/recover", [s, port](const httplib::Request&, httplib::Response& res) {
      s->failing = false;
      VANE_INFO("demo endpoint 127.0.0.1:%u is healthy again", unsigned(port));
      res.set_content("ok\n", "text/plain");
    });
    if (!s->server.bind_to_port("127.0.0.1", port))
      return Error{"<demo>", 0, "cannot listen on 127.0.0.1:" + std::to_string(port) + " for the demo endpoints"};
    s->thread = std::thread([s] { s->server.listen_after_bind(); });
    sites_.push_back(std::move(site));
  }
  return std::nullopt;
}

}  // namespace vane::server
