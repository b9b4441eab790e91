// Vantages: agent reports need the token and a well-formed body; three
// vantages (this vaned plus two `vaned agent`s) in network namespaces the
// test creates: one cut off from the endpoint → no flip; two of three → flip;
// a killed agent goes stale and is excluded; with too few fresh vantages the
// last verdict is kept.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>

#include "client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "netlab.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;

// One vaned that takes agents' reports (token "s3cret-token") on
// app.example.com's primary, which its own checker finds up.
struct ReportedServer {
  TempDir dir;
  Endpoint web;
  std::unique_ptr<Vaned> vaned;
  uint16_t port = 0;
  ReportedServer() {
    dir.write("example.com.zone", kExampleZone);
    dir.write("agent.token", "s3cret-token\n");
    vaned = std::make_unique<Vaned>(dir, std::string(R"(
listen: ["127.0.0.1:0"]
threads: 1
http: { listen: "127.0.0.1:0", token_file: agent.token }
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, interval: 200ms, timeout: 150ms, fall: 1, rise: 1, quorum: 0.5 }
records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20, host: 127.0.0.1, port: )") +
                                             std::to_string(web.port()) + R"(, priority: 1, check: web }
      - { name: standby, address: 198.51.100.20, priority: 2 }
)");
    port = http_port(vaned->process());
  }
  json primary() const {
    return (*admin::call(dir.path() + "/state/admin.sock", {{"cmd", "status"}}, 5000))["records"][0]["endpoints"][0];
  }
};

TEST(AgentReports, NeedTheTokenAndAWellFormedBody) {
  ReportedServer server;
  uint16_t port = server.port;
  ASSERT_NE(port, 0) << server.vaned->process().output();
  httplib::Client c("127.0.0.1", port);
  std::string good = R"({"vantage":"eu-1","observations":[{"endpoint":"app.example.com./A/primary","up":false}]})";
  auto r = c.Post("/v1/observations", good, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Post("/v1/observations", {{"Authorization", "Bearer wrong"}}, good, "application/json");
  EXPECT_EQ(r->status, 401);
  httplib::Headers auth{{"Authorization", "Bearer s3cret-token"}};
  for (const char* bad :
       {"not json", "[1]", R"({"vantage":"eu-1"})", R"({"vantage":"../x","observations":[]})",
        R"({"vantage":"local","observations":[]})",
        R"({"vantage":"eu-1","observations":[{"endpoint":"x","up":"yes"}]})",
        R"({"vantage":"eu-1","observations":[],"path":"/etc/passwd"})",
        R"({"vantage":"eu-1","boot":7,"observations":[]})", R"({"vantage":"eu-1","boot":0,"seq":1,"observations":[]})",
        R"({"vantage":"eu-1","boot":7,"seq":"2","observations":[]})",
        R"({"vantage":"eu-1","boot":7,"seq":4294967296,"observations":[]})"}) {
    r = c.Post("/v1/observations", auth, bad, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
  }
  r = c.Post("/v1/observations", auth, std::string(2 << 20, ' '), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_FALSE(server.primary()["vantages"].contains("eu-1")) << "nothing recorded";

  // A good report counts: with this vaned's own "up", 1 of 2 fresh vantages
  // down is at quorum 0.5: down.
  r = c.Post("/v1/observations", auth, good, "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return server.primary()["health"] == "down"; }));
  EXPECT_EQ(c.Get("/healthz")->body, "ok\n");
}

// An agent numbers its reports (boot, seq): one that arrives after a newer
// one of the same agent process is counted as stale and changes nothing; a
// restarted agent (another boot) is taken at once.
TEST(AgentReports, AnOlderReportArrivingLate_ChangesNothing_ARestartedAgentCounts) {
  ReportedServer server;
  uint16_t port = server.port;
  ASSERT_NE(port, 0) << server.vaned->process().output();
  httplib::Client c("127.0.0.1", port);
  httplib::Headers auth{{"Authorization", "Bearer s3cret-token"}};
  auto report = [&](int boot, int seq, bool up) {
    json body{{"vantage", "eu-1"},
              {"boot", boot},
              {"seq", seq},
              {"observations", {{{"endpoint", "app.example.com./A/primary"}, {"up", up}}}}};
    auto r = c.Post("/v1/observations", auth, body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  };
  auto stale = [&] { return metric(port, R"(vane_check_observations_total{vantage="eu-1",view="stale"})"); };

  report(7, 2, false);  // with this vaned's own "up": 1 of 2 down is at quorum 0.5
  ASSERT_TRUE(eventually([&] { return server.primary()["health"] == "down"; })) << server.primary().dump();
  report(7, 1, true);  // sent before it, delivered after
  ASSERT_TRUE(eventually([&] { return stale() == 1; })) << stale();
  EXPECT_FALSE(server.primary()["vantages"]["eu-1"]["up"].get<bool>()) << server.primary().dump();
  EXPECT_EQ(server.primary()["health"], "down");
  report(7, 3, false);  // the same process's next report counts as ever
  report(9, 1, true);   // restarted: its first report counts at once
  ASSERT_TRUE(eventually([&] { return server.primary()["health"] == "up"; })) << server.primary().dump();
  EXPECT_TRUE(server.primary()["vantages"]["eu-1"]["up"].get<bool>());
  EXPECT_EQ(stale(), 1);
  EXPECT_EQ(metric(port, R"(vane_check_observations_total{vantage="eu-1",view="down"})"), 2);
}

// ---------------------------------------------------------------------------
// Three vantages in network namespaces.

int sh(const std::string& cmd) {
  return system((cmd + " >/dev/null 2>&1").c_str());
}

class Namespaces {
 public:
  Namespaces() {
    tag_ = std::to_string(getpid() % 100000);
    hub_ = "vhub" + tag_;
    ok_ = sh("ip netns add " + hub_) == 0;
    if (!ok_) return;
    sh("ip -n " + hub_ + " link set lo up");
    sh("ip -n " + hub_ + " addr add 10.77.100.1/32 dev lo");  // the endpoint's address
    for (int i = 1; i <= 2; ++i) {
      std::string ns = agent_ns(i), n = std::to_string(i);
      ok_ &= sh("ip netns add " + ns) == 0;
      ok_ &= sh("ip link add vh" + n + "-" + tag_ + " netns " + hub_ + " type veth peer name va" + n + "-" + tag_ +
                " netns " + ns) == 0;
      sh("ip -n " + ns + " link set lo up");
      sh("ip -n " + hub_ + " addr add 10.77." + n + ".1/24 dev vh" + n + "-" + tag_);
      sh("ip -n " + ns + " addr add 10.77." + n + ".2/24 dev va" + n + "-" + tag_);
      sh("ip -n " + hub_ + " link set vh" + n + "-" + tag_ + " up");
      sh("ip -n " + ns + " link set va" + n + "-" + tag_ + " up");
      ok_ &= sh("ip -n " + ns + " route add 10.77.100.1/32 via 10.77." + n + ".1") == 0;
    }
  }
  ~Namespaces() {
    for (int i = 1; i <= 2; ++i) sh("ip netns del " + agent_ns(i));
    sh("ip netns del " + hub_);
  }
  bool ok() const { return ok_; }
  const std::string& hub() const { return hub_; }
  std::string agent_ns(int i) const { return "vag" + std::to_string(i) + "-" + tag_; }
  void cut(int i, bool off) {
    sh("ip -n " + agent_ns(i) + " route replace " +
       (off ? "blackhole 10.77.100.1/32" : "10.77.100.1/32 via 10.77." + std::to_string(i) + ".1"));
  }

 private:
  std::string tag_, hub_;
  bool ok_ = false;
};

// An HTTP endpoint served from inside a namespace: its thread joins the
// namespace before it opens the socket.
class NsEndpoint {
 public:
  NsEndpoint(const std::string& ns, uint16_t port) {
    thread_ = std::thread([this, ns, port] {
      std::optional<NetLab::Inside> in;
      try {
        in.emplace(ns);
      } catch (const std::exception&) {
        ready_ = -1;
        return;
      }
      server_.Get("/health",
                  [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
      ready_ = server_.bind_to_port("10.77.100.1", port) ? 1 : -1;
      if (ready_ == 1) server_.listen_after_bind();
    });
    while (ready_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~NsEndpoint() {
    server_.stop();
    thread_.join();
  }
  bool ok() const { return ready_ == 1; }

 private:
  httplib::Server server_;
  std::atomic<int> ready_{0};
  std::thread thread_;
};

// An agent with no config: fetches what to probe from GET /v1/targets (with
// the token), reports on it, and follows a reload of the main instance.
TEST(AgentTargets, FetchedFromTheMainInstance_AndFollowItsReloads) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  dir.write("agent.token", "t0ken\n");
  Endpoint web1, web2;
  auto cfg = [&](bool more) {
    std::string c = "listen: [\"127.0.0.1:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\", token_file: agent.token }\n"
                    "zones: [{ name: example.com, file: example.com.zone }]\n"
                    "checks:\n  web: { type: http, path: /health, interval: 200ms, timeout: 150ms, fall: 2, rise: 2 }\n"
                    "records:\n" + app_failover(web1.port());
    if (more)
      c += "  - name: new.example.com\n    type: A\n    endpoints:\n      - { name: n1, address: 192.0.2.77, host: "
           "127.0.0.1, port: " + std::to_string(web2.port()) + ", check: web }\n";
    return c;
  };
  Vaned v(dir, cfg(false));
  uint16_t http = http_port(v.process());
  httplib::Client c("127.0.0.1", http);
  EXPECT_EQ(c.Get("/v1/targets")->status, 401);
  auto r = c.Get("/v1/targets", {{"Authorization", "Bearer t0ken"}});
  ASSERT_TRUE(r && r->status == 200);
  json doc = json::parse(r->body);
  ASSERT_EQ(doc["targets"].size(), 1u);
  EXPECT_EQ(doc["targets"][0]["endpoint"], "app.example.com./A/primary");
  EXPECT_EQ(doc["targets"][0]["port"], web1.port());
  EXPECT_EQ(doc["targets"][0]["check"]["interval_ms"], 200);
  std::string first_version = doc["version"];
  EXPECT_EQ(first_version.size(), 16u);
  // The shared form: each check once, named by its targets; the same version.
  r = c.Get("/v1/targets?checks=shared", {{"Authorization", "Bearer t0ken"}});
  ASSERT_TRUE(r && r->status == 200);
  json shared = json::parse(r->body);
  EXPECT_EQ(shared["version"], first_version);
  ASSERT_EQ(shared["targets"].size(), 1u);
  EXPECT_EQ(shared["targets"][0]["endpoint"], "app.example.com./A/primary");
  EXPECT_EQ(shared["targets"][0]["check"], "web");
  EXPECT_EQ(shared["checks"]["web"], doc["targets"][0]["check"]);
  // The version the agent has: 304, nothing to read; another: the document.
  r = c.Get("/v1/targets?checks=shared",
            {{"Authorization", "Bearer t0ken"}, {"If-None-Match", "\"" + first_version + "\""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  EXPECT_EQ(r->body, "");
  r = c.Get("/v1/targets", {{"Authorization", "Bearer t0ken"}, {"If-None-Match", "\"0000000000000000\""}});
  ASSERT_TRUE(r && r->status == 200);
  EXPECT_EQ(json::parse(r->body), doc);
  EXPECT_EQ(c.Get("/v1/targets?checks=shared", {{"If-None-Match", "\"" + first_version + "\""}})->status, 401)
      << "no token, no answer";

  std::string agent_yaml = dir.write("agent.yaml", "vantage: remote-1\nreport_to: http://127.0.0.1:" +
                                                      std::to_string(http) +
                                                      "\ntoken_file: agent.token\nreport_interval: 200ms\n"
                                                      "targets_refresh: 500ms\n");
  Process agent({vaned_path(), "agent", "--config", agent_yaml});
  auto vantages_of = [&](const std::string& record) {
    auto s = admin::call(dir.path() + "/state/admin.sock", {{"cmd", "status"}}, 5000);
    if (!s) return json();
    for (const auto& rec : (*s)["records"])
      if (rec["name"] == record) return rec["endpoints"][0].value("vantages", json());
    return json();
  };
  ASSERT_TRUE(eventually([&] { return vantages_of("app.example.com.").contains("remote-1"); }, 5000))
      << agent.output();
  EXPECT_TRUE(vantages_of("app.example.com.")["remote-1"]["up"].get<bool>());

  // The main instance gains an endpoint: the agent probes it too.
  dir.write("vane.yaml", cfg(true));
  auto reloaded = admin::call(dir.path() + "/state/admin.sock", {{"cmd", "reload"}}, 5000);
  ASSERT_TRUE(reloaded && (*reloaded)["ok"].get<bool>());
  r = c.Get("/v1/targets", {{"Authorization", "Bearer t0ken"}});
  EXPECT_NE(json::parse(r->body)["version"], first_version);
  ASSERT_TRUE(eventually([&] { return vantages_of("new.example.com.").contains("remote-1"); }, 5000))
      << agent.output();
  EXPECT_NE(agent.output().find("targets changed"), std::string::npos);

  // A wrong token: the agent says so and keeps trying.
  dir.write("bad.token", "nope\n");
  std::string bad_yaml = dir.write("bad.yaml", "vantage: remote-2\nreport_to: http://127.0.0.1:" + std::to_string(http) +
                                                   "\ntoken_file: bad.token\n");
  Process bad({vaned_path(), "agent", "--config", bad_yaml});
  EXPECT_TRUE(bad.wait_for_output("HTTP 401 (wrong token?)", 5000)) << bad.output();
}

TEST(Vantages, QuorumStalenessAndMinVantagesAcrossNamespaces) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  Namespaces net;
  if (!net.ok()) GTEST_SKIP() << "cannot create network namespaces here (ip netns add failed)";
  NsEndpoint web(net.hub(), 18080);
  ASSERT_TRUE(web.ok());

  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  dir.write("agent.token", "t0ken\n");
  std::string cfg = dir.write("vane.yaml", R"(
listen: ["127.0.0.1:0"]
threads: 1
vantage: hub
http: { listen: "0.0.0.0:18053", token_file: agent.token }
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, interval: 300ms, timeout: 200ms, fall: 2, rise: 2, quorum: 0.5, min_vantages: 2 }
records:
  - name: app.example.com
    type: A
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20, host: 10.77.100.1, port: 18080, priority: 1, check: web }
      - { name: standby, address: 198.51.100.20, priority: 2 }
)");
  Process main({"ip", "netns", "exec", net.hub(), vaned_path(), "--config", cfg});
  ASSERT_TRUE(main.wait_for_output("ready:", 20000)) << main.output();
  std::vector<std::unique_ptr<Process>> agents;
  for (int i = 1; i <= 2; ++i) {
    std::string a = dir.write("agent" + std::to_string(i) + ".yaml",
                              "vantage: a" + std::to_string(i) + "\nreport_to: http://10.77." + std::to_string(i) +
                                  ".1:18053\ntoken_file: agent.token\nconfig: vane.yaml\nreport_interval: 200ms\n");
    agents.push_back(std::make_unique<Process>(
        std::vector<std::string>{"ip", "netns", "exec", net.agent_ns(i), vaned_path(), "agent", "--config", a}));
  }
  auto primary = [&] {
    auto r = admin::call(dir.path() + "/state/admin.sock", {{"cmd", "status"}}, 5000);
    return r ? (*r)["records"][0]["endpoints"][0] : json();
  };
  auto fresh = [&](const json& e, const char* v) {
    return e["vantages"].contains(v) && e["vantages"][v]["fresh"].get<bool>();
  };
  ASSERT_TRUE(eventually(
      [&] {
        json e = primary();
        return fresh(e, "hub") && fresh(e, "a1") && fresh(e, "a2");
      },
      10000))
      << primary().dump() << "\n"
      << agents[0]->output();
  EXPECT_EQ(primary()["health"], "up");

  // One of three cut off: it says down, the verdict stays up.
  net.cut(1, true);
  ASSERT_TRUE(eventually([&] { return primary()["vantages"]["a1"]["up"] == false; }, 5000)) << primary().dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(primary()["health"], "up") << primary().dump();

  // Two of three: down.
  net.cut(2, true);
  EXPECT_TRUE(eventually([&] { return primary()["health"] == "down"; }, 5000)) << primary().dump();

  // a2 killed: it goes stale (3 intervals) and is left out; hub up + a1 down
  // is still at quorum: down.
  agents[1]->signal(SIGKILL);
  agents[1]->wait(5000);
  EXPECT_TRUE(eventually([&] { return !fresh(primary(), "a2"); }, 5000)) << primary().dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(primary()["health"], "down");

  // a1 killed too: one fresh vantage (hub, which says up) is below
  // min_vantages 2: the last verdict is kept.
  agents[0]->signal(SIGKILL);
  agents[0]->wait(5000);
  EXPECT_TRUE(eventually([&] { return !fresh(primary(), "a1"); }, 5000)) << primary().dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(primary()["health"], "down") << primary().dump();
  EXPECT_TRUE(fresh(primary(), "hub"));
  EXPECT_EQ(primary()["vantages"]["hub"]["up"], true);
}

}  // namespace
}  // namespace vane::test
