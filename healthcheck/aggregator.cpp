#include "aggregator.h"

#include <algorithm>

namespace vane::healthcheck {

namespace {

// Distinct detail texts kept before the unused ones are dropped: probes
// word their results from a few fixed forms, but an agent's are its own.
constexpr size_t kMaxDetails = 4096;  // View::detail has 13 bits

}  // namespace

Aggregator::Endpoint* Aggregator::find(Id id) {
  auto it = std::lower_bound(endpoints_.begin(), endpoints_.end(), id,
                             [](const Endpoint& e, Id want) { return e.id < want; });
  return it != endpoints_.end() && it->id == id ? &*it : nullptr;
}

const Aggregator::Endpoint* Aggregator::find(Id id) const { return const_cast<Aggregator*>(this)->find(id); }

Aggregator::View& Aggregator::view(Endpoint& e, const std::string& vantage) {
  std::optional<uint16_t> known = vantage_number(vantage);
  if (!known) vantages_.push_back(vantage);
  uint16_t n = known ? *known : static_cast<uint16_t>(vantages_.size() - 1);
  auto it = std::lower_bound(e.views.begin(), e.views.end(), n, [](const View& v, uint16_t want) {
    return v.vantage < want;
  });
  if (it == e.views.end() || it->vantage != n) {
    it = e.views.insert(it, View{});
    it->vantage = n;
  }
  return *it;
}

void Aggregator::put(View& v, const VantageView& from) {
  v.at_ms = from.at_ms;
  v.rtt_ms = static_cast<float>(from.rtt_ms);
  v.up = from.up;
  v.self = from.self;
  v.relayed = from.relayed;
  v.order = from.order;
  auto known = detail_ids_.find(from.detail);
  if (known != detail_ids_.end()) {
    v.detail = known->second;
    return;
  }
  if (details_.size() >= kMaxDetails) {  // renumber the texts still in use
    std::vector<uint32_t> renumber(details_.size(), UINT32_MAX);
    std::vector<std::string> kept{""};
    renumber[0] = 0;
    v.detail = 0;
    for (auto& e : endpoints_)
      for (auto& w : e.views) {
        if (renumber[w.detail] == UINT32_MAX) {
          renumber[w.detail] = static_cast<uint32_t>(kept.size());
          kept.push_back(std::move(details_[w.detail]));
        }
        w.detail = renumber[w.detail];
      }
    details_ = std::move(kept);
    detail_ids_.clear();
    for (uint32_t i = 0; i < details_.size(); ++i) detail_ids_.emplace(details_[i], i);
  }
  v.detail = static_cast<uint32_t>(details_.size());
  details_.push_back(from.detail);
  detail_ids_.emplace(from.detail, uint32_t{v.detail});
}

VantageView Aggregator::expand(const View& v) const {
  return VantageView{v.up, v.at_ms, v.rtt_ms, details_[v.detail], v.self, v.relayed, v.order};
}

std::vector<Aggregator::Id> Aggregator::set_endpoints(std::vector<Spec> specs) {
  std::sort(specs.begin(), specs.end(), [](const Spec& a, const Spec& b) { return a.id < b.id; });
  std::vector<Endpoint> next;
  next.reserve(specs.size());
  std::vector<Id> added;
  auto old = endpoints_.begin();
  for (const Spec& s : specs) {
    if (!next.empty() && next.back().id == s.id) continue;
    while (old != endpoints_.end() && old->id < s.id) ++old;
    if (old != endpoints_.end() && old->id == s.id) {
      next.push_back(std::move(*old));
    } else {
      next.push_back(Endpoint{s.id, 0, 0, 0, s.up, {}});
      added.push_back(s.id);
    }
    Endpoint& e = next.back();
    e.interval_ms = s.params.interval_ms;
    e.quorum = static_cast<float>(s.params.quorum);
    e.min_vantages = static_cast<uint16_t>(std::min<uint32_t>(s.params.min_vantages, UINT16_MAX));
  }
  endpoints_ = std::move(next);
  return added;
}

bool Aggregator::counts(const View& v, uint32_t interval_ms, uint64_t now_ms) const {
  bool fresh = v.self || now_ms <= v.at_ms + 3ULL * interval_ms;
  return fresh && (!v.relayed || remote_trusted_);
}

std::optional<Decision> Aggregator::decide(Endpoint& e, uint64_t now_ms) {
  // Every endpoint, every tick: count first, and put the reason in words
  // only for a verdict that changes.
  size_t n = 0, down = 0;
  for (const View& v : e.views)
    if (counts(v, e.interval_ms, now_ms)) {
      ++n;
      down += !v.up;
    }
  if (n < e.min_vantages) return std::nullopt;  // too few fresh vantages: keep the last verdict
  bool up = !(down > 0 && double(down) >= double(e.quorum) * double(n));
  if (up == e.up) return std::nullopt;
  e.up = up;
  std::string why;
  for (const View& v : e.views) {
    bool f = counts(v, e.interval_ms, now_ms);
    why += (why.empty() ? "" : ", ") + vantages_[v.vantage] + ": " + (v.up ? "up" : "down") + (f ? "" : " (stale)");
    if (v.detail && f) why += " '" + details_[v.detail] + "'";
  }
  return Decision{up, why};
}

std::optional<Decision> Aggregator::observe(Id id, const std::string& vantage, const VantageView& view,
                                            uint64_t now_ms) {
  Endpoint* e = find(id);
  if (!e) return std::nullopt;
  View& v = this->view(*e, vantage);
  put(v, view);
  v.at_ms = now_ms;
  return decide(*e, now_ms);
}

std::vector<std::pair<Aggregator::Id, Decision>> Aggregator::tick(uint64_t now_ms) {
  std::vector<std::pair<Id, Decision>> out;
  for (Endpoint& e : endpoints_)
    if (auto d = decide(e, now_ms)) out.emplace_back(e.id, *d);
  return out;
}

void Aggregator::put_view(Id id, const std::string& vantage, const VantageView& view) {
  Endpoint* e = find(id);
  if (!e) return;
  View& v = this->view(*e, vantage);
  put(v, view);
  v.relayed = true;
}

std::optional<uint16_t> Aggregator::vantage_number(const std::string& vantage) const {
  auto named = std::find(vantages_.begin(), vantages_.end(), vantage);
  if (named == vantages_.end()) return std::nullopt;
  return static_cast<uint16_t>(named - vantages_.begin());
}

void Aggregator::forget(Id id, const std::string& vantage) {
  Endpoint* e = find(id);
  auto n = vantage_number(vantage);
  if (!e || !n) return;
  std::erase_if(e->views, [&](const View& v) { return v.vantage == *n; });
}

void Aggregator::retain_views(const std::set<std::pair<Id, std::string>>& keep) {
  for (Endpoint& e : endpoints_)
    std::erase_if(e.views, [&](const View& v) { return !v.self && !keep.count({e.id, vantages_[v.vantage]}); });
}

void Aggregator::refresh_remote(uint64_t now_ms) {
  remote_trusted_ = true;
  for (Endpoint& e : endpoints_)
    for (View& v : e.views)
      if (!v.self) v.at_ms = now_ms;
}

void Aggregator::distrust_remote() { remote_trusted_ = false; }

void Aggregator::set_verdict(Id id, bool up) {
  if (Endpoint* e = find(id)) e->up = up;
}

bool Aggregator::verdict(Id id) const {
  const Endpoint* e = find(id);
  return !e || e->up;
}

const Aggregator::View* Aggregator::find_view(Id id, const std::string& vantage) const {
  const Endpoint* e = find(id);
  auto n = vantage_number(vantage);
  if (!e || !n) return nullptr;
  for (const View& v : e->views)
    if (v.vantage == *n) return &v;
  return nullptr;
}

std::optional<VantageView> Aggregator::view(Id id, const std::string& vantage) const {
  const View* v = find_view(id, vantage);
  if (!v) return std::nullopt;
  return expand(*v);
}

ReportOrder Aggregator::order(Id id, const std::string& vantage) const {
  const View* v = find_view(id, vantage);
  return v ? v->order : ReportOrder{};
}

std::map<std::string, std::pair<VantageView, bool>> Aggregator::views(Id id, uint64_t now_ms) const {
  std::map<std::string, std::pair<VantageView, bool>> out;
  const Endpoint* e = find(id);
  if (!e) return out;
  for (const View& v : e->views) out[vantages_[v.vantage]] = {expand(v), counts(v, e->interval_ms, now_ms)};
  return out;
}

}  // namespace vane::healthcheck
