// Failover as clients see it (DESIGN.md "Drills, ramps and TTLs"): through a
// real caching resolver (Unbound on 127.0.0.1, vane as its stub zone), a
// drill that lowered the TTL ahead of time moves clients within the lowered
// TTL of its start and end; an endpoint that wobbled and then dies moves
// them within interval × fall + ttl_unsteady. Drills survive restarts and can
// be listed and cancelled; a weight ramp follows its plan, resumes after
// kill -9 and ends at any other change.
#include <gtest/gtest.h>

#include <cstdio>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "client.h"
#include "dns_client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"
#include "unbound.h"

namespace vane::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPrimary = "192.0.2.20";
constexpr const char* kStandby = "198.51.100.20";

std::string app_record(const std::string& extra, uint16_t web1 = 0, int ttl = 30) {
  std::string rec = app_failover(web1);
  rec.insert(rec.find("    endpoints:"), "    ttl: " + std::to_string(ttl) + "\n" + extra);
  return rec;
}

std::string config(const std::string& records, const std::string& checks = "") {
  return "listen: [\"127.0.0.1:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\" }\n"
         "zones: [{ name: example.com, file: example.com.zone }]\n" + checks +
         "records:\n" + records;
}

// Wall clock (the drill's times are wall-clock ms).
uint64_t wall_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

class ClientFailover : public ::testing::Test {
 protected:
  void SetUp() override { dir_.write("example.com.zone", kExampleZone); }
  void start(const std::string& cfg) {
    cfg_ = cfg;
    v_.reset();
    v_ = std::make_unique<Vaned>(dir_, cfg);
  }
  void kill9_and_restart() {
    v_->process().signal(SIGKILL);
    v_->process().wait(5000);
    start(cfg_);
  }
  json call(const json& req) {
    auto r = admin::call(dir_.path() + "/state/admin.sock", req, 5000);
    return r ? *r : json{{"ok", false}, {"error", r.error().message}};
  }
  json record(const std::string& name = "app.example.com.") {
    json s = call({{"cmd", "status"}});
    for (const auto& r : s["records"])
      if (r["name"] == name) return r;
    return json();
  }
  std::vector<json> journal(const std::string& action) {
    std::vector<json> out;
    json h = call({{"cmd", "history"}, {"limit", 200}});  // (not a range-for over the temporary's member)
    for (const auto& e : h["entries"])
      if (e["action"] == action) out.push_back(e);
    return out;
  }
  // The address and TTL a client gets (directly from vaned, or through `port`).
  std::pair<std::string, int> ask(uint16_t port, const std::string& name = "app.example.com") {
    auto r = query("127.0.0.1", port, name, "A", {.timeout_ms = 1000});
    if (!r || r->answer.empty()) return {"<none>", -1};
    const std::string& rr = r->answer[0];  // "owner ttl IN A address"
    size_t sp1 = rr.find(' '), sp2 = rr.find(' ', sp1 + 1);
    return {rr.substr(rr.rfind(' ') + 1), std::stoi(rr.substr(sp1 + 1, sp2 - sp1 - 1))};
  }
  // Polls through `port` every 100 ms until the answer is `want`; returns the
  // wall-clock ms it was first seen, or 0 at `deadline_ms`.
  uint64_t seen_at(uint16_t port, const std::string& want, uint64_t deadline_ms) {
    while (wall_ms() < deadline_ms) {
      if (ask(port).first == want) return wall_ms();
      std::this_thread::sleep_for(100ms);
    }
    return 0;
  }
  TempDir dir_;
  std::string cfg_;
  std::unique_ptr<Vaned> v_;
};

TEST_F(ClientFailover, Drill_LowersTheTtlAhead_ClientsBehindUnboundMoveWithinIt) {
  // A 10 s TTL rather than the usual 30 s or more: the same steps, a shorter wait.
  start(config(app_record("", 0, 10)));
  Unbound resolver({"example.com"}, v_->port());
  // A client's resolver holds the 10 s answer from before the drill was planned.
  auto before = ask(resolver.port());
  ASSERT_EQ(before.first, kPrimary) << resolver.output();
  EXPECT_GT(before.second, 7);

  json d = call({{"cmd", "drill"},
                 {"record", "app.example.com"},
                 {"endpoint", "primary"},
                 {"at", "+15s"},
                 {"for", "8s"},
                 {"lower_ttl", 3},
                 {"reason", "client-seen drill"}});
  ASSERT_TRUE(d["ok"].get<bool>()) << d.dump();
  uint64_t start = d["start_ms"], end = d["end_ms"];
  // start − 10 s − 5 s is now: answers carry the lowered TTL at once.
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).second == 3; }, 2000)) << record().dump();
  EXPECT_EQ(record()["ttl_now"], 3);
  json list = call({{"cmd", "drill"}, {"action", "list"}});
  ASSERT_EQ(list["drills"].size(), 1u);
  EXPECT_GT(list["drills"][0]["starts_in_s"].get<int>(), 10);

  uint64_t moved = seen_at(resolver.port(), kStandby, end);
  ASSERT_NE(moved, 0u) << "clients never saw the standby";
  EXPECT_GE(moved + 1000, start) << "moved before the drill started";  // (whole seconds in the drill's times)
  EXPECT_LE(moved, start + 3000 + 1000) << "lowered TTL (3 s) + 1 s after the drill's start";
  uint64_t back = seen_at(resolver.port(), kPrimary, end + 15000);
  ASSERT_NE(back, 0u) << "clients never got the primary back";
  EXPECT_LE(back, end + 3000 + 1000) << "lowered TTL (3 s) + 1 s after the drill's end";
  // With the countdown, about at the start and at the end (polled every 100 ms).
  std::printf("clients moved %+lld ms from the drill's start, back %+lld ms from its end\n",
              static_cast<long long>(moved) - static_cast<long long>(start),
              static_cast<long long>(back) - static_cast<long long>(end));
  RecordProperty("moved_after_start_ms", std::to_string(static_cast<long long>(moved) - static_cast<long long>(start)));
  RecordProperty("back_after_end_ms", std::to_string(static_cast<long long>(back) - static_cast<long long>(end)));
  // After the end the TTL is the record's again; every step is journaled.
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).second == 10; }, 3000));
  for (const char* step : {"drill", "drill-lower-ttl", "drill-start", "drill-end"})
    EXPECT_EQ(journal(step).size(), 1u) << step;
  EXPECT_EQ(journal("drill-start")[0]["endpoint"], "app.example.com./A/primary");
  EXPECT_TRUE(call({{"cmd", "drill"}, {"action", "list"}})["drills"].empty());
}

TEST_F(ClientFailover, Drill_ListCancelRestartsAndMistakes) {
  start(config(app_record("")));
  // Mistakes get a clear error and change nothing.
  const std::pair<json, const char*> bad[] = {
      {{{"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "soon"}, {"for", "5s"}}, "\"at\" must be"},
      {{{"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+5s"}, {"for", "5s"}, {"lower_ttl", 30}},
       "below the record's TTL of 30"},
      {{{"record", "app.example.com"}, {"endpoint", "nope"}, {"at", "+5s"}, {"for", "5s"}}, "no endpoint 'nope'"},
      {{{"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+5s"}, {"for", "5s"}, {"file", "/x"}},
       "unknown field 'file'"},
      // Found by fuzz_admin: a non-string action threw out of the admin handler.
      {{{"action", 3}}, "\"action\" must be a string"},
  };
  for (const auto& [fields, message] : bad) {
    json req = fields;
    req["cmd"] = "drill";
    json r = call(req);
    EXPECT_FALSE(r["ok"].get<bool>()) << req.dump();
    EXPECT_NE(r["error"].get<std::string>().find(message), std::string::npos) << r.dump();
  }

  // Restart inside the lowered-TTL window: still lowered, still listed; then cancelled.
  json d = call({{"cmd", "drill"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+37s"},
                 {"for", "5s"}, {"lower_ttl", 3}});
  ASSERT_TRUE(d["ok"].get<bool>()) << d.dump();
  json overlap = call({{"cmd", "drill"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+40s"},
                       {"for", "5s"}});
  EXPECT_NE(overlap.value("error", "").find("overlaps"), std::string::npos) << overlap.dump();
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).second == 3; }, 5000));
  // The status page shows the drill and the lowered TTL (headless Chromium).
  std::string page = rendered("http://127.0.0.1:" + std::to_string(http_port(v_->process())) + "/");
  EXPECT_NE(page.find("data-drill=\"" + d["drill"].dump() + "\""), std::string::npos) << page.substr(0, 3000);
  EXPECT_NE(page.find("starts in"), std::string::npos);
  EXPECT_NE(page.find("TTL lowered to 3"), std::string::npos);
  kill9_and_restart();
  EXPECT_EQ(ask(v_->port()).second, 3);
  json list = call({{"cmd", "drill"}, {"action", "list"}});
  ASSERT_EQ(list["drills"].size(), 1u);
  EXPECT_EQ(list["drills"][0]["phase"], "lowered");
  json c = call({{"cmd", "drill"}, {"action", "cancel"}, {"id", d["drill"]}});
  ASSERT_TRUE(c["ok"].get<bool>()) << c.dump();
  EXPECT_EQ(ask(v_->port()).second, 30);
  EXPECT_TRUE(call({{"cmd", "drill"}, {"action", "list"}})["drills"].empty());
  EXPECT_FALSE(call({{"cmd", "drill"}, {"action", "cancel"}, {"id", d["drill"]}})["ok"].get<bool>());

  // Restart during a drill: the endpoint stays down until the drill's end.
  d = call({{"cmd", "drill"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+1s"}, {"for", "4s"}});
  ASSERT_TRUE(d["ok"].get<bool>()) << d.dump();
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).first == kStandby; }, 4000));
  kill9_and_restart();
  EXPECT_EQ(ask(v_->port()).first, kStandby);
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).first == kPrimary; }, 8000));
  ASSERT_TRUE(eventually([&] { return journal("drill-end").size() == 1; }, 3000));
  EXPECT_EQ(journal("drill-cancel").size(), 1u);

  // A drill whose whole window passed while vaned was down ends, on the record, at start.
  d = call({{"cmd", "drill"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+1s"}, {"for", "1s"}});
  ASSERT_TRUE(d["ok"].get<bool>()) << d.dump();
  v_->process().signal(SIGKILL);
  v_->process().wait(5000);
  std::this_thread::sleep_for(2500ms);
  start(cfg_);
  ASSERT_TRUE(eventually([&] { return journal("drill-end").size() == 2; }, 3000));
  EXPECT_TRUE(journal("drill-end")[1].contains("missed")) << journal("drill-end")[1].dump();
  EXPECT_EQ(ask(v_->port()).first, kPrimary);
  EXPECT_TRUE(call({{"cmd", "drill"}, {"action", "list"}})["drills"].empty());
}

// A drill's lowered TTL is the record's state, which outlives a reload that
// removes the record: cancelled while the record is gone, the drill leaves
// nothing behind, and the record comes back with its own TTL (it kept the
// lowered one before).
TEST_F(ClientFailover, Drill_CancelledWhileItsRecordIsGone_TheRecordComesBackWithItsOwnTtl) {
  start(config(app_record("")));
  json d = call({{"cmd", "drill"},
                 {"record", "app.example.com"},
                 {"endpoint", "primary"},
                 {"at", "+37s"},
                 {"for", "5s"},
                 {"lower_ttl", 3}});
  ASSERT_TRUE(d["ok"].get<bool>()) << d.dump();
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).second == 3; }, 5000));
  std::string other = app_record("");
  other.replace(other.find("app.example.com"), 3, "app2");
  dir_.write("vane.yaml", config(other));
  json r = call({{"cmd", "reload"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(ask(v_->port(), "app2.example.com"), std::make_pair(std::string(kPrimary), 30));
  EXPECT_EQ(ask(v_->port()).first, "<none>");
  json c = call({{"cmd", "drill"}, {"action", "cancel"}, {"id", d["drill"]}});
  ASSERT_TRUE(c["ok"].get<bool>()) << c.dump();
  std::this_thread::sleep_for(300ms);  // a few of the main loop's ticks
  dir_.write("vane.yaml", config(app_record("")));
  r = call({{"cmd", "reload"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(ask(v_->port()), std::make_pair(std::string(kPrimary), 30));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ask(v_->port()), std::make_pair(std::string(kPrimary), 30));
}

TEST_F(ClientFailover, TtlUnsteady_AWobbleShortensTheTtl_AndClientsMoveFastWhenItDies) {
  Endpoint web1;
  start(config(app_record("    ttl_unsteady: 2\n", web1.port()),
               "checks:\n  web: { type: http, path: /health, body_contains: ok, interval: 500ms, timeout: 300ms, "
               "fall: 3, rise: 2 }\n"));
  ASSERT_TRUE(eventually([&] { return ask(v_->port()).first == kPrimary; }));
  EXPECT_EQ(ask(v_->port()).second, 30);
  // One failed probe, short of fall: unsteady, answers carry ttl_unsteady
  // (for 60 s). Caches that asked before keep their 30 s until it runs out:
  // this resolver asks first now.
  web1.lie(true);
  ASSERT_TRUE(eventually([&] { return record()["ttl_now"] == 2; }, 3000)) << record().dump();
  web1.lie(false);
  EXPECT_EQ(record()["endpoints"][0]["health"], "up");
  Unbound resolver({"example.com"}, v_->port());
  auto seen = ask(resolver.port());
  EXPECT_EQ(seen.first, kPrimary);
  EXPECT_LE(seen.second, 2);
  std::this_thread::sleep_for(3s);
  // Now it dies for good: clients behind the resolver move within
  // interval × fall + ttl_unsteady + 1 s.
  web1.lie(true);
  auto died = wall_ms();
  uint64_t moved = seen_at(resolver.port(), kStandby, died + 15000);
  ASSERT_NE(moved, 0u);
  EXPECT_LE(moved - died, 500 * 3 + 2000 + 1000) << "interval × fall + ttl_unsteady + 1 s";
}

TEST_F(ClientFailover, Ramp_FollowsThePlan_ResumesAfterKill9_EndsAtAnotherChange) {
  start(config("  - name: www.example.com\n    type: A\n    endpoints:\n"
               "      - { name: a, address: 192.0.2.10, weight: 100 }\n"
               "      - { name: b, address: 198.51.100.10, weight: 0 }\n"));
  auto weight_b = [&] { return record("www.example.com.")["endpoints"][1]["weight"].get<int>(); };
  auto share_b = [&] {
    int n = 0;
    for (int i = 0; i < 1000; ++i) n += ask(v_->port(), "www.example.com").first == "198.51.100.10";
    return n / 1000.0;
  };
  json r = call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "b"}, {"weight", 100}, {"over", "20s"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  uint64_t start = wall_ms();
  auto planned = [&] { return std::min(100.0, 100.0 * double(wall_ms() - start) / 20000.0); };
  for (int step = 1; step <= 3; ++step) {
    std::this_thread::sleep_for(std::chrono::milliseconds(step == 1 ? 5000 : 4000));
    if (step == 2) kill9_and_restart();  // resumes from the stored plan
    double p = planned();
    int w = weight_b();
    EXPECT_NEAR(w, p, 3) << "step " << step;
    double expect = w / (100.0 + w);
    EXPECT_NEAR(share_b(), expect, 0.05) << "step " << step << ", weight " << w;
  }
  ASSERT_TRUE(eventually([&] { return journal("ramp-end").size() == 1; }, 12000));
  EXPECT_EQ(weight_b(), 100);
  EXPECT_FALSE(record("www.example.com.")["endpoints"][1].contains("ramp"));
  ASSERT_EQ(journal("ramp").size(), 1u);
  EXPECT_EQ(journal("ramp")[0]["from"], 0);
  EXPECT_EQ(journal("ramp")[0]["to"], 100);

  // Another change to the endpoint ends a ramp where it stands.
  r = call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "b"}, {"weight", 0}, {"over", "1h"}});
  ASSERT_TRUE(r["ok"].get<bool>());
  EXPECT_TRUE(record("www.example.com.")["endpoints"][1].contains("ramp"));
  r = call({{"cmd", "drain"}, {"record", "www.example.com"}, {"endpoint", "b"}});
  ASSERT_TRUE(r["ok"].get<bool>());
  EXPECT_FALSE(record("www.example.com.")["endpoints"][1].contains("ramp"));
  auto drains = journal("drain");
  ASSERT_EQ(drains.size(), 1u);
  EXPECT_TRUE(drains[0]["ended_ramp"].get<bool>());
  kill9_and_restart();
  EXPECT_FALSE(record("www.example.com.")["endpoints"][1].contains("ramp"));
  EXPECT_EQ(weight_b(), 100);  // the weight it had reached, stored with the change
}

}  // namespace
}  // namespace vane::test
