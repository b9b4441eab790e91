// The health checker against real endpoints the test starts and stops (HTTP
// servers on 127.0.0.1, a second vaned for DNS checks): answers follow
// health within interval×fall, come back after rise, a 200 without the
// expected body is down, verdicts are journaled and survive a restart;
// endpoints that hang, stall TLS or answer every other time.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "client.h"
#include "dns_client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;

std::string config(uint16_t web1, uint16_t web2, const std::string& interval = "200ms") {
  return R"(
listen: ["127.0.0.1:0"]
threads: 1
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, expect_status: [200], body_contains: ok, interval: )" +
         interval + R"(, timeout: 150ms, fall: 3, rise: 2 }
records:
)" + app_failover(web1, web2);
}

class Health : public ::testing::Test {
 protected:
  void SetUp() override { dir_.write("example.com.zone", kExampleZone); }
  std::string a(const Vaned& v) {
    auto r = query("127.0.0.1", v.port(), "app.example.com", "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  }
  json history() {
    auto r = admin::call(dir_.path() + "/state/admin.sock", {{"cmd", "history"}, {"limit", 50}}, 5000);
    return r ? (*r)["entries"] : json::array();
  }
  // Milliseconds until the answer becomes `want` (or -1).
  int ms_until(const Vaned& v, const std::string& want, int limit_ms) {
    auto t0 = std::chrono::steady_clock::now();
    while (true) {
      int ms =
          int(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
      if (a(v) == want) return ms;
      if (ms > limit_ms) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  TempDir dir_;
};

TEST_F(Health, EndpointDown_AnswerMovesWithinIntervalTimesFall_AndBackAfterRise) {
  Endpoint web1, web2;
  Vaned v(dir_, config(web1.port(), web2.port()));
  ASSERT_TRUE(eventually([&] { return a(v) == "192.0.2.20"; }));
  web1.stop();
  int down_ms = ms_until(v, "198.51.100.20", 5000);
  ASSERT_GE(down_ms, 0) << "never failed over";
  EXPECT_LE(down_ms, 200 * 3 + 500) << "interval×fall + 0.5 s";
  web1.start();
  int up_ms = ms_until(v, "192.0.2.20", 5000);
  ASSERT_GE(up_ms, 0) << "never came back";
  EXPECT_LE(up_ms, 200 * 2 + 500) << "interval×rise + 0.5 s";
  json h = history();
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h[h.size() - 2]["action"], "health");
  EXPECT_EQ(h[h.size() - 2]["to"], "down");
  EXPECT_EQ(h[h.size() - 2]["endpoint"], "app.example.com./A/primary");
  EXPECT_EQ(h.back()["to"], "up");
  // The journal says what each vantage saw.
  EXPECT_NE(h[h.size() - 2]["detail"].get<std::string>().find("local: down"), std::string::npos) << h.dump();
  EXPECT_NE(h.back()["detail"].get<std::string>().find("local: up 'http 200'"), std::string::npos) << h.dump();
}

TEST_F(Health, OkStatusWithoutTheBody_IsDown) {
  Endpoint web1, web2;
  Vaned v(dir_, config(web1.port(), web2.port()));
  ASSERT_TRUE(eventually([&] { return a(v) == "192.0.2.20"; }));
  web1.lie(true);  // "half there and lying": 200, but not ok
  ASSERT_GE(ms_until(v, "198.51.100.20", 5000), 0);
  std::string detail;
  for (const auto& e : history())
    if (e["action"] == "health") detail = e["detail"];
  EXPECT_NE(detail.find("without \"ok\" in the body"), std::string::npos) << detail;
  web1.lie(false);
  EXPECT_GE(ms_until(v, "192.0.2.20", 5000), 0);
}

TEST_F(Health, StoredVerdict_HoldsAcrossARestartUntilProbesDecide) {
  Endpoint web1, web2;
  uint16_t p1 = web1.port();
  {
    Vaned v(dir_, config(p1, web2.port()));
    web1.stop();
    ASSERT_GE(ms_until(v, "198.51.100.20", 5000), 0);
  }
  // Long interval: no probe for a while; the stored "down" must hold.
  Vaned v(dir_, config(p1, web2.port(), "60s"));
  EXPECT_EQ(a(v), "198.51.100.20");
  json s = *admin::call(dir_.path() + "/state/admin.sock", {{"cmd", "status"}}, 5000);
  EXPECT_EQ(s["records"][0]["endpoints"][0]["health"], "down");
}

TEST_F(Health, TcpAndDnsChecks) {
  // The DNS endpoint is another vaned; the TCP endpoint an HTTP server's port.
  TempDir backend_dir;
  backend_dir.write("example.com.zone", kExampleZone);
  auto backend = std::make_unique<Vaned>(
      backend_dir, "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: example.com.zone }]\n");
  Endpoint web;
  std::string cfg = std::string(R"(
listen: ["127.0.0.1:0"]
threads: 1
zones: [{ name: example.com, file: example.com.zone }]
checks:
  dns: { type: dns, qname: example.com, qtype: SOA, expect_rcode: NOERROR, interval: 200ms, timeout: 150ms, fall: 2, rise: 1 }
  tcp: { type: tcp, interval: 200ms, timeout: 150ms, fall: 2, rise: 1 }
records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: ns, address: 192.0.2.20, host: 127.0.0.1, port: )") +
                    std::to_string(backend->port()) + R"(, priority: 1, check: dns }
      - { name: web, address: 198.51.100.20, host: 127.0.0.1, port: )" +
                    std::to_string(web.port()) +
                    R"(, priority: 2, check: tcp }
      - { name: last, address: 203.0.113.20, priority: 3 }
)";
  Vaned v(dir_, cfg);
  ASSERT_TRUE(eventually([&] { return a(v) == "192.0.2.20"; }));
  backend.reset();  // DNS endpoint gone: tier 2 (TCP) answers
  EXPECT_GE(ms_until(v, "198.51.100.20", 3000), 0);
  web.stop();  // and that one too: tier 3, which has no check, answers
  EXPECT_GE(ms_until(v, "203.0.113.20", 3000), 0);
}

TEST_F(Health, LatencyMeasured_FollowsTheProbesRtt) {
  Endpoint fast, slow;
  slow.delay(60);
  std::string cfg = R"(
listen: ["127.0.0.1:0"]
threads: 1
vantage: probe-1
zones: [{ name: example.com, file: example.com.zone }]
regions:
  - { cidr: 0.0.0.0/0, order: [r1, r2], vantage: probe-1 }
checks:
  web: { type: http, path: /health, interval: 150ms, timeout: 140ms, fall: 3, rise: 1 }
records:
  - name: app.example.com
    type: A
    policy: latency
    latency_source: measured
    endpoints:
      - { name: one, address: 192.0.2.1, region: r1, host: 127.0.0.1, port: )" +
                    std::to_string(slow.port()) + R"(, check: web }
      - { name: two, address: 192.0.2.2, region: r2, host: 127.0.0.1, port: )" +
                    std::to_string(fast.port()) + R"(, check: web }
)";
  Vaned v(dir_, cfg);
  auto steady = [&](const std::string& want) {  // every answer, once 5+ probes have settled the medians
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    for (int i = 0; i < 50; ++i)
      if (a(v) != want) return false;
    return true;
  };
  // r1 comes first by region order, but two answers faster.
  EXPECT_TRUE(steady("192.0.2.2"));
  fast.delay(60);
  slow.delay(0);
  EXPECT_TRUE(steady("192.0.2.1")) << "the median follows within a few probes";
}

TEST_F(Health, Https_VerifiesByDefaultAndCanBeToldNotTo) {
  std::string key = dir_.path() + "/key.pem", cert = dir_.path() + "/cert.pem";
  Process gen({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
               "-subj", "/CN=vane.test", "-addext", "subjectAltName=DNS:vane.test"});
  ASSERT_EQ(gen.wait(30000), 0) << gen.output();
  httplib::SSLServer tls(cert.c_str(), key.c_str());
  tls.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  int port = tls.bind_to_any_port("127.0.0.1");
  std::thread t([&] { tls.listen_after_bind(); });
  std::string common = R"(
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20, host: 127.0.0.1, port: )" +
                       std::to_string(port) + R"(, priority: 1, check: CHECK }
      - { name: standby, address: 198.51.100.20, priority: 2 }
)";
  auto record = [&](const std::string& name, const std::string& check) {
    std::string r = "  - name: " + name + "\n    type: A" + common;
    return r.replace(r.find("CHECK"), 5, check);
  };
  Vaned v(dir_, R"(
listen: ["127.0.0.1:0"]
threads: 1
zones: [{ name: example.com, file: example.com.zone }]
checks:
  trusting: { type: https, host: vane.test, path: /health, tls_verify: false, interval: 500ms, timeout: 400ms, fall: 2, rise: 1 }
  strict: { type: https, host: vane.test, path: /health, interval: 500ms, timeout: 400ms, fall: 2, rise: 1 }
records:
)" + record("app.example.com", "trusting") +
                    record("strict.example.com", "strict"));
  auto answer = [&](const char* name) {
    auto r = query("127.0.0.1", v.port(), name, "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  };
  // The self-signed certificate fails verification: down, the standby answers.
  // (A TLS handshake under ASan on a busy 2-core CI machine can take over
  // 150 ms: the timeouts leave room for it.)
  EXPECT_TRUE(eventually([&] { return answer("strict.example.com") == "198.51.100.20"; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(answer("app.example.com"), "192.0.2.20") << "tls_verify: false accepts it";
  std::string detail;
  for (const auto& e : history())
    if (e["endpoint"] == "strict.example.com./A/primary") detail = e["detail"];
  EXPECT_NE(detail.find("SSL"), std::string::npos) << detail;
  tls.stop();
  t.join();
}

// Gray failures: endpoints that are half there and lying. A server that
// accepts and never answers, and a TLS handshake that stalls, are down
// within interval x fall + timeout — and while their probes hang, another
// endpoint's failure is still seen on time (the checker waits on no probe).
TEST_F(Health, HangingProbesAndStalledTls_AreDown_AndDoNotDelayOtherChecks) {
  Tarpit pit;
  Endpoint web;
  auto record = [](const std::string& name, uint16_t port, const std::string& check) {
    return "  - name: " + name + "\n    type: A\n    policy: failover\n    endpoints:\n"
           "      - { name: primary, address: 192.0.2.20, host: 127.0.0.1, port: " + std::to_string(port) +
           ", priority: 1, check: " + check + " }\n"
           "      - { name: standby, address: 198.51.100.20, priority: 2 }\n";
  };
  Vaned v(dir_, R"(
listen: ["127.0.0.1:0"]
threads: 1
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, interval: 200ms, timeout: 150ms, fall: 2, rise: 1 }
  tls: { type: https, host: vane.test, path: /health, tls_verify: false, interval: 200ms, timeout: 150ms, fall: 2, rise: 1 }
records:
)" + record("app.example.com", web.port(), "web") + record("hang.example.com", pit.port(), "web") +
                    record("tls.example.com", pit.port(), "tls"));
  auto answer = [&](const std::string& name) {
    auto r = query("127.0.0.1", v.port(), name, "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  };
  for (const char* name : {"hang.example.com", "tls.example.com"})
    EXPECT_TRUE(eventually([&] { return answer(name) == "198.51.100.20"; }, 2000)) << name;
  EXPECT_EQ(answer("app.example.com"), "192.0.2.20");
  for (const char* ep : {"hang.example.com./A/primary", "tls.example.com./A/primary"}) {
    std::string detail;
    for (const auto& e : history())
      if (e["endpoint"] == ep) detail = e["detail"];
    EXPECT_NE(detail.find("imeout"), std::string::npos) << ep << ": " << detail;  // "Timeout was reached"
  }
  // The tarpit still holds every probe to its timeout; the web endpoint dies.
  uint64_t held_before = pit.accepted();
  web.stop();
  int down_ms = ms_until(v, "198.51.100.20", 5000);
  ASSERT_GE(down_ms, 0) << "never failed over";
  EXPECT_LE(down_ms, 200 * 2 + 500) << "interval x fall + 0.5 s, hung probes or not";
  EXPECT_GE(pit.accepted(), held_before + 2) << "the hanging probes went on meanwhile";
}

// An endpoint that answers 200 only every other time: with fall 2 it is
// never two failures in a row — never down; once down, with rise 2 it is
// never two successes in a row — never up. The verdicts follow fall and rise
// exactly: one flip each way, journaled.
TEST_F(Health, AnEndpointUpEveryOtherTime_FollowsFallAndRiseExactly) {
  Endpoint web1, web2;
  Vaned v(dir_, R"(
listen: ["127.0.0.1:0"]
threads: 1
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, expect_status: [200], body_contains: ok, interval: 200ms, timeout: 190ms, fall: 2, rise: 2 }
records:
)" + app_failover(web1.port(), web2.port()));
  ASSERT_TRUE(eventually([&] { return a(v) == "192.0.2.20"; }));
  auto steady = [&](const std::string& want, int probes) {
    uint64_t until = web1.requests() + uint64_t(probes);
    while (web1.requests() < until) {
      if (a(v) != want) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  };
  web1.alternate(true);
  EXPECT_TRUE(steady("192.0.2.20", 14)) << "up every other time: never two failures in a row";
  web1.alternate(false);
  web1.lie(true);  // down for good: two failures
  EXPECT_TRUE(eventually([&] { return a(v) == "198.51.100.20"; }, 3000));
  web1.lie(false);
  web1.alternate(true);  // a success, then a failure, ...: never two successes in a row
  EXPECT_TRUE(steady("198.51.100.20", 14)) << "never two successes in a row";
  web1.alternate(false);
  EXPECT_TRUE(eventually([&] { return a(v) == "192.0.2.20"; }, 3000));
  std::vector<std::string> flips;
  for (const auto& e : history())
    if (e["action"] == "health" && e["endpoint"] == "app.example.com./A/primary") flips.push_back(e["to"]);
  EXPECT_EQ(flips, (std::vector<std::string>{"down", "up"}));
}

TEST(HealthConfig, ErrorsNameFileAndLine) {
  struct Case {
    std::string yaml, want;
  } cases[] = {
      {"checks:\n  web: { type: smtp }\n", "vane.yaml:3: check web: type must be tcp, http, https or dns"},
      {"checks:\n  web: { type: http, interval: 1s, timeout: 2s }\n",
       "timeout must be above 0 and at most the interval"},
      {"checks:\n  web: { type: http, quorum: 2 }\n", "quorum must be a fraction"},
      {"checks:\n  d: { type: dns }\n", "a dns check needs qname"},
      {"records:\n  - name: x.example.com\n    type: A\n    endpoints: [{ name: a, address: 192.0.2.1, check: nope "
       "}]\n",
       "vane.yaml:5: endpoint a: no check named 'nope'"},
      {"checks:\n  t: { type: tcp }\nrecords:\n  - name: x.example.com\n    type: A\n"
       "    endpoints: [{ name: a, address: 192.0.2.1, check: t }]\n",
       "its tcp check needs a port"},
      {"records:\n  - name: x.example.com\n    type: A\n    endpoints: [{ name: a, address: 192.0.2.1, host: web.local "
       "}]\n",
       "host must be an IP address"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    dir.write("example.com.zone", kExampleZone);
    std::string cfg = dir.write("vane.yaml", "zones: [{ name: example.com, file: example.com.zone }]\n" + c.yaml);
    Process p({vaned_path(), "--check-config", cfg});
    EXPECT_EQ(p.wait(20000), 1) << c.yaml;
    EXPECT_NE(p.output().find(c.want), std::string::npos) << "want: " << c.want << "\ngot: " << p.output();
  }
}

}  // namespace
}  // namespace vane::test
