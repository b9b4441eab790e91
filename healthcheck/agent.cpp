#include "agent.h"

#include <curl/curl.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
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
  if (s->size() + size * n > (256u << 20)) return 0;  // no targets document is that big
  s->append(p, size * n);
  return size * n;
}

// What GET /v1/targets gave: the version, and the targets unless the
// version is the one the agent has (304).
struct Fetched {
  std::string version;
  std::optional<std::vector<Target>> targets;
};

// GET /v1/targets?checks=shared from the main instance, or the error. A
// main instance from before the shared form ignores both the parameter and
// If-None-Match, and sends every check written out.
Result<Fetched> fetch_targets(const std::string& base, const std::string& auth, const std::string& have,
                              uint32_t timeout_ms) {
  std::string url = base + "/v1/targets?checks=shared";
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
  if (!have.empty()) headers = curl_slist_append(headers, ("If-None-Match: \"" + have + "\"").c_str());
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
  if (status == 304 && !have.empty()) return Fetched{have, std::nullopt};
  if (status != 200) return Error{url, 0, "HTTP " + std::to_string(status) + (status == 401 ? " (wrong token?)" : "")};
  auto doc = nlohmann::json::parse(body, nullptr, false);
  std::string why;
  auto targets = doc.is_object() ? targets_from_json(doc, why) : std::nullopt;
  if (!targets) return Error{url, 0, why.empty() ? "not JSON" : why};
  return Fetched{doc.value("version", ""), std::move(targets)};
}

// Fetched targets from the first node that answers.
Result<Fetched> fetch_from_any(const AgentConfig& agent, const std::string& auth, const std::string& have,
                               uint32_t timeout_ms) {
  Result<Fetched> got = Error{"", 0, "no report_to"};
  for (const auto& base : agent.report_to)
    if ((got = fetch_targets(base, auth, have, timeout_ms))) break;
  return got;
}

// One POST /v1/observations: true on a 200. Logs changes (failing, or
// reporting again), not every failed report.
bool post_report(const std::string& vantage, const std::string& url, const std::string& auth,
                 const std::string& payload, uint32_t timeout_ms, bool& failing) {
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(payload.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  bool ok = rc == CURLE_OK && status == 200;
  if (ok == failing) {
    if (ok)
      VANE_INFO("agent %s: reporting to %s", vantage.c_str(), url.c_str());
    else
      VANE_WARN("agent %s: report to %s failed: %s", vantage.c_str(), url.c_str(),
                rc != CURLE_OK ? curl_easy_strerror(rc) : ("HTTP " + std::to_string(status)).c_str());
    failing = !ok;
  }
  return ok;
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
  const uint32_t fetch_timeout_ms = std::max<uint32_t>(agent.report_interval_ms, 2000);
  // What to probe: a copy of the main config, or fetched from the main instance.
  std::vector<Target> targets;
  std::string version;
  if (!agent.config.empty()) {
    auto cfg = load_config(agent.config);
    if (!cfg) {
      VANE_ERROR("agent: %s", cfg.error().to_string().c_str());
      return 1;
    }
    targets = targets_from(*cfg);
  } else {
    for (bool logged = false; !g_stop;) {  // the main instance may start after us
      auto got = fetch_from_any(agent, auth, "", fetch_timeout_ms);
      if (got) {
        version = got->version;
        targets = std::move(*got->targets);
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
  std::string to;
  for (const auto& u : agent.report_to) to += (to.empty() ? "" : ", ") + u;
  VANE_INFO("agent %s: probing %zu endpoints (%s), reporting to %s every %u ms", agent.vantage.c_str(), targets.size(),
            agent.config.empty() ? ("fetched, version " + version).c_str() : agent.config.c_str(), to.c_str(),
            agent.report_interval_ms);
  // One body per half interval, whichever reporter asks first: with several
  // nodes and 10 000 endpoints, the same megabyte of JSON is not built once
  // per node.
  std::mutex body_mu;
  std::shared_ptr<const std::string> last_body;
  std::chrono::steady_clock::time_point last_body_at{};
  // Each body is numbered (ReportOrder): a node that gets an older report
  // late, after a newer one reached it or etcd, does not take it back.
  std::random_device entropy;
  const uint32_t boot = std::uniform_int_distribution<uint32_t>(1, UINT32_MAX)(entropy);
  uint32_t seq = 0;
  auto report = [&]() -> std::shared_ptr<const std::string> {
    std::lock_guard body_lock(body_mu);
    auto now = std::chrono::steady_clock::now();
    if (last_body && now - last_body_at < std::chrono::milliseconds(agent.report_interval_ms / 2)) return last_body;
    nlohmann::json body{
        {"vantage", agent.vantage}, {"boot", boot}, {"seq", ++seq}, {"observations", nlohmann::json::array()}};
    {
      std::lock_guard lock(mu);
      for (const auto& [key, v] : views)
        body["observations"].push_back(
            {{"endpoint", key}, {"up", v.up}, {"rtt_ms", rtt.count(key) ? rtt[key] : 0.0}, {"detail", v.detail}});
    }
    last_body = std::make_shared<const std::string>(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    last_body_at = now;
    return last_body;
  };
  // Each node on a thread of its own: a node that hangs (a cut path: the
  // POST waits out its timeout) delays nobody else's reports.
  std::vector<std::thread> reporters;
  for (const auto& base : agent.report_to)
    reporters.emplace_back([&, url = base + "/v1/observations"] {
      bool failing = false;
      auto next = std::chrono::steady_clock::now();
      while (!g_stop) {
        next += std::chrono::milliseconds(agent.report_interval_ms);
        post_report(agent.vantage, url, auth, *report(), std::max<uint32_t>(agent.report_interval_ms, 1000), failing);
        auto now = std::chrono::steady_clock::now();
        if (next < now) next = now;  // after a timeout: the next report now, not a burst of missed ones
        while (!g_stop && std::chrono::steady_clock::now() < next)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  bool fetch_failing = false;
  auto next_fetch = std::chrono::steady_clock::now() + std::chrono::milliseconds(agent.targets_refresh_ms);
  while (!g_stop) {
    if (agent.config.empty() && std::chrono::steady_clock::now() >= next_fetch) {
      // The main instance's records or checks changed (a reload): probe the new set.
      next_fetch += std::chrono::milliseconds(agent.targets_refresh_ms);
      auto got = fetch_from_any(agent, auth, version, fetch_timeout_ms);
      if (!got && !fetch_failing) VANE_WARN("agent: cannot fetch targets: %s (keeping the last ones)", got.error().to_string().c_str());
      fetch_failing = !got;
      if (got && got->targets && got->version != version) {
        version = got->version;
        {
          std::lock_guard lock(mu);
          std::map<std::string, Verdict> kept;
          for (const auto& t : *got->targets)
            kept[t.key] = views.count(t.key) ? views[t.key] : Verdict{t.key, t.initial_up, "", 0};
          views.swap(kept);
        }
        VANE_INFO("agent %s: targets changed (version %s): probing %zu endpoints", agent.vantage.c_str(),
                  version.c_str(), got->targets->size());
        checker.set_targets(std::move(*got->targets));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : reporters) t.join();
  checker.stop();
  VANE_INFO("agent %s: stopped", agent.vantage.c_str());
  return 0;
}

}  // namespace vane::healthcheck
