#include "agent.h"

#include <curl/curl.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "checker.h"
#include "log.h"

namespace vane::healthcheck {

namespace {

std::atomic<bool> g_stop{false};

size_t discard(char*, size_t size, size_t n, void*) {
  return size * n;
}

}  // namespace

int run_agent(const AgentConfig& agent) {
  auto cfg = load_config(agent.config);
  if (!cfg) {
    VANE_ERROR("agent: %s", cfg.error().to_string().c_str());
    return 1;
  }
  auto token = read_token_file(agent.token_file);
  if (!token) {
    VANE_ERROR("agent: %s", token.error().to_string().c_str());
    return 1;
  }
  auto targets = targets_from(*cfg);
  std::mutex mu;
  std::map<std::string, Verdict> views;
  for (const auto& t : targets) views[t.key] = Verdict{t.key, true, "", 0};
  std::map<std::string, double> rtt;  // median of recent successful probes
  Checker checker(
      [&](const Verdict& v) {
        std::lock_guard lock(mu);
        views[v.key].up = v.up;
        views[v.key].detail = v.detail;
        VANE_INFO("agent %s: %s is %s (%s)", agent.vantage.c_str(), v.key.c_str(), v.up ? "up" : "down",
                  v.detail.c_str());
      },
      [&](const std::string& key, double ms) {
        std::lock_guard lock(mu);
        rtt[key] = ms;
      });
  checker.set_targets(targets);
  checker.start();
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGPIPE, SIG_IGN);
  VANE_INFO("agent %s: probing %zu endpoints, reporting to %s every %u ms", agent.vantage.c_str(), targets.size(),
            agent.report_to.c_str(), agent.report_interval_ms);
  std::string url = agent.report_to + "/v1/observations";
  std::string auth = "Authorization: Bearer " + *token;
  bool failing = false;
  auto next = std::chrono::steady_clock::now();
  while (!g_stop) {
    next += std::chrono::milliseconds(agent.report_interval_ms);
    nlohmann::json body{{"vantage", agent.vantage}, {"observations", nlohmann::json::array()}};
    {
      std::lock_guard lock(mu);
      for (const auto& [key, v] : views)
        body["observations"].push_back(
            {{"endpoint", key}, {"up", v.up}, {"rtt_ms", rtt.count(key) ? rtt[key] : 0.0}, {"detail", v.detail}});
    }
    std::string payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    CURL* c = curl_easy_init();
    curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(payload.size()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(std::max<uint32_t>(agent.report_interval_ms, 1000)));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    bool ok = rc == CURLE_OK && status == 200;
    if (ok == failing) {  // log changes, not every failed report
      if (ok)
        VANE_INFO("agent %s: reporting to %s", agent.vantage.c_str(), url.c_str());
      else
        VANE_WARN("agent %s: report to %s failed: %s", agent.vantage.c_str(), url.c_str(),
                  rc != CURLE_OK ? curl_easy_strerror(rc) : ("HTTP " + std::to_string(status)).c_str());
      failing = !ok;
    }
    while (!g_stop && std::chrono::steady_clock::now() < next)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  checker.stop();
  VANE_INFO("agent %s: stopped", agent.vantage.c_str());
  return 0;
}

}  // namespace vane::healthcheck
