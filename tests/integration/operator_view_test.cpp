// The operator view over real sockets: /metrics moves with a burst of
// queries, reloads and admin changes; the status page, loaded in headless
// Chromium, shows a weight flipped through vanectl.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "dns_client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"

namespace vane::test {
namespace {

const std::string kConfig = R"(
listen: ["127.0.0.1:0"]
threads: 2
http: { listen: "127.0.0.1:0" }
zones: [{ name: example.com, file: example.com.zone }]
records:
)" + www_weighted(false);

// name{labels} -> value, for every sample; checks every family was declared first.
std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> out;
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    std::string sample = line.substr(0, sp);
    std::string family = sample.substr(0, sample.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (family.size() > strlen(suffix) &&
          family.compare(family.size() - strlen(suffix), strlen(suffix), suffix) == 0 && !typed.count(family))
        family.resize(family.size() - strlen(suffix));
    EXPECT_TRUE(typed.count(family)) << "sample before its # TYPE: " << line;
    out[sample] = std::stod(line.substr(sp + 1));
  }
  return out;
}

TEST(OperatorView, MetricsMoveWithQueriesReloadsAndAdminChanges) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Vaned v(dir, kConfig);
  uint16_t port = http_port(v.process());
  ASSERT_NE(port, 0);
  httplib::Client c("127.0.0.1", port);
  auto scrape = [&] {
    auto r = c.Get("/metrics");
    EXPECT_TRUE(r && r->status == 200);
    EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
    return parse_metrics(r ? r->body : "");
  };
  auto before = scrape();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(query("127.0.0.1", v.port(), "www.example.com", "A"));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(query("127.0.0.1", v.port(), "nope.example.com", "AAAA", {.tcp = true}));
  ASSERT_TRUE(query("127.0.0.1", v.port(), "example.org", "A"));
  auto after = scrape();
  auto delta = [&](const std::string& k) { return after[k] - before[k]; };
  EXPECT_EQ(delta(R"(vane_queries_total{protocol="udp",qtype="A",rcode="NOERROR"})"), 200);
  EXPECT_EQ(delta(R"(vane_queries_total{protocol="tcp",qtype="AAAA",rcode="NXDOMAIN"})"), 30);
  EXPECT_EQ(delta(R"(vane_queries_total{protocol="udp",qtype="A",rcode="REFUSED"})"), 1);
  EXPECT_EQ(delta(R"(vane_steered_answers_total{record="www.example.com.",type="A",endpoint="use1"})"), 200);
  EXPECT_EQ(after[R"(vane_endpoint_weight{record="www.example.com.",type="A",endpoint="use1"})"], 255);
  EXPECT_EQ(after[R"(vane_zone_serial{zone="example.com."})"], 1);
  EXPECT_EQ(after[R"(vane_build_info{version=")" VANE_VERSION R"("})"], 1);
  ASSERT_TRUE(after.count("vane_steering_torn_picks_total"));
  EXPECT_EQ(after["vane_steering_torn_picks_total"], 0);  // no pick waited ~1 ms for a change

  std::string sock = dir.path() + "/state/admin.sock";
  Process w({VANECTL_PATH, "-s", sock, "weight", "www.example.com", "use1", "0"});
  ASSERT_EQ(w.wait(10000), 0);
  Process rl({VANECTL_PATH, "-s", sock, "reload"});
  ASSERT_EQ(rl.wait(10000), 0);
  dir.write("example.com.zone", "garbage\n");
  Process bad({VANECTL_PATH, "-s", sock, "reload"});
  ASSERT_EQ(bad.wait(10000), 1);
  auto last = scrape();
  EXPECT_EQ(last[R"(vane_admin_changes_total{action="weight"})"], 1);
  EXPECT_EQ(last[R"(vane_reloads_total{result="ok"})"], 1);
  EXPECT_EQ(last[R"(vane_reloads_total{result="failed"})"], 1);
  EXPECT_EQ(last[R"(vane_endpoint_weight{record="www.example.com.",type="A",endpoint="use1"})"], 0);
  EXPECT_EQ(c.Get("/healthz")->body, "ok\n");
}

// Many endpoints (here forced with http.endpoint_metrics: problems): series
// only for endpoints and records out of the ordinary, which is what the
// shipped alerts fire on, and totals for the rest.
TEST(OperatorView, EndpointMetricsProblems_ExportOnlyTheUnusualAndTotals) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Endpoint web;
  std::string cfg = "listen: [\"127.0.0.1:0\"]\nthreads: 1\n"
                    "http: { listen: \"127.0.0.1:0\", endpoint_metrics: problems }\n"
                    "zones: [{ name: example.com, file: example.com.zone }]\n"
                    "checks:\n  web: { type: http, path: /health, interval: 300ms, timeout: 200ms, fall: 1, rise: 1 }\n"
                    "records:\n" + www_weighted(true) + app_failover(web.port());
  Vaned v(dir, cfg);
  httplib::Client c("127.0.0.1", http_port(v.process()));
  auto scrape = [&] {
    auto r = c.Get("/metrics");
    return parse_metrics(r ? r->body : "");
  };
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(query("127.0.0.1", v.port(), "www.example.com", "A"));
  auto m = scrape();
  EXPECT_EQ(m["vane_endpoint_metrics_limited"], 1);
  EXPECT_EQ(m[R"(vane_zone_steered_answers_total{zone="example.com."})"], 50);
  EXPECT_EQ(m[R"(vane_endpoints{health="up"})"], 5);
  EXPECT_EQ(m[R"(vane_endpoints{health="down"})"], 0);
  EXPECT_EQ(m["vane_endpoints_in_answers"], 5);
  for (const auto& [k, val] : m) {
    EXPECT_EQ(k.find("endpoint=\""), std::string::npos) << "an ordinary endpoint's series: " << k;
    EXPECT_EQ(k.find("vane_record_"), std::string::npos) << "an ordinary record's series: " << k;
  }

  // The primary dies, use2 gets an admin weight, use3 is drained: each now
  // has its series (and app its record series); use1 still none.
  web.stop();
  std::string sock = dir.path() + "/state/admin.sock";
  ASSERT_EQ(Process({VANECTL_PATH, "-s", sock, "weight", "www.example.com", "use2", "3"}).wait(10000), 0);
  ASSERT_EQ(Process({VANECTL_PATH, "-s", sock, "drain", "www.example.com", "use3"}).wait(10000), 0);
  ASSERT_TRUE(eventually([&] { return scrape()[R"(vane_endpoints{health="down"})"] == 1; }, 5000));
  m = scrape();
  EXPECT_EQ(m[R"(vane_endpoint_healthy{record="app.example.com.",type="A",endpoint="primary"})"], 0);
  EXPECT_EQ(m[R"(vane_record_failed_over{record="app.example.com.",type="A"})"], 1);
  EXPECT_EQ(m[R"(vane_endpoint_weight{record="www.example.com.",type="A",endpoint="use2"})"], 3);
  EXPECT_EQ(m[R"(vane_endpoint_override{record="www.example.com.",type="A",endpoint="use3",state="drain"})"], 1);
  EXPECT_EQ(m["vane_endpoints_in_answers"], 3);
  for (const auto& [k, val] : m) {
    EXPECT_EQ(k.find("endpoint=\"use1\""), std::string::npos) << k;
    EXPECT_EQ(k.find("endpoint=\"standby\""), std::string::npos) << k;
    EXPECT_EQ(k.find("vane_steered_answers_total"), std::string::npos) << k;
  }
}

TEST(OperatorView, StatusPageInChromiumShowsAWeightFlip) {
  ASSERT_FALSE(chromium().empty()) << "chromium is installed by scripts/test.sh (TEST_PACKAGES)";
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Vaned v(dir, kConfig);
  std::string url = "http://127.0.0.1:" + std::to_string(http_port(v.process())) + "/";
  std::string page = rendered(url);
  EXPECT_NE(page.find("www.example.com. A"), std::string::npos) << page.substr(0, 2000);
  EXPECT_NE(page.find("198.51.100.10"), std::string::npos);
  EXPECT_EQ(page.find("(admin; config 0)"), std::string::npos);

  Process w({VANECTL_PATH, "-s", dir.path() + "/state/admin.sock", "weight", "www.example.com", "use2", "255",
             "--reason", "flip for the page"});
  ASSERT_EQ(w.wait(10000), 0);
  page = rendered(url);
  EXPECT_NE(page.find("(admin; config 0)"), std::string::npos) << "the new weight is on the page";
  EXPECT_NE(page.find("flip for the page"), std::string::npos) << "and the journal event";

  // The answer-share chart: samples every 5 s, so after ~11 s of queries it
  // has lines for the endpoints and a marker for the flip.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(11);
  while (std::chrono::steady_clock::now() < until) {
    query("127.0.0.1", v.port(), "www.example.com", "A");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  page = rendered(url);
  EXPECT_NE(page.find("class=\"share\""), std::string::npos) << page.substr(0, 3000);
  EXPECT_NE(page.find("<polyline"), std::string::npos) << "a line per endpoint that answered";
  EXPECT_NE(page.find("data-marker=\"weight\""), std::string::npos) << "the flip, marked";

  // The chart's data: a time per sample, a share per endpoint per sample
  // (null where the record answered nothing), the shares of a sample
  // adding up to 1; both endpoints answered once both weigh 255.
  httplib::Client c("127.0.0.1", http_port(v.process()));
  auto r = c.Get("/api/status");
  ASSERT_TRUE(r && r->status == 200);
  auto status = nlohmann::json::parse(r->body);
  nlohmann::json chart;
  for (const auto& rec : status["records"])
    if (rec.value("name", "") == "www.example.com.") chart = rec["chart"];
  ASSERT_TRUE(chart.is_object()) << r->body.substr(0, 2000);
  EXPECT_EQ(chart["window_s"], 900);
  size_t n = chart["t"].size(), both = 0;
  ASSERT_GE(n, 1u) << chart.dump();
  ASSERT_EQ(chart["shares"]["use1"].size(), n);
  ASSERT_EQ(chart["shares"]["use2"].size(), n);
  for (size_t k = 0; k < n; ++k) {
    EXPECT_LE(chart["t"][k].get<int64_t>(), 0);
    const auto &a = chart["shares"]["use1"][k], &b = chart["shares"]["use2"][k];
    ASSERT_EQ(a.is_null(), b.is_null()) << chart.dump();
    if (a.is_null()) continue;
    EXPECT_NEAR(a.get<double>() + b.get<double>(), 1.0, 0.005) << chart.dump();
    both += a.get<double>() > 0 && b.get<double>() > 0;
  }
  EXPECT_GE(both, 1u) << chart.dump();
}

// A large config: the page lists 200 records, those needing attention first
// wherever they are, says how many it left out, and takes ?filter=ZONE or
// RECORD (so does /api/status), each listed record with its chart.
TEST(OperatorView, StatusPageOfManyRecords_ListsThoseNeedingAttentionFirst_AndFilters) {
  TempDir dir;
  std::string cfg = "listen: [\"127.0.0.1:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\" }\nzones:\n";
  std::string records;
  for (const char* z : {"a.test", "b.test"}) {
    dir.write(std::string(z) + ".zone", "$ORIGIN " + std::string(z) +
                                            ".\n$TTL 300\n@ IN SOA ns h 1 3600 600 86400 60\n@ IN NS ns\n"
                                            "ns IN A 192.0.2.1\n");
    cfg += "  - { name: " + std::string(z) + ", file: " + z + ".zone }\n";
    for (int i = 0; i < 150; ++i)
      records += "  - { name: r" + std::to_string(i) + "." + z +
                 ", type: A, policy: failover, endpoints: [{ name: e, address: 192.0.2.10, priority: 1 }, "
                 "{ name: w, address: 198.51.100.10, priority: 2 }] }\n";
  }
  Vaned v(dir, cfg + "records:\n" + records);
  std::string sock = dir.path() + "/state/admin.sock";
  // The last records of each zone: past the first 200.
  ASSERT_EQ(
      Process({VANECTL_PATH, "-s", sock, "drain", "r149.b.test", "e", "--reason", "far down the list"}).wait(10000), 0);
  ASSERT_EQ(Process({VANECTL_PATH, "-s", sock, "weight", "r148.b.test", "w", "9"}).wait(10000), 0);
  ASSERT_EQ(Process({VANECTL_PATH, "-s", sock, "drain", "r140.a.test", "e", "--for", "1h"}).wait(10000), 0);

  httplib::Client c("127.0.0.1", http_port(v.process()));
  auto get = [&](const std::string& path) {
    auto r = c.Get(path);
    EXPECT_TRUE(r && r->status == 200) << path;
    return r ? nlohmann::json::parse(r->body) : nlohmann::json();
  };
  auto names = [](const nlohmann::json& st) {
    std::vector<std::string> out;
    for (const auto& r : st["records"]) out.push_back(r["name"]);
    return out;
  };
  auto st = get("/api/status");
  EXPECT_EQ(st["records_total"], 300);
  ASSERT_EQ(st["records"].size(), 200u);
  auto listed = names(st);
  // The three needing attention, and the first 197 of the rest, in zone
  // order: all of a.test, b.test's first 48, then b.test's two.
  EXPECT_EQ(listed[0], "r0.a.test.");
  EXPECT_EQ(listed[140], "r140.a.test.");
  EXPECT_EQ(listed[149], "r149.a.test.");
  EXPECT_EQ(listed[150], "r0.b.test.");
  EXPECT_EQ(listed[197], "r47.b.test.");
  EXPECT_EQ(listed[198], "r148.b.test.");
  EXPECT_EQ(listed[199], "r149.b.test.");
  const auto& far = st["records"][199];
  EXPECT_EQ(far["endpoints"][0]["override"], "drain");
  EXPECT_EQ(far["endpoints"][0]["override_reason"], "far down the list");
  EXPECT_TRUE(far["chart"].is_object()) << far.dump();
  EXPECT_TRUE(st["records"][140]["endpoints"][0].contains("override_until"));
  EXPECT_EQ(st["records"][198]["endpoints"][1]["admin_weight"], 9);
  EXPECT_EQ(st["zones"].size(), 2u);

  // A zone: all of its 150, each with a chart; only that zone.
  st = get("/api/status?filter=b.test");
  EXPECT_EQ(st["records_total"], 150);
  ASSERT_EQ(st["records"].size(), 150u);
  ASSERT_EQ(st["zones"].size(), 1u);
  EXPECT_EQ(st["zones"][0]["name"], "b.test.");
  for (const auto& r : st["records"]) {
    EXPECT_NE(r["name"].get<std::string>().find(".b.test."), std::string::npos);
    EXPECT_TRUE(r["chart"].is_object());
  }
  // A record (the final dot optional), and a name vaned does not have.
  st = get("/api/status?filter=r7.a.test");
  EXPECT_EQ(names(st), std::vector<std::string>{"r7.a.test."});
  EXPECT_EQ(st["records"][0]["endpoints"].size(), 2u);
  st = get("/api/status?filter=nope.test");
  EXPECT_EQ(st["ok"], false);
  EXPECT_NE(st["error"].get<std::string>().find("no zone or steered record named 'nope.test'"), std::string::npos);

  // The page says what it left out, and its filter form narrows it.
  if (chromium().empty()) GTEST_FAIL() << "chromium is installed by scripts/test.sh (TEST_PACKAGES)";
  std::string url = "http://127.0.0.1:" + std::to_string(http_port(v.process())) + "/";
  std::string page = rendered(url);
  EXPECT_NE(page.find("200 of 300 steered records listed"), std::string::npos) << page.substr(0, 2000);
  EXPECT_NE(page.find("r149.b.test. A"), std::string::npos);
  EXPECT_EQ(page.find("r100.b.test. A"), std::string::npos);
  page = rendered(url + "?filter=r0.b.test");
  EXPECT_NE(page.find("r0.b.test. A"), std::string::npos) << page.substr(0, 2000);
  EXPECT_EQ(page.find("r149.b.test. A"), std::string::npos);
  EXPECT_NE(page.find(R"(<div class="meta" id="listed"></div>)"), std::string::npos) << "all listed: no note";
  page = rendered(url + "?filter=nope.test");
  EXPECT_NE(page.find("no zone or steered record named"), std::string::npos) << page.substr(0, 2000);
}

}  // namespace
}  // namespace vane::test
