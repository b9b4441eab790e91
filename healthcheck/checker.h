// The health checker: probes (TCP connect, HTTP/HTTPS through libcurl's
// multi interface driven by libuv, DNS over UDP) on its own thread and its
// own libuv loop, never on a DNS worker. Each endpoint's consecutive results
// go through fall/rise; a verdict change is reported through a callback (on
// the checker thread) — the daemon records it and updates the endpoint state
// the DNS workers read.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config.h"

namespace vane::healthcheck {

// One endpoint to probe, with the check it uses (its settings shared by
// every target of that check: tens of thousands of endpoints, a few checks).
struct Target {
  std::string key;  // "www.example.com./A/use1"
  std::shared_ptr<const CheckSpec> check;
  std::string address;  // numeric IP to connect to
  uint16_t port = 0;
  bool initial_up = true;  // the verdict to start from (stored, else up)
};

struct Verdict {
  std::string key;
  bool up;
  std::string detail;  // the last probe's result in words
  double rtt_ms;
};

struct ProbeResult {
  bool ok;
  std::string detail;
  double rtt_ms;
};

class Checker {
 public:
  using OnVerdict = std::function<void(const Verdict&)>;
  // After each successful probe: the median RTT of the endpoint's last 5
  // successful probes (on the checker thread).
  using OnRtt = std::function<void(const std::string& key, double median_ms)>;
  // When an endpoint starts or stops wavering: probes that disagree with
  // its verdict, short of fall (or rise) (on the checker thread).
  using OnWaver = std::function<void(const std::string& key, bool wavering)>;
  explicit Checker(OnVerdict on_verdict, OnRtt on_rtt = {}, OnWaver on_waver = {});
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  void start();
  void stop();
  // Replaces the set of targets (thread-safe). Counters and verdicts carry
  // over for keys that stay with the same check.
  void set_targets(std::vector<Target> targets);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Builds the targets for every endpoint with a check: in the config.
std::vector<Target> targets_from(const Config& cfg);

// What GET /v1/targets serves agents, and reads back: every field a probe
// needs (the check's settings, the address and port, the current verdict):
// {"targets": [...]}, each target with its check's settings written out
// (the inline form), or {"checks": {name: settings}, "targets": [...]},
// each target naming its check (the shared form, ?checks=shared).
std::string targets_document(const std::vector<Target>& targets, bool shared_checks, const std::string& version);
nlohmann::json target_to_json(const Target& t, bool shared_checks);
// Either form; nullopt and `error` set when the document is not one.
std::optional<std::vector<Target>> targets_from_json(const nlohmann::json& doc, std::string& error);

}  // namespace vane::healthcheck
