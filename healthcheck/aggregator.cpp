#include "aggregator.h"

#include <algorithm>
#include <set>

namespace vane::healthcheck {

namespace {

bool fresh(const VantageView& v, uint32_t interval_ms, uint64_t now_ms) {
  return v.self || now_ms <= v.at_ms + 3ULL * interval_ms;
}

}  // namespace

VantageView& Aggregator::Endpoint::view(const std::string& vantage) {
  auto it = std::lower_bound(views.begin(), views.end(), vantage, [](const auto& v, const std::string& name) {
    return v.first < name;
  });
  if (it == views.end() || it->first != vantage) it = views.insert(it, {vantage, VantageView{}});
  return it->second;
}

void Aggregator::set_endpoint(const std::string& key, const Params& p, bool current_up) {
  auto [it, inserted] = endpoints_.try_emplace(key);
  it->second.params = p;
  if (inserted) it->second.up = current_up;
}

void Aggregator::retain(const std::vector<std::string>& keys) {
  std::set<std::string> keep(keys.begin(), keys.end());
  std::erase_if(endpoints_, [&](const auto& kv) { return !keep.count(kv.first); });
}

bool Aggregator::counts(const VantageView& v, uint32_t interval_ms, uint64_t now_ms) const {
  return fresh(v, interval_ms, now_ms) && (!v.relayed || remote_trusted_);
}

std::optional<Decision> Aggregator::decide(Endpoint& e, uint64_t now_ms) {
  // Every endpoint, every tick: count first, and put the reason in words
  // only for a verdict that changes.
  size_t n = 0, down = 0;
  for (const auto& [vantage, v] : e.views)
    if (counts(v, e.params.interval_ms, now_ms)) {
      ++n;
      down += !v.up;
    }
  if (n < e.params.min_vantages) return std::nullopt;  // too few fresh vantages: keep the last verdict
  bool up = !(down > 0 && double(down) >= e.params.quorum * double(n));
  if (up == e.up) return std::nullopt;
  e.up = up;
  std::string why;
  for (const auto& [vantage, v] : e.views) {
    bool f = counts(v, e.params.interval_ms, now_ms);
    why += (why.empty() ? "" : ", ") + vantage + ": " + (v.up ? "up" : "down") + (f ? "" : " (stale)");
    if (!v.detail.empty() && f) why += " '" + v.detail + "'";
  }
  return Decision{up, why};
}

std::optional<Decision> Aggregator::observe(const std::string& key, const std::string& vantage, const VantageView& view,
                                            uint64_t now_ms) {
  auto it = endpoints_.find(key);
  if (it == endpoints_.end()) return std::nullopt;
  VantageView v = view;
  v.at_ms = now_ms;
  it->second.view(vantage) = v;
  return decide(it->second, now_ms);
}

std::vector<std::pair<std::string, Decision>> Aggregator::tick(uint64_t now_ms) {
  std::vector<std::pair<std::string, Decision>> out;
  for (auto& [key, e] : endpoints_)
    if (auto d = decide(e, now_ms)) out.emplace_back(key, *d);
  return out;
}

void Aggregator::put_view(const std::string& key, const std::string& vantage, const VantageView& view) {
  auto it = endpoints_.find(key);
  if (it == endpoints_.end()) return;
  VantageView& v = it->second.view(vantage) = view;
  v.relayed = true;
}

void Aggregator::forget(const std::string& key, const std::string& vantage) {
  auto it = endpoints_.find(key);
  if (it != endpoints_.end())
    std::erase_if(it->second.views, [&](const auto& v) { return v.first == vantage; });
}

void Aggregator::retain_views(const std::set<std::pair<std::string, std::string>>& keep) {
  for (auto& kv : endpoints_) {
    const std::string& key = kv.first;  // (clang 14 cannot capture a structured binding)
    std::erase_if(kv.second.views, [&](const auto& v) { return !v.second.self && !keep.count({key, v.first}); });
  }
}

void Aggregator::refresh_remote(uint64_t now_ms) {
  remote_trusted_ = true;
  for (auto& [key, e] : endpoints_)
    for (auto& [vantage, v] : e.views)
      if (!v.self) v.at_ms = now_ms;
}

void Aggregator::distrust_remote() { remote_trusted_ = false; }

void Aggregator::set_verdict(const std::string& key, bool up) {
  auto it = endpoints_.find(key);
  if (it != endpoints_.end()) it->second.up = up;
}

bool Aggregator::verdict(const std::string& key) const {
  auto it = endpoints_.find(key);
  return it == endpoints_.end() || it->second.up;
}

std::map<std::string, std::pair<VantageView, bool>> Aggregator::views(const std::string& key, uint64_t now_ms) const {
  std::map<std::string, std::pair<VantageView, bool>> out;
  auto it = endpoints_.find(key);
  if (it == endpoints_.end()) return out;
  for (const auto& [vantage, v] : it->second.views) out[vantage] = {v, counts(v, it->second.params.interval_ms, now_ms)};
  return out;
}

}  // namespace vane::healthcheck
