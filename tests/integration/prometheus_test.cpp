// The shipped alert rules (dist/prometheus/vane-rules.yml) in a real
// Prometheus (Debian `prometheus`) that scrapes a running vaned: the target
// is up, /metrics passes `promtool check metrics`, and VaneEndpointDown goes
// pending when the endpoint dies and fires after its `for:`. The rules are
// the shipped file with that one `for:` cut from 30 s to 5 s, to keep the
// test short; `promtool test rules` (vane-rules.test.yml) times the shipped
// value.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "dns_client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json get_json(uint16_t port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5);
  auto r = c.Get(path);
  if (!r || r->status != 200) return json();
  return json::parse(r->body, nullptr, false);
}

// The state of `alert` for endpoint `endpoint` ("", "pending" or "firing").
std::string alert_state(uint16_t port, const std::string& alert, const std::string& endpoint) {
  json a = get_json(port, "/api/v1/alerts");
  if (!a.is_object()) return "";
  for (const auto& x : a["data"]["alerts"])
    if (x["labels"].value("alertname", "") == alert && x["labels"].value("endpoint", "") == endpoint)
      return x.value("state", "");
  return "";
}

TEST(Prometheus, ScrapesVaned_AndFiresEndpointDownAfterItsFor) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  Endpoint web1, web2;
  Vaned v(dir, R"(
listen: ["127.0.0.1:0"]
threads: 1
http: { listen: "127.0.0.1:0" }
zones: [{ name: example.com, file: example.com.zone }]
checks:
  web: { type: http, path: /health, body_contains: ok, interval: 200ms, timeout: 150ms, fall: 2, rise: 2 }
records:
)" + app_failover(web1.port(), web2.port()));
  uint16_t http = http_port(v.process());
  ASSERT_NE(http, 0);

  // What vaned exports is valid exposition format.
  {
    httplib::Client c("127.0.0.1", http);
    auto r = c.Get("/metrics");
    ASSERT_TRUE(r && r->status == 200);
    std::string file = dir.write("metrics.txt", r->body);
    Process check({"/bin/sh", "-c", "promtool check metrics < " + file});
    EXPECT_EQ(check.wait(20000), 0) << check.output();
  }

  std::string rules_text;
  {
    std::ifstream in(std::string(VANE_SOURCE_DIR) + "/dist/prometheus/vane-rules.yml");
    rules_text.assign(std::istreambuf_iterator<char>(in), {});
  }
  size_t alert_at = rules_text.find("alert: VaneEndpointDown");
  ASSERT_NE(alert_at, std::string::npos);
  size_t for_at = rules_text.find("for: 30s", alert_at);
  ASSERT_NE(for_at, std::string::npos) << "VaneEndpointDown's for: is no longer 30s";
  ASSERT_LT(for_at, rules_text.find("- alert:", alert_at)) << "the for: found is another rule's";
  rules_text.replace(for_at, 8, "for: 5s");
  std::string rules_file = dir.write("vane-rules.yml", rules_text);

  uint16_t prom_port = free_port();
  std::string cfg = dir.write("prometheus.yml", R"(
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [")" + rules_file + R"("]
scrape_configs:
  - job_name: vane
    static_configs: [{ targets: ["127.0.0.1:)" + std::to_string(http) +
                                                    R"("] }]
)");
  Process prom({"/usr/bin/prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + dir.path() + "/tsdb",
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"});
  ASSERT_TRUE(eventually(
      [&] {
        json t = get_json(prom_port, "/api/v1/targets");
        return t.is_object() && !t["data"]["activeTargets"].empty() &&
               t["data"]["activeTargets"][0].value("health", "") == "up";
      },
      30000))
      << prom.output();
  // The rules are loaded, and quiet while everything is healthy.
  json rules = get_json(prom_port, "/api/v1/rules");
  ASSERT_TRUE(rules.is_object());
  size_t n = 0;
  for (const auto& g : rules["data"]["groups"]) n += g["rules"].size();
  EXPECT_EQ(n, 12u) << rules.dump();  // every rule of dist/prometheus/vane-rules.yml
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(alert_state(prom_port, "VaneEndpointDown", "primary"), "");

  web1.lie(true);  // 200 without "ok": down after 2 × 200 ms
  auto died = Clock::now();
  ASSERT_TRUE(eventually([&] { return alert_state(prom_port, "VaneEndpointDown", "primary") == "pending"; }, 10000))
      << prom.output();
  ASSERT_TRUE(eventually([&] { return alert_state(prom_port, "VaneEndpointDown", "primary") == "firing"; }, 20000))
      << prom.output();
  double s = std::chrono::duration<double>(Clock::now() - died).count();
  EXPECT_GE(s, 5.0) << "fired before its for: 5s";
  EXPECT_LE(s, 11.0) << "verdict (0.4 s) + scrape (1 s) + evaluation (1 s) + for (5 s), with some slack";
  // The failover it caused is visible too (pending: its for: is 1m).
  EXPECT_NE(get_json(prom_port, "/api/v1/query?query=vane_record_failed_over")["data"]["result"][0]["value"][1], "0");
  prom.signal(SIGTERM);
  prom.wait(10000);
}

}  // namespace
}  // namespace vane::test
