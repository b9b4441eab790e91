// Failback discipline and flap damping against real endpoints (HTTP servers
// on 127.0.0.1 that the test makes fail by answering 200 without "ok"):
// `failback: manual` holds a failed-over record on its standby until
// `vanectl failback`; `failback: 3s` needs the primary healthy for 3 s in a
// row; a flapping endpoint is damped (held down) and comes back after the
// hold; a hold survives kill -9; status, /metrics and the journal say so.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

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
using namespace std::chrono_literals;

constexpr const char* kPrimary = "192.0.2.20";
constexpr const char* kStandby = "198.51.100.20";

// Checks every 200 ms, fall 2, rise 2: a verdict within ~0.4 s.
std::string config(uint16_t web1, uint16_t web2, const std::string& failback, const std::string& damping = "") {
  std::string rec = app_failover(web1, web2);
  rec.insert(rec.find("    endpoints:"), "    failback: " + failback + "\n");
  return R"(
listen: ["127.0.0.1:0"]
threads: 1
http: { listen: "127.0.0.1:0" }
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, body_contains: ok, interval: 200ms, timeout: 150ms, fall: 2, rise: 2)" +
         (damping.empty() ? "" : ", damping: " + damping) + R"( }
records:
)" + rec;
}

class Failback : public ::testing::Test {
 protected:
  void SetUp() override { dir_.write("example.com.zone", kExampleZone); }
  void start(const std::string& cfg) {
    v_.reset();
    v_ = std::make_unique<Vaned>(dir_, cfg);
  }
  std::string a() {
    auto r = query("127.0.0.1", v_->port(), "app.example.com", "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  }
  json call(const json& req) {
    auto r = admin::call(dir_.path() + "/state/admin.sock", req, 5000);
    return r ? *r : json{{"ok", false}, {"error", r.error().message}};
  }
  json record() { return call({{"cmd", "status"}})["records"][0]; }
  json history() { return call({{"cmd", "history"}, {"limit", 100}})["entries"]; }
  std::vector<json> entries(const std::string& action) {
    std::vector<json> out;
    for (const auto& e : history())
      if (e["action"] == action) out.push_back(e);
    return out;
  }
  std::string metrics() {
    httplib::Client c("127.0.0.1", http_port(v_->process()));
    auto r = c.Get("/metrics");
    return r ? r->body : "";
  }
  // The answer stays `want` for `d` (checked every 50 ms).
  bool stays(const std::string& want, std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
      if (a() != want) return false;
      std::this_thread::sleep_for(50ms);
    }
    return true;
  }
  std::string vanectl(std::vector<std::string> args, int& rc) {
    std::vector<std::string> argv{VANECTL_PATH, "-s", dir_.path() + "/state/admin.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    rc = p.wait(20000);
    return p.output();
  }
  // The primary's verdict changes `n` times (down, up, down, ...), then it
  // answers healthily again.
  void flap(Endpoint& web, int n) {
    for (int i = 0; i < n; ++i) {
      bool down = i % 2 == 0;
      web.lie(down);
      ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["health"] == (down ? "down" : "up"); }, 3000)) << i;
    }
    web.lie(false);
  }
  TempDir dir_;
  std::unique_ptr<Vaned> v_;
};

TEST_F(Failback, Manual_HoldsOnStandbyUntilVanectlFailback) {
  Endpoint web1, web2;
  start(config(web1.port(), web2.port(), "manual"));
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  EXPECT_EQ(record()["failback"], "manual");
  EXPECT_FALSE(record()["held"].get<bool>());

  web1.lie(true);
  ASSERT_TRUE(eventually([&] { return a() == kStandby; }, 3000)) << "never failed over";
  ASSERT_TRUE(eventually([&] { return record()["held"].get<bool>(); }, 2000)) << record().dump();
  // The primary is healthy again: rise (2 × 200 ms) is met long before 5 s.
  web1.lie(false);
  ASSERT_TRUE(eventually(
      [&] { return record()["endpoints"][0]["health"] == "up"; }, 3000));
  EXPECT_TRUE(stays(kStandby, 5000ms)) << "failed back without vanectl failback";

  json rec = record();
  EXPECT_TRUE(rec["held"].get<bool>());
  EXPECT_TRUE(rec["failed_over"].get<bool>());
  EXPECT_EQ(rec["tier"], 2);
  EXPECT_EQ(rec["endpoints"][0]["override"], "held");
  EXPECT_GE(rec["preferred_healthy_s"].get<int>(), 4) << rec.dump();
  std::string m = metrics();
  EXPECT_NE(m.find("vane_record_failback_held{record=\"app.example.com.\",type=\"A\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vane_record_failed_over{record=\"app.example.com.\",type=\"A\"} 1"), std::string::npos);
  int rc = 0;
  std::string out = vanectl({"status"}, rc);
  EXPECT_NE(out.find("HELD on tier 2 since"), std::string::npos) << out;
  // The status page says the same (headless Chromium).
  std::string page = rendered("http://127.0.0.1:" + std::to_string(http_port(v_->process())) + "/");
  EXPECT_NE(page.find("held on tier 2 since"), std::string::npos) << page.substr(0, 3000);
  EXPECT_NE(page.find("preferred tier healthy for"), std::string::npos);
  EXPECT_NE(out.find("vanectl failback app.example.com."), std::string::npos) << out;

  out = vanectl({"failback", "app.example.com", "--reason", "us-east resynced"}, rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("released primary"), std::string::npos) << out;
  EXPECT_EQ(a(), kPrimary);  // acknowledged = answering
  EXPECT_FALSE(record()["held"].get<bool>());

  auto holds = entries("hold"), releases = entries("failback");
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0]["record"], "app.example.com./A");
  EXPECT_EQ(holds[0]["endpoints"], json::array({"primary"}));
  EXPECT_EQ(holds[0]["from_tier"], 1);
  EXPECT_EQ(holds[0]["to_tier"], 2);
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0]["reason"], "us-east resynced");
  EXPECT_TRUE(releases[0].contains("uid"));
  EXPECT_GE(releases[0]["healthy_s"].get<int>(), 4);

  // Not held any more: a second failback is an error that says why.
  out = vanectl({"failback", "app.example.com"}, rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("is not held (failback: manual; answering from tier 1)"), std::string::npos) << out;
}

TEST_F(Failback, Duration_NeedsThePrimaryHealthyThatLongInARow) {
  Endpoint web1, web2;
  start(config(web1.port(), web2.port(), "3s"));
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  web1.lie(true);
  ASSERT_TRUE(eventually([&] { return a() == kStandby; }, 3000));
  ASSERT_TRUE(eventually([&] { return record()["held"].get<bool>(); }, 2000));
  // Up for about 2 s, then down again: no failback.
  web1.lie(false);
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["health"] == "up"; }, 3000));
  EXPECT_TRUE(stays(kStandby, 2000ms));
  web1.lie(true);
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["health"] == "down"; }, 3000));
  EXPECT_TRUE(record()["preferred_healthy_s"].is_null()) << record().dump();
  // Healthy for good: back after 3 s of health (and not before).
  web1.lie(false);
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["health"] == "up"; }, 3000));
  auto healthy_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }, 6000)) << record().dump();
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - healthy_at);
  EXPECT_GE(after.count(), 2700) << "failed back before 3 s of health";
  EXPECT_LE(after.count(), 3800);
  auto releases = entries("failback");
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0]["by"], "vaned");
  EXPECT_NE(releases[0]["reason"].get<std::string>().find("healthy for 3s"), std::string::npos) << releases[0];
  EXPECT_EQ(entries("hold").size(), 1u);
}

TEST_F(Failback, HoldSurvivesKill9) {
  Endpoint web1, web2;
  std::string cfg = config(web1.port(), web2.port(), "manual");
  start(cfg);
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  web1.lie(true);
  ASSERT_TRUE(eventually([&] { return record()["held"].get<bool>(); }, 3000))
      << record().dump() << history().dump() << v_->process().output();
  web1.lie(false);
  v_->process().signal(SIGKILL);
  v_->process().wait(5000);
  start(cfg);
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["health"] == "up"; }, 3000));
  EXPECT_TRUE(stays(kStandby, 2000ms));
  json rec = record();
  EXPECT_TRUE(rec["held"].get<bool>());
  EXPECT_TRUE(rec.contains("held_since")) << rec.dump();
  int rc = 0;
  vanectl({"failback", "app.example.com"}, rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(a(), kPrimary);
}

// Beside app, "big" (1 endpoint at tier 1 probing app's standby server,
// 16 at tier 2: more endpoints than a review's 64-bit summary holds) and
// 300 failover records with `failback: manual` and no checks (always up).
// A review skips each record whose endpoints are as they were when it last
// found nothing to do: app and then big, each steady for seconds, are held
// when they fail over, twice (the second after a release), and no other
// record ever is.
TEST_F(Failback, Manual_AmongManyRecords_EveryFailoverIsHeld_AndNoOtherRecord) {
  Endpoint web1, web2;
  std::string cfg = config(web1.port(), web2.port(), "manual");
  cfg +=
      "  - name: big.example.com\n    type: A\n    policy: failover\n    failback: manual\n    endpoints:\n"
      "      - { name: primary, address: 192.0.2.30, priority: 1, host: 127.0.0.1, port: " +
      std::to_string(web2.port()) + ", check: web }\n";
  for (int i = 1; i <= 16; ++i)
    cfg += "      - { name: s" + std::to_string(i) + ", address: 198.51.100." + std::to_string(100 + i) +
           ", priority: 2 }\n";
  for (int i = 0; i < 300; ++i)
    cfg += "  - { name: r" + std::to_string(i) +
           ".example.com, type: A, policy: failover, failback: manual, endpoints: [{ name: a, address: 192.0.2." +
           std::to_string(i % 250 + 1) + ", priority: 1 }, { name: b, address: 198.51.100.1, priority: 2 }] }\n";
  start(cfg);
  auto status = [&](const std::string& record) { return call({{"cmd", "status"}, {"filter", record}})["records"][0]; };
  auto held_records = [&] {
    std::vector<std::string> held;
    json st = call({{"cmd", "status"}});
    EXPECT_TRUE(st["ok"].get<bool>()) << st.dump().substr(0, 500);
    for (const auto& r : st["records"])
      if (r["held"].get<bool>()) held.push_back(r["name"].get<std::string>());
    return held;
  };
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  ASSERT_EQ(call({{"cmd", "status"}})["records"].size(), 302u);
  for (int round = 1; round <= 2; ++round) {
    for (auto [record, web] : {std::pair{"app.example.com", &web1}, std::pair{"big.example.com", &web2}}) {
      std::string at = std::to_string(round) + " " + record;
      std::this_thread::sleep_for(1s);  // ten reviews with nothing to do
      web->lie(true);
      ASSERT_TRUE(eventually([&] { return status(record)["held"].get<bool>(); }, 3000)) << at << status(record).dump();
      EXPECT_EQ(status(record)["tier"], 2) << at;
      EXPECT_EQ(held_records(), std::vector<std::string>{std::string(record) + "."}) << at;
      web->lie(false);
      ASSERT_TRUE(eventually([&] { return status(record)["endpoints"][0]["health"] == "up"; }, 3000)) << at;
      std::this_thread::sleep_for(500ms);
      EXPECT_TRUE(status(record)["held"].get<bool>()) << at << ": failed back without vanectl failback";
      int rc = 0;
      std::string out = vanectl({"failback", record}, rc);
      ASSERT_EQ(rc, 0) << at << out;
      EXPECT_EQ(status(record)["tier"], 1) << at;
      EXPECT_TRUE(held_records().empty()) << at;
    }
  }
  EXPECT_EQ(a(), kPrimary);
  EXPECT_EQ(entries("hold").size(), 4u);
  EXPECT_EQ(entries("failback").size(), 4u);
}

TEST_F(Failback, AdminForceDown_IsNotAFailure_NoHold) {
  Endpoint web1, web2;
  start(config(web1.port(), web2.port(), "manual"));
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  ASSERT_TRUE(call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "down"}})["ok"]);
  EXPECT_EQ(a(), kStandby);
  std::this_thread::sleep_for(600ms);
  EXPECT_FALSE(record()["held"].get<bool>());
  ASSERT_TRUE(call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "auto"}})["ok"]);
  EXPECT_EQ(a(), kPrimary);
  json r = call({{"cmd", "failback"}, {"record", "www.example.com"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  r = call({{"cmd", "failback"}, {"record", "app.example.com"}, {"path", "/etc/passwd"}});
  EXPECT_EQ(r["error"], "unknown field 'path' for failback");
}

TEST_F(Failback, Damping_FlappingEndpointIsHeldDownThenReturns) {
  Endpoint web1, web2;
  // failback: auto here: damping alone decides.
  start(config(web1.port(), web2.port(), "auto", "{ flips: 4, window: 30s, hold: 3s }"));
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  ASSERT_NO_FATAL_FAILURE(flap(web1, 5));  // down, up, down, up, down; then healthy, but held down for 3 s
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["override"] == "damped"; }, 2000)) << record().dump();
  auto damped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["health"] == "up"; }, 3000));
  EXPECT_EQ(a(), kStandby);
  auto damps = entries("damp");
  ASSERT_EQ(damps.size(), 1u);
  EXPECT_EQ(damps[0]["endpoint"], "app.example.com./A/primary");
  EXPECT_EQ(damps[0]["flips"].size(), 5u) << damps[0];
  EXPECT_NE(metrics().find("vane_endpoint_override{record=\"app.example.com.\",type=\"A\",endpoint=\"primary\",state=\"damped\"} 1"),
            std::string::npos);
  // Back after the hold, by itself, journaled as the end of the override.
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }, 5000));
  auto held = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - damped_at);
  EXPECT_GE(held.count(), 2500);
  auto ends = entries("expire");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["was"], "damped");
}

TEST_F(Failback, Damping_ForceAutoReleasesEarly_AndAHeldRecordStaysHeld) {
  Endpoint web1, web2;
  start(config(web1.port(), web2.port(), "manual", "{ flips: 2, window: 30s, hold: 2s }"));
  ASSERT_TRUE(eventually([&] { return a() == kPrimary; }));
  ASSERT_NO_FATAL_FAILURE(flap(web1, 3));
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["override"] == "damped"; }, 2000)) << record().dump();
  // The damping ends into the record's hold: still on the standby.
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["override"] == "held"; }, 4000)) << record().dump();
  EXPECT_TRUE(stays(kStandby, 1000ms));
  ASSERT_TRUE(call({{"cmd", "failback"}, {"record", "app.example.com"}})["ok"]);
  EXPECT_EQ(a(), kPrimary);
  // Damped again, then released early by an operator.
  ASSERT_NO_FATAL_FAILURE(flap(web1, 3));
  ASSERT_TRUE(eventually([&] { return record()["endpoints"][0]["override"] == "damped"; }, 2000)) << record().dump();
  ASSERT_TRUE(call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "auto"}})["ok"]);
  EXPECT_EQ(record()["endpoints"][0]["override"], "auto");
}

}  // namespace
}  // namespace vane::test
