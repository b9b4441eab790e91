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

size_t collect(char* p, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > (8u << 20)) return 0;  // no targets document is that big
  s->append(p, size * n);
  return size * n;
}

// GET /v1/targets from the main instance: (version, targets), or the error.
Result<std::pair<std::string, std::vector<Target>>> fetch_targets(const std::string& url, const std::string& auth,
                                                                  uint32_t timeout_ms) {
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) return Error{url, 0, curl_easy_strerror(rc)};
  if (status != 200) return Error{url, 0, "HTTP " + std::to_string(status) + (status == 401 ? " (wrong token?)" : "")};
  auto doc = nlohmann::json::parse(body, nullptr, false);
  std::string why;
  auto targets = doc.is_object() ? targets_from_json(doc, why) : std::nullopt;
  if (!targets) return Error{url, 0, why.empty() ? "not JSON" : why};
  return std::pair<std::string, std::vector<Target>>{doc.value("version", ""), std::move(*targets)};
}

}  // namespace

int run_agent(const AgentConfig& agent) {
  auto token = read_token_file(agent.token_file);
  if (!token) {
    VANE_ERROR("agent: %s", token.error().to_string().c_str());
    return 1;
  }
  std::string auth = "Authorization: Bearer " + *token;
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGPIPE, SIG_IGN);
  // What to probe: a copy of the main config, or fetched from the main instance.
  std::vector<Target> targets;
  std::string version, targets_url = agent.report_to + "/v1/targets";
  if (!agent.config.empty()) {
    auto cfg = load_config(agent.config);
    if (!cfg) {
      VANE_ERROR("agent: %s", cfg.error().to_string().c_str());
      return 1;
    }
    targets = targets_from(*cfg);
  } else {
    for (bool logged = false; !g_stop;) {  // the main instance may start after us
      auto got = fetch_targets(targets_url, auth, std::max<uint32_t>(agent.report_interval_ms, 2000));
      if (got) {
        version = got->first;
        targets = std::move(got->second);
        break;
      }
      if (!logged) VANE_WARN("agent: cannot fetch targets yet: %s (retrying)", got.error().to_string().c_str());
      logged = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (g_stop) return 0;
  }
  std::mutex mu;
  std::map<std::string, Verdict> views;
  for (const auto& t : targets) views[t.key] = Verdict{t.key, t.initial_up, "", 0};
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
  VANE_INFO("agent %s: probing %zu endpoints (%s), reporting to %s every %u ms", agent.vantage.c_str(), targets.size(),
            agent.config.empty() ? ("fetched, version " + version).c_str() : agent.config.c_str(),
            agent.report_to.c_str(), agent.report_interval_ms);
  std::string url = agent.report_to + "/v1/observations";
  bool failing = false, fetch_failing = false;
  auto next = std::chrono::steady_clock::now();
  auto next_fetch = next + std::chrono::milliseconds(agent.targets_refresh_ms);
  while (!g_stop) {
    next += std::chrono::milliseconds(agent.report_interval_ms);
    if (agent.config.empty() && std::chrono::steady_clock::now() >= next_fetch) {
      // The main instance's records or checks changed (a reload): probe the new set.
      next_fetch += std::chrono::milliseconds(agent.targets_refresh_ms);
      auto got = fetch_targets(targets_url, auth, std::max<uint32_t>(agent.report_interval_ms, 2000));
      if (!got && !fetch_failing) VANE_WARN("agent: cannot fetch targets: %s (keeping the last ones)", got.error().to_string().c_str());
      fetch_failing = !got;
      if (got && got->first != version) {
        version = got->first;
        {
          std::lock_guard lock(mu);
          std::map<std::string, Verdict> kept;
          for (const auto& t : got->second)
            kept[t.key] = views.count(t.key) ? views[t.key] : Verdict{t.key, t.initial_up, "", 0};
          views.swap(kept);
        }
        VANE_INFO("agent %s: targets changed (version %s): probing %zu endpoints", agent.vantage.c_str(),
                  version.c_str(), got->second.size());
        checker.set_targets(std::move(got->second));
      }
    }
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
