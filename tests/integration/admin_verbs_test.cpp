// Every admin verb against a running vaned, checked by the DNS answers it
// changes; durability across restarts and kill -9 (including a chaos run of
// a few hundred changes with SIGKILLs at random moments); override expiry
// with both ends in the journal; orphans; a store vaned must refuse.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rocksdb/db.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "client.h"
#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;

std::string config(bool with_use3 = true) {
  return "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: example.com.zone }]\nrecords:\n" +
         www_weighted(with_use3) + app_failover();
}

class AdminVerbs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("example.com.zone", kExampleZone);
    start();
  }
  void start(bool with_use3 = true) { vaned_ = std::make_unique<Vaned>(dir_, config(with_use3)); }
  void restart(int sig, bool with_use3 = true) {
    vaned_->process().signal(sig);
    vaned_->process().wait(10000);
    start(with_use3);
  }
  std::string sock() const { return dir_.path() + "/state/admin.sock"; }
  json call(const json& req) {
    auto r = admin::call(sock(), req, 10000);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : json{{"ok", false}, {"error", "transport"}};
  }
  std::string a(const std::string& name) {
    auto r = query("127.0.0.1", vaned_->port(), name, "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  }
  json endpoint(const std::string& record, const std::string& ep) {
    json s = call({{"cmd", "status"}});
    for (const auto& r : s["records"])
      if (r["name"] == record)
        for (const auto& e : r["endpoints"])
          if (e["name"] == ep) return e;
    return json();
  }
  json history(int limit = 50) { return call({{"cmd", "history"}, {"limit", limit}})["entries"]; }

  TempDir dir_;
  std::unique_ptr<Vaned> vaned_;
};

TEST_F(AdminVerbs, WeightFlip_MovesTrafficAndSurvivesKill9) {
  EXPECT_EQ(a("www.example.com"), "192.0.2.10");
  json r = call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use1"}, {"weight", 0}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  r = call({{"cmd", "weight"},
            {"record", "www.example.com"},
            {"endpoint", "use2"},
            {"weight", 255},
            {"reason", "flip to us-east-2"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(a("www.example.com"), "198.51.100.10");
  restart(SIGKILL);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(a("www.example.com"), "198.51.100.10");
  json e = endpoint("www.example.com.", "use1");
  EXPECT_EQ(e["weight"], 0);
  EXPECT_EQ(e["config_weight"], 255);
  // And back: "config" returns to the config's weight.
  call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use1"}, {"weight", "config"}});
  call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use2"}, {"weight", "config"}});
  restart(SIGTERM);
  EXPECT_EQ(a("www.example.com"), "192.0.2.10");
  EXPECT_TRUE(endpoint("www.example.com.", "use1")["admin_weight"].is_null());
}

TEST_F(AdminVerbs, DrainAndUndrain_DriveFailover) {
  EXPECT_EQ(a("app.example.com"), "192.0.2.20");
  ASSERT_TRUE(call({{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "primary"}})["ok"].get<bool>());
  EXPECT_EQ(a("app.example.com"), "198.51.100.20");  // tier 2 answers
  EXPECT_EQ(endpoint("app.example.com.", "primary")["override"], "drain");
  json bad = call({{"cmd", "undrain"}, {"record", "app.example.com"}, {"endpoint", "standby"}});
  EXPECT_FALSE(bad["ok"].get<bool>());
  EXPECT_NE(bad["error"].get<std::string>().find("is not drained"), std::string::npos);
  // Everything out: fails open to tier 1.
  call({{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "standby"}});
  EXPECT_EQ(a("app.example.com"), "192.0.2.20");
  call({{"cmd", "undrain"}, {"record", "app.example.com"}, {"endpoint", "standby"}});
  call({{"cmd", "undrain"}, {"record", "app.example.com"}, {"endpoint", "primary"}});
  EXPECT_EQ(a("app.example.com"), "192.0.2.20");
}

TEST_F(AdminVerbs, ForceDownFor_ExpiresByItselfWithBothEndsInTheJournal) {
  json r = call({{"cmd", "force"},
                 {"record", "app.example.com"},
                 {"endpoint", "primary"},
                 {"state", "down"},
                 {"for", "1s"},
                 {"reason", "monthly drill"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r.contains("until"));
  EXPECT_EQ(a("app.example.com"), "198.51.100.20");
  EXPECT_TRUE(eventually([&] { return a("app.example.com") == "192.0.2.20"; }, 5000));
  json h = history();
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h[h.size() - 2]["action"], "force");
  EXPECT_EQ(h[h.size() - 2]["reason"], "monthly drill");
  EXPECT_EQ(h[h.size() - 2]["uid"], getuid());
  EXPECT_EQ(h.back()["action"], "expire");
  EXPECT_EQ(h.back()["was"], "down");
  EXPECT_EQ(h.back()["endpoint"], "app.example.com./A/primary");
}

TEST_F(AdminVerbs, DrainFor_EndsByItself_AndAnyOtherChangeCancelsTheClock) {
  json r = call({{"cmd", "drain"},
                 {"record", "app.example.com"},
                 {"endpoint", "primary"},
                 {"for", "1s"},
                 {"reason", "maintenance window"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["override"], "drain");
  EXPECT_TRUE(r.contains("until"));
  EXPECT_EQ(a("app.example.com"), "198.51.100.20");
  EXPECT_TRUE(eventually([&] { return a("app.example.com") == "192.0.2.20"; }, 5000));
  json h = history();
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h[h.size() - 2]["action"], "drain");
  EXPECT_EQ(h[h.size() - 2]["reason"], "maintenance window");
  EXPECT_TRUE(h[h.size() - 2].contains("until"));
  EXPECT_EQ(h.back()["action"], "expire");
  EXPECT_EQ(h.back()["was"], "drain");

  // Drained for a while, then forced down with no clock: the drain's clock
  // does not end the new override.
  call({{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"for", "1s"}});
  r = call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "down"}});
  EXPECT_FALSE(r.contains("until")) << r.dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(a("app.example.com"), "198.51.100.20");
  EXPECT_EQ(history().back()["action"], "force");

  for (const json& bad :
       {json{{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "standby"}, {"for", "0s"}},
        json{{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "standby"}, {"for", "soon"}},
        json{{"cmd", "undrain"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"for", "1m"}}}) {
    json b = call(bad);
    EXPECT_FALSE(b["ok"].get<bool>()) << bad.dump();
    EXPECT_TRUE(b.contains("error")) << b.dump();
  }
}

TEST_F(AdminVerbs, ForceDownFor_ExpiryHoldsAcrossRestarts) {
  call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "down"}, {"for", "2s"}});
  restart(SIGKILL);
  EXPECT_EQ(a("app.example.com"), "198.51.100.20");  // still in force after the crash
  vaned_->process().signal(SIGKILL);
  vaned_->process().wait(10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  start();  // it ran out while vaned was down: ended at start, on the record
  EXPECT_EQ(a("app.example.com"), "192.0.2.20");
  EXPECT_EQ(history().back()["action"], "expire");
}

TEST_F(AdminVerbs, ForceUpAndAuto) {
  call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "down"}});
  EXPECT_EQ(a("app.example.com"), "198.51.100.20");
  call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "auto"}});
  EXPECT_EQ(a("app.example.com"), "192.0.2.20");
  json bad = call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "sideways"}});
  EXPECT_FALSE(bad["ok"].get<bool>());
  bad = call({{"cmd", "force"},
              {"record", "app.example.com"},
              {"endpoint", "primary"},
              {"state", "down"},
              {"for", "forever"}});
  EXPECT_FALSE(bad["ok"].get<bool>());
}

// drain|undrain --region: evacuate a region across every record and zone
// (or one zone) in one change, and bring it back; it survives kill -9, a
// `for` ends it, and the reply names records left with nothing up.
TEST(AdminRegion, DrainARegion_EveryRecordMovesAtOnce_UndrainBringsItBack) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  dir.write("example.net.zone",
            "$ORIGIN example.net.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n");
  const std::string cfg =
      "listen: [\"127.0.0.1:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\" }\n"
      "zones: [{ name: example.com, file: example.com.zone }, { name: example.net, file: example.net.zone }]\n"
      "records:\n"
      "  - name: www.example.com\n    type: A\n    policy: weighted\n    endpoints:\n"
      "      - { name: use1, address: 192.0.2.10, weight: 255, region: us-east-1 }\n"
      "      - { name: usw2, address: 198.51.100.10, weight: 0, region: us-west-2 }\n"
      "  - name: app.example.com\n    type: A\n    policy: failover\n    endpoints:\n"
      "      - { name: primary, address: 192.0.2.20, priority: 1, region: us-east-1 }\n"
      "      - { name: standby, address: 198.51.100.20, priority: 2, region: us-west-2 }\n"
      "  - name: api.example.net\n    type: A\n    policy: failover\n    endpoints:\n"
      "      - { name: east, address: 192.0.2.30, priority: 1, region: us-east-1 }\n"
      "      - { name: west, address: 198.51.100.30, priority: 2, region: us-west-2 }\n";
  auto v = std::make_unique<Vaned>(dir, cfg);
  const std::string sock = dir.path() + "/state/admin.sock";
  auto call = [&](const json& req) {
    auto r = admin::call(sock, req, 10000);
    return r ? *r : json{{"ok", false}, {"error", r.error().to_string()}};
  };
  auto a = [&](const std::string& name) {
    auto r = query("127.0.0.1", v->port(), name, "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  };
  auto answers = [&] { return a("www.example.com") + " " + a("app.example.com") + " " + a("api.example.net"); };
  const std::string east = "192.0.2.10 192.0.2.20 192.0.2.30", west = "198.51.100.10 198.51.100.20 198.51.100.30";
  ASSERT_EQ(answers(), east);

  // The whole region, every zone: one change, one journal entry.
  json r = call({{"cmd", "drain"}, {"region", "us-east-1"}, {"reason", "INC-9: evacuate us-east-1"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["changed"],
            json::array({"www.example.com./A/use1", "app.example.com./A/primary", "api.example.net./A/east"}));
  EXPECT_TRUE(r["unchanged"].empty());
  EXPECT_TRUE(r["no_endpoint_up"].empty());
  EXPECT_EQ(answers(), west);
  json h = call({{"cmd", "history"}, {"limit", 5}})["entries"];
  ASSERT_EQ(h.size(), 1u) << h.dump();
  EXPECT_EQ(h[0]["action"], "drain");
  EXPECT_EQ(h[0]["region"], "us-east-1");
  EXPECT_EQ(h[0]["count"], 3);
  EXPECT_EQ(h[0]["reason"], "INC-9: evacuate us-east-1");
  // Acknowledged, so it survives kill -9.
  v->process().signal(SIGKILL);
  v->process().wait(10000);
  v = std::make_unique<Vaned>(dir, cfg);
  EXPECT_EQ(answers(), west);
  // Again: nothing to do, nothing written.
  r = call({{"cmd", "drain"}, {"region", "us-east-1"}});
  EXPECT_TRUE(r["changed"].empty()) << r.dump();
  EXPECT_EQ(r["unchanged"].size(), 3u);
  EXPECT_EQ(r["seq"], 0);

  // Back, one zone first: the other zone's endpoints stay drained.
  r = call({{"cmd", "undrain"}, {"region", "us-east-1"}, {"zone", "example.net"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["changed"], json::array({"api.example.net./A/east"}));
  EXPECT_EQ(answers(), "198.51.100.10 198.51.100.20 192.0.2.30");
  // Undrain touches drained endpoints only: one forced down stays down.
  call({{"cmd", "force"}, {"record", "api.example.net"}, {"endpoint", "east"}, {"state", "down"}});
  r = call({{"cmd", "undrain"}, {"region", "us-east-1"}});
  EXPECT_EQ(r["changed"], json::array({"www.example.com./A/use1", "app.example.com./A/primary"}));
  EXPECT_EQ(r["unchanged"], json::array({"api.example.net./A/east"}));
  EXPECT_EQ(answers(), "192.0.2.10 192.0.2.20 198.51.100.30");
  call({{"cmd", "force"}, {"record", "api.example.net"}, {"endpoint", "east"}, {"state", "auto"}});

  // For a while: it ends by itself, all at once, as one journal entry.
  r = call({{"cmd", "drain"}, {"region", "us-east-1"}, {"for", "1s"}, {"reason", "drill"}});
  ASSERT_TRUE(r.contains("until")) << r.dump();
  EXPECT_EQ(answers(), west);
  EXPECT_TRUE(eventually([&] { return answers() == east; }, 5000)) << answers();
  h = call({{"cmd", "history"}, {"limit", 2}})["entries"];
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["action"], "drain");
  EXPECT_EQ(h[1]["action"], "expire");
  EXPECT_EQ(h[1]["region"], "us-east-1");
  EXPECT_EQ(h[1]["count"], 3);
  EXPECT_EQ(h[1]["endpoints"],  // in key order
            json::array({"api.example.net./A/east", "app.example.com./A/primary", "www.example.com./A/use1"}));
  EXPECT_EQ(h[1]["was"], "drain");
  EXPECT_EQ(h[1]["reason"], "drill");
  std::string listed;
  ASSERT_EQ(run_ctl(VANECTL_PATH, sock, {"history", "--limit", "1"}, listed), 0) << listed;
  EXPECT_NE(listed.find("expire  region us-east-1 (3 endpoints)  drain"), std::string::npos) << listed;

  // The status page marks a region's changes on the charts of the records
  // with an endpoint there, and a zone's on that zone's records only.
  httplib::Client web("127.0.0.1", http_port(v->process()));
  auto got = web.Get("/api/status");
  ASSERT_TRUE(got && got->status == 200);
  std::map<std::string, std::vector<std::string>> marked;  // record -> "action endpoint"
  const json page = json::parse(got->body);
  for (const auto& rec : page["records"])
    for (const auto& m : rec["chart"]["markers"])
      marked[rec["name"].get<std::string>()].push_back(m["action"].get<std::string>() + " " +
                                                       m["endpoint"].get<std::string>());
  EXPECT_EQ(marked["www.example.com."],
            (std::vector<std::string>{"drain region us-east-1", "undrain region us-east-1", "drain region us-east-1",
                                      "expire region us-east-1"}));
  EXPECT_EQ(marked["api.example.net."],
            (std::vector<std::string>{"drain region us-east-1", "undrain region us-east-1", "force east",
                                      "undrain region us-east-1", "force east", "drain region us-east-1",
                                      "expire region us-east-1"}));

  // Ran out while vaned was down: ended at start, as one entry again.
  call({{"cmd", "drain"}, {"region", "us-east-1"}, {"for", "1s"}});
  v->process().signal(SIGKILL);
  v->process().wait(10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  v = std::make_unique<Vaned>(dir, cfg);
  EXPECT_EQ(answers(), east);
  h = call({{"cmd", "history"}, {"limit", 1}})["entries"];
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["action"], "expire");
  EXPECT_EQ(h[0]["count"], 3);

  // Both regions of a record drained: the reply says it has nothing up.
  call({{"cmd", "drain"}, {"region", "us-west-2"}, {"zone", "example.net"}});
  r = call({{"cmd", "drain"}, {"region", "us-east-1"}, {"zone", "example.net."}});
  EXPECT_EQ(r["no_endpoint_up"], json::array({"api.example.net./A"})) << r.dump();
  call({{"cmd", "undrain"}, {"region", "us-west-2"}});
  call({{"cmd", "undrain"}, {"region", "us-east-1"}});
  EXPECT_EQ(answers(), east);

  // Mistakes: clear errors, nothing changed.
  for (const auto& [req, error] : std::vector<std::pair<json, std::string>>{
           {{{"cmd", "drain"}, {"region", "mars"}}, "no region 'mars'; regions: us-east-1, us-west-2"},
           {{{"cmd", "drain"}, {"region", "us-east-1"}, {"zone", "example.org"}},
            "zone example.org. is not served here"},
           {{{"cmd", "drain"}, {"region", "us-east-1"}, {"record", "www.example.com"}},
            "\"region\" takes the place of \"record\" and \"endpoint\""},
           {{{"cmd", "drain"}, {"region", "us-east-1"}, {"for", "forever"}}, "\"for\" must be a duration"},
           {{{"cmd", "undrain"}, {"region", "us-east-1"}, {"for", "1m"}}, "unknown field 'for' for undrain"},
           {{{"cmd", "drain"}, {"region", 7}}, "\"region\" must be a string"}}) {
    json b = call(req);
    EXPECT_FALSE(b["ok"].get<bool>()) << req.dump();
    EXPECT_NE(b["error"].get<std::string>().find(error), std::string::npos) << b.dump();
  }
  EXPECT_EQ(answers(), east);

  // vanectl.
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, sock, {"drain", "--region", "us-east-1", "--reason", "drill"}, out), 0) << out;
  EXPECT_NE(out.find("drained 3 endpoints of region us-east-1 — journal #"), std::string::npos) << out;
  EXPECT_NE(out.find("  app.example.com./A/primary"), std::string::npos) << out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, sock, {"history", "--limit", "1"}, out), 0) << out;
  EXPECT_NE(out.find("region us-east-1 (3 endpoints)"), std::string::npos) << out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, sock, {"undrain", "--region", "us-east-1", "--zone", "example.com"}, out), 0) << out;
  EXPECT_NE(out.find("undrained 2 endpoints of region us-east-1 in example.com."), std::string::npos) << out;
  EXPECT_EQ(run_ctl(VANECTL_PATH, sock, {"drain", "--region", "us-east-1", "www.example.com", "use1"}, out), 2) << out;
  EXPECT_EQ(run_ctl(VANECTL_PATH, sock, {"drain", "--zone", "example.com"}, out), 2) << out;
}

TEST_F(AdminVerbs, Explain_SaysWhy) {
  call({{"cmd", "force"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"state", "down"}, {"reason", "x"}});
  json e = call({{"cmd", "explain"}, {"qname", "app.example.com"}, {"client", "10.1.2.3"}});
  ASSERT_TRUE(e["ok"].get<bool>()) << e.dump();
  EXPECT_EQ(e["answer"], json::array({"198.51.100.20 (standby)"}));
  std::string steps = e["steps"].dump();
  EXPECT_NE(steps.find("primary 192.0.2.20: down (forced down)"), std::string::npos) << steps;
  EXPECT_NE(steps.find("lowest priority tier 2: standby"), std::string::npos) << steps;
}

TEST_F(AdminVerbs, UnknownNames_ListWhatExistsAndNoPathIsEverTouched) {
  auto files_before = std::distance(std::filesystem::recursive_directory_iterator(dir_.path()), {});
  json r = call({{"cmd", "weight"}, {"record", "../../etc/passwd"}, {"endpoint", "use1"}, {"weight", 1}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("steered records: www.example.com./A, app.example.com./A"),
            std::string::npos)
      << r.dump();
  r = call({{"cmd", "drain"}, {"record", "www.example.com"}, {"endpoint", "/tmp/x"}});
  EXPECT_NE(r["error"].get<std::string>().find("endpoints: use1, use2, use3"), std::string::npos) << r.dump();
  r = call({{"cmd", "history"}, {"limit", 5}, {"file", "/etc/shadow"}});
  EXPECT_NE(r["error"].get<std::string>().find("unknown field 'file'"), std::string::npos) << r.dump();
  r = call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use1"}, {"weight", 256}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(std::distance(std::filesystem::recursive_directory_iterator(dir_.path()), {}), files_before);
  EXPECT_FALSE(std::filesystem::exists("/tmp/x"));
}

TEST_F(AdminVerbs, StateForARemovedEndpoint_IsReportedAndKept) {
  call({{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use3"}, {"weight", 7}});
  restart(SIGTERM, /*with_use3=*/false);
  json s = call({{"cmd", "status"}});
  EXPECT_EQ(s["orphans"], json::array({"www.example.com./A/use3"}));
  EXPECT_NE(vaned_->process().output().find("stored state for www.example.com./A/use3"), std::string::npos);
  restart(SIGTERM, /*with_use3=*/true);
  EXPECT_EQ(endpoint("www.example.com.", "use3")["weight"], 7);
  EXPECT_TRUE(call({{"cmd", "status"}})["orphans"].empty());
}

TEST_F(AdminVerbs, Vanectl_VerbsTablesAndExitCodes) {
  auto run = [&](const std::vector<std::string>& args, std::string& out) {
    return run_ctl(VANECTL_PATH, sock(), args, out);
  };
  std::string out;
  ASSERT_EQ(run({"weight", "www.example.com", "use1", "0"}, out), 0) << out;
  EXPECT_NE(out.find("www.example.com./A use1: weight 0, up"), std::string::npos) << out;
  ASSERT_EQ(run({"force", "app.example.com", "primary", "down", "--for", "15m", "--reason", "monthly drill"}, out), 0);
  EXPECT_NE(out.find("DOWN (override down) until"), std::string::npos) << out;
  ASSERT_EQ(run({"status"}, out), 0);
  EXPECT_NE(out.find("0 (admin; config 255)"), std::string::npos) << out;
  EXPECT_NE(out.find("(monthly drill)"), std::string::npos) << out;
  ASSERT_EQ(run({"explain", "app.example.com", "A", "--client", "10.1.2.0/24"}, out), 0);
  EXPECT_NE(out.find("answer: 198.51.100.20 (standby)"), std::string::npos) << out;
  ASSERT_EQ(run({"history", "--limit", "2"}, out), 0);
  EXPECT_NE(out.find("monthly drill"), std::string::npos) << out;
  ASSERT_EQ(run({"history", "--json"}, out), 0);
  EXPECT_EQ(json::parse(out)["entries"].size(), 2u);
  ASSERT_EQ(run({"drain", "app.example.com", "standby", "--for", "2h", "--reason", "maintenance window"}, out), 0);
  EXPECT_NE(out.find("(override drain) until"), std::string::npos) << out;
  ASSERT_EQ(run({"undrain", "app.example.com", "standby"}, out), 0);
  EXPECT_EQ(run({"weight", "www.example.com", "nope", "1"}, out), 1);
  EXPECT_NE(out.find("endpoints: use1, use2, use3"), std::string::npos) << out;
  EXPECT_EQ(run({"weight", "www.example.com", "use1", "x"}, out), 2);
  EXPECT_NE(run({"force", "app.example.com", "primary", "sideways"}, out), 0);
  ASSERT_EQ(run({"weight", "--help"}, out), 0);
  EXPECT_NE(out.find("RECORD"), std::string::npos);
}

// vanectl status ZONE|RECORD: a GSLB with thousands of steered names needs
// to look at one; the zone (with its records) or the record alone.
TEST_F(AdminVerbs, Status_FilteredByZoneOrRecord) {
  json all = call({{"cmd", "status"}});
  ASSERT_EQ(all["records"].size(), 2u);
  json one = call({{"cmd", "status"}, {"filter", "APP.example.com"}});
  ASSERT_TRUE(one["ok"].get<bool>()) << one.dump();
  ASSERT_EQ(one["records"].size(), 1u);
  EXPECT_EQ(one["records"][0]["name"], "app.example.com.");
  EXPECT_TRUE(one["zones"].empty());
  json zone = call({{"cmd", "status"}, {"filter", "example.com."}});
  EXPECT_EQ(zone["zones"].size(), 1u);
  EXPECT_EQ(zone["records"].size(), 2u);
  json none = call({{"cmd", "status"}, {"filter", "nope.example.com"}});
  EXPECT_FALSE(none["ok"].get<bool>());
  EXPECT_NE(none["error"].get<std::string>().find("no zone or steered record named 'nope.example.com'"),
            std::string::npos);
  json bad = call({{"cmd", "status"}, {"filter", 7}});
  EXPECT_FALSE(bad["ok"].get<bool>());
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, sock(), {"status", "www.example.com"}, out), 0) << out;
  EXPECT_NE(out.find("www.example.com. A"), std::string::npos) << out;
  EXPECT_EQ(out.find("app.example.com."), std::string::npos) << out;
}

// A few hundred random weight changes while vaned is SIGKILLed at random
// moments: after each restart, every acknowledged change is there, and an
// unacknowledged one is either wholly there or not at all.
TEST_F(AdminVerbs, Chaos_AcknowledgedChangesSurviveRandomKill9) {
  std::mt19937 rng(20261125);
  const char* eps[] = {"use1", "use2", "use3"};
  std::map<std::string, int> acked{{"use1", 255}, {"use2", 0}, {"use3", 0}};
  // Bounded by kills as well as changes: on a fast machine a burst holds
  // ~75 changes, so 300 changes alone can mean only four kills.
  int changes = 0, kills = 0, unacked = 0;
  while (changes < 300 || kills < 8) {
    // A killer fires at a random moment during the next burst of changes.
    pid_t pid = vaned_->process().pid();
    int delay_ms = std::uniform_int_distribution<int>(1, 25)(rng);
    std::thread killer([pid, delay_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      kill(pid, SIGKILL);
    });
    std::map<std::string, int> in_flight;
    for (;;) {  // until the kill lands: a call then fails
      std::string ep = eps[rng() % 3];
      int w = std::uniform_int_distribution<int>(0, 255)(rng);
      auto r = admin::call(sock(), {{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", ep}, {"weight", w}},
                           2000);
      ++changes;
      if (r && (*r)["ok"].get<bool>()) {
        acked[ep] = w;
        in_flight.erase(ep);
        continue;
      }
      in_flight[ep] = w;  // sent, never acknowledged: the kill came first
      ++unacked;
      break;
    }
    killer.join();
    ++kills;
    vaned_->process().wait(10000);
    start();
    for (const auto& [ep, w] : acked) {
      int got = endpoint("www.example.com.", ep)["weight"].get<int>();
      auto f = in_flight.find(ep);
      if (f != in_flight.end())
        EXPECT_TRUE(got == w || got == f->second) << ep << " got " << got;
      else
        EXPECT_EQ(got, w) << ep << " lost an acknowledged change";
      acked[ep] = got;  // an unacknowledged change that landed is now the truth
    }
  }
  EXPECT_GE(kills, 8);
  EXPECT_GE(changes, 300);
  RecordProperty("kills", kills);
  RecordProperty("unacked", unacked);
}

TEST(AdminStore, NewerOrCorruptStore_RefusesToStartAndSaysTheWayOut) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  std::string cfg = dir.write("vane.yaml", config());
  {
    Vaned v(dir, config());  // creates the store
  }
  {
    rocksdb::DB* db = nullptr;
    rocksdb::Options o;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.path() + "/state/db", &db).ok());
    db->Put(rocksdb::WriteOptions(), "meta/schema", "2");
    delete db;
  }
  Process p({vaned_path(), "--config", cfg});
  EXPECT_EQ(p.wait(20000), 1);
  EXPECT_NE(p.output().find("schema version 2"), std::string::npos) << p.output();
  EXPECT_NE(p.output().find("move " + dir.path() + "/state/db aside"), std::string::npos) << p.output();

  std::filesystem::remove_all(dir.path() + "/state/db");
  std::filesystem::create_directories(dir.path() + "/state/db");
  dir.write("state/db/CURRENT", "MANIFEST-999999\n");  // points at nothing: corrupt
  Process q({vaned_path(), "--config", cfg});
  EXPECT_EQ(q.wait(20000), 1);
  EXPECT_NE(q.output().find("cannot open state store"), std::string::npos) << q.output();
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/state/db/CURRENT")) << "never silently reset";
}

}  // namespace
}  // namespace vane::test
