// Failback discipline and flap damping (DESIGN.md "Failback and damping").
//
// A failover record with `failback: manual` or a duration that fails over
// because its tier's health failed is *held*: the endpoints of the tiers it
// left get the override "held", which keeps them out of answers while a
// lower tier has an endpoint up (steering.cpp). The hold is released by
// `vanectl failback`, or — with a duration — once a held-back tier has been
// continuously healthy that long, or when nothing outside the hold is up.
// An endpoint whose verdict changes more than `flips` times within
// `window` gets the timed override "damped" (down) for `hold`.
//
// Both are ordinary stored overrides: durable, shared by a cluster, shown by
// status, journaled; main loop only. In a cluster the node that writes
// health verdicts also writes holds, releases and damping.
#include <algorithm>

#include "control.h"
#include "explain.h"
#include "log.h"

namespace vane::server {

using admin::Json;
using zones::Override;

namespace {

std::string failback_text(int64_t failback) {
  if (failback == zones::kFailbackAuto) return "auto";
  if (failback == zones::kFailbackManual) return "manual";
  return admin::format_duration(static_cast<uint64_t>(failback));
}

Override override_of(const zones::EndpointState& s) {
  return static_cast<Override>(s.override_state.load(std::memory_order_relaxed));
}

// A record's endpoints as a review sees them: up or not and the override,
// 4 bits each, exact for up to 16 endpoints (no two states alike); a record
// with more is reviewed every time.
constexpr uint64_t kNotSteady = UINT64_MAX;  // no nibble is 0xF: overrides end at 5
static_assert(static_cast<uint8_t>(Override::kDamped) < 7);

uint64_t endpoint_states(std::span<const zones::SteeredEndpoint> eps, const zones::StateTable& states) {
  if (eps.size() > 16) return kNotSteady;
  uint64_t d = 0;
  for (const auto& ep : eps) {
    const auto& s = states.at(ep.state);
    d = d << 4 | uint64_t(zones::endpoint_up(s)) << 3 | static_cast<uint8_t>(override_of(s));
  }
  return d;
}

}  // namespace

Control::Tiers Control::tiers(std::span<const zones::SteeredEndpoint> eps, const std::string& skip_key,
                              const zones::SteeredInfo& info, uint16_t type) const {
  Tiers t;
  for (size_t i = 0; i < eps.size(); ++i) {
    const auto& s = srv_.states().at(eps[i].state);
    t.top = std::min(t.top, eps[i].priority);
    if (override_of(s) == Override::kHeld) t.held = true;
    if (!skip_key.empty() && zones::endpoint_key(info.name, type, info.endpoints[i]) == skip_key) continue;
    if (!zones::endpoint_up(s)) continue;
    ++t.up;
    t.best = std::min(t.best, eps[i].priority);
    if (override_of(s) != Override::kHeld) t.served = std::min(t.served, eps[i].priority);
  }
  return t;
}

bool Control::decides() const { return !cluster_ || (cluster_->connected() && cluster_->writes_health()); }

// The failover records with a failback policy in `snap`; built again only
// for a new snapshot (and the index by endpoint slot only once asked for).
void Control::take_failback_records(const std::shared_ptr<const zones::ZoneSet>& snap) {
  if (failback_snap_.lock() == snap) return;
  failback_snap_ = snap;
  failback_records_.clear();
  failback_by_slot_.clear();
  for (const auto& z : snap->zones())
    for (const auto& r : z->steered_records()) {
      const auto& info = z->info(r);
      if (r.policy == zones::Policy::kFailover && info.failback != zones::kFailbackAuto)
        failback_records_.push_back({z.get(), &r, zones::record_key(info.name, r.type), kNotSteady});
    }
}

// Every tick and after verdicts. A record whose endpoints are as they were
// when it was last found steady (not held, answering where it was) is
// skipped: 100 000 such records cost a third of a core when each was looked
// up by name every 100 ms.
void Control::review_failback(uint64_t now) {
  auto snap = srv_.snapshot();
  take_failback_records(snap);
  bool decided = decides();
  bool all = failback_review_all_ || decided != failback_decided_;
  failback_review_all_ = false;
  failback_decided_ = decided;
  for (auto& e : failback_records_) {
    const zones::Zone* z = e.zone;
    const zones::SteeredRecord& r = *e.record;
    const auto& info = z->info(r);
    const std::string& id = e.id;
    auto eps = z->endpoints(r);
    uint64_t states = endpoint_states(eps, srv_.states());
    if (states != kNotSteady && states == e.steady && !all) continue;
    e.steady = kNotSteady;
    if (failback_writing_.count(id)) continue;
    Tiers t = tiers(eps, "", info, r.type);
    if (!t.held) {
      holding_since_.erase(id);
      preferred_healthy_since_.erase(id);
      // Failed over from the tier it answered from (at first sight: the
      // preferred one), because that tier's health failed — an operator's
      // drain or force is a decision, not a failure.
      auto prev = best_tier_.find(id);
      uint32_t before = prev == best_tier_.end() ? t.top : prev->second;
      if (t.best != UINT32_MAX && t.best > before && decided) {
        bool failed = false;
        for (size_t i = 0; i < eps.size(); ++i) {
          const auto& s = srv_.states().at(eps[i].state);
          if (eps[i].priority == before && !zones::endpoint_up(s) &&
              (override_of(s) == Override::kAuto || override_of(s) == Override::kDamped))
            failed = true;
        }
        if (failed && place_hold(id, *z, r, before, t.best, now)) continue;
      }
      best_tier_[id] = t.best;
      e.steady = states;
      continue;
    }
    if (!holding_since_.count(id)) {  // after a restart: when it was stored
      uint64_t since = now;
      auto stored = store_.overrides();
      for (const auto& name : info.endpoints)
        if (auto it = stored.find(zones::endpoint_key(info.name, r.type, name));
            it != stored.end() && it->second.state == "held" && it->second.at_ms)
          since = std::min(since, it->second.at_ms);
      holding_since_[id] = since;
    }
    if (t.served == UINT32_MAX && t.best != UINT32_MAX) {
      // Nothing outside the hold is up: answers already went back (the
      // hold gives way); say so on the record.
      if (decided) release(id, *z, r, "no endpoint outside the hold is up", "vaned", {});
      continue;
    }
    if (t.best < t.served) {  // a held-back tier is up
      auto [it, fresh] = preferred_healthy_since_.try_emplace(id, now);
      if (info.failback > 0 && now - it->second >= uint64_t(info.failback) && decided)
        release(id, *z, r,
                "tier " + std::to_string(t.best) + " healthy for " + failback_text(info.failback) +
                    " (failback: " + failback_text(info.failback) + ")",
                "vaned", {});
    } else {
      preferred_healthy_since_.erase(id);
    }
    best_tier_[id] = t.served;
  }
}

bool Control::place_hold(const std::string& id, const zones::Zone& z, const zones::SteeredRecord& r, uint32_t from,
                         uint32_t to, uint64_t now) {
  const auto& info = z.info(r);
  auto eps = z.endpoints(r);
  std::string why = "failed over from tier " + std::to_string(from) + " to " + std::to_string(to) +
                    "; failback: " + failback_text(info.failback);
  std::vector<admin::StateStore::Change> changes;
  std::vector<uint32_t> slots;
  Json held = Json::array();
  for (size_t i = 0; i < eps.size(); ++i) {
    if (eps[i].priority >= to || override_of(srv_.states().at(eps[i].state)) != Override::kAuto) continue;
    std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
    changes.push_back({key, std::nullopt,
                       std::optional<admin::Override>{admin::Override{"held", 0, why, 0, now, {}, {}}}, std::nullopt});
    slots.push_back(eps[i].state);
    held.push_back(info.endpoints[i]);
  }
  if (changes.empty()) return false;
  Json j{{"action", "hold"},   {"record", id},     {"endpoints", held},
         {"from_tier", from}, {"to_tier", to},    {"failback", failback_text(info.failback)},
         {"reason", why},     {"by", "vaned"}};
  failback_writing_.insert(id);
  writer_.commit(changes, j, [this, id, slots, to, why](std::optional<Error> err, uint64_t) {
    failback_writing_.erase(id);
    failback_review_all_ = true;
    if (err) {  // best_tier_ still says where it was: the next review tries again
      VANE_ERROR("failback: cannot record the hold of %s: %s", id.c_str(), err->message.c_str());
      return;
    }
    for (uint32_t slot : slots)
      if (override_of(srv_.states().at(slot)) == Override::kAuto) apply_override(slot, "held");
    best_tier_[id] = to;
    VANE_WARN("failback: %s %s — held there until released", id.c_str(), why.c_str());
  });
  return true;
}

void Control::release(const std::string& id, const zones::Zone& z, const zones::SteeredRecord& r,
                      const std::string& why, const std::string& by, std::function<void(Json)> reply,
                      const admin::Peer* peer) {
  const auto& info = z.info(r);
  auto eps = z.endpoints(r);
  std::vector<admin::StateStore::Change> changes;
  std::vector<uint32_t> slots;
  Json released = Json::array();
  for (size_t i = 0; i < eps.size(); ++i) {
    if (override_of(srv_.states().at(eps[i].state)) != Override::kHeld) continue;
    changes.push_back({zones::endpoint_key(info.name, r.type, info.endpoints[i]), std::nullopt,
                       std::optional<admin::Override>{}, std::nullopt});
    slots.push_back(eps[i].state);
    released.push_back(info.endpoints[i]);
  }
  uint64_t now = admin::now_ms();
  Json j{{"action", "failback"}, {"record", id}, {"endpoints", released}, {"reason", why}};
  if (peer) {
    peer->stamp(j);
  } else {
    j["by"] = by;
  }
  if (auto it = holding_since_.find(id); it != holding_since_.end()) j["held_s"] = (now - it->second) / 1000;
  if (auto it = preferred_healthy_since_.find(id); it != preferred_healthy_since_.end())
    j["healthy_s"] = (now - it->second) / 1000;
  failback_writing_.insert(id);
  writer_.commit(changes, j, [this, id, slots, why, released, reply](std::optional<Error> err, uint64_t seq) {
    failback_writing_.erase(id);
    failback_review_all_ = true;
    if (err) {
      VANE_ERROR("failback: cannot record the release of %s: %s", id.c_str(), err->message.c_str());
      if (reply) reply(admin::error_reply(err->to_string(), "unavailable"));
      return;
    }
    for (uint32_t slot : slots)
      if (override_of(srv_.states().at(slot)) == Override::kHeld) apply_override(slot, "auto");
    holding_since_.erase(id);
    preferred_healthy_since_.erase(id);
    best_tier_.erase(id);  // the next review starts from where it answers now
    ++admin_changes_["failback"];
    VANE_WARN("failback: %s released (%s)", id.c_str(), why.c_str());
    if (reply) reply({{"ok", true}, {"record", id}, {"released", released}, {"seq", seq}});
  });
}

// vanectl failback RECORD [--reason TEXT]: ends a hold now.
void Control::failback(const Json& req, const admin::Peer& peer, admin::Reply reply) {
  for (const auto& [key, value] : req.items())
    if (key != "cmd" && key != "record" && key != "reason")
      return reply(admin::error_reply("unknown field '" + key + "' for failback"));
  auto rec = req.find("record");
  if (rec == req.end() || !rec->is_string() || rec->get<std::string>().size() > 255)
    return reply(admin::error_reply("missing \"record\" (a string)"));
  std::string reason;
  if (auto it = req.find("reason"); it != req.end()) {
    if (!it->is_string() || it->get<std::string>().size() > 500)
      return reply(admin::error_reply("\"reason\" must be a string of at most 500 bytes"));
    reason = it->get<std::string>();
  }
  auto snap = srv_.snapshot();
  auto found = find_record(*snap, rec->get<std::string>());
  if (!found) return reply(admin::error_reply(found.error().message, "not_found"));
  auto [z, r] = *found;
  const auto& info = z->info(*r);
  std::string id = zones::record_key(info.name, r->type);
  if (r->policy != zones::Policy::kFailover)
    return reply(admin::error_reply(id + " is a " + zones::policy_name(r->policy) +
                                    " record: failback is for failover records"));
  Tiers t = tiers(z->endpoints(*r), "", info, r->type);
  if (!t.held)
    return reply(admin::error_reply(id + " is not held (failback: " + failback_text(info.failback) +
                                    "; answering from tier " +
                                    (t.best == UINT32_MAX ? std::string("none: every endpoint is down")
                                                          : std::to_string(t.best)) +
                                    ")"));
  if (failback_writing_.count(id)) return reply(admin::error_reply(id + ": a change to its hold is being written; retry"));
  release(id, *z, *r, reason.empty() ? "vanectl failback" : reason, "", reply, &peer);
}

// Damping: called for every verdict change this node records.
// Per verdict change: found by slot, not by looking through every record
// (that made 200 000 endpoints going down at once take minutes).
const zones::SteeredInfo::Damping* Control::damping_of(uint32_t slot) {
  auto snap = srv_.snapshot();
  if (damping_snap_.lock() != snap) {
    damping_snap_ = snap;
    damping_by_slot_.clear();
    for (const auto& z : snap->zones())
      for (const auto& r : z->steered_records()) {
        const auto& info = z->info(r);
        auto eps = z->endpoints(r);
        for (size_t i = 0; i < info.damping.size() && i < eps.size(); ++i)
          if (info.damping[i].flips) damping_by_slot_[eps[i].state] = info.damping[i];
      }
  }
  auto it = damping_by_slot_.find(slot);
  return it == damping_by_slot_.end() ? nullptr : &it->second;
}

void Control::note_flip(const std::string& key, uint32_t slot, uint64_t now) {
  const zones::SteeredInfo::Damping* d = damping_of(slot);
  auto ov = override_of(srv_.states().at(slot));
  if (!d || ov == Override::kDamped || damping_writing_.count(key)) return;
  auto& times = flip_times_[key];
  times.push_back(now);
  times.erase(times.begin(), std::lower_bound(times.begin(), times.end(), now - std::min(now, d->window_ms)));
  if (times.size() <= d->flips || (ov != Override::kAuto && ov != Override::kHeld)) return;
  std::string why = std::to_string(times.size()) + " verdict changes within " + admin::format_duration(d->window_ms) +
                    " (damping: more than " + std::to_string(d->flips) + ")";
  admin::Override o{"damped", now + d->hold_ms, why, 0, now, {}, {}};
  Json flips = Json::array();
  for (uint64_t t : times) flips.push_back(admin::format_time(t));
  Json j{{"action", "damp"}, {"endpoint", key},    {"from", zones::override_name(ov)},
         {"to", "damped"},   {"until", admin::format_time(o.until_ms)}, {"flips", flips},
         {"reason", why},    {"by", "vaned"}};
  damping_writing_.insert(key);
  writer_.commit({{key, std::nullopt, std::optional<admin::Override>{o}, std::nullopt}}, j,
                 [this, key, slot, o](std::optional<Error> err, uint64_t) {
                   damping_writing_.erase(key);
                   if (err) {
                     VANE_ERROR("damping: cannot record the hold of %s: %s", key.c_str(), err->message.c_str());
                     return;
                   }
                   apply_override(slot, "damped");
                   expiries_[key] = o;
                   flip_times_.erase(key);
                   VANE_WARN("damping: %s held down until %s: %s", key.c_str(), admin::format_time(o.until_ms).c_str(),
                             o.reason.c_str());
                 });
}

// A damped endpoint's hold is over. Of a failover record with a failback
// policy that answers from a lower tier (or is held), it stays held back
// rather than taking traffic back at once.
std::optional<admin::Override> Control::after_damping(const std::string& key) {
  // By slot, not by looking through every record: damping often ends for
  // many endpoints at once.
  auto snap = srv_.snapshot();  // failback_records_ point into it
  take_failback_records(snap);
  if (failback_by_slot_.empty())  // not built since the snapshot changed (or nothing to index)
    for (uint32_t n = 0; n < failback_records_.size(); ++n) {
      auto eps = failback_records_[n].zone->endpoints(*failback_records_[n].record);
      for (uint32_t i = 0; i < eps.size(); ++i) failback_by_slot_[eps[i].state] = {n, i};
    }
  auto at = failback_by_slot_.find(srv_.states().find(key));
  if (at == failback_by_slot_.end()) return std::nullopt;
  const FailbackRecord& e = failback_records_[at->second.first];
  const auto& info = e.zone->info(*e.record);
  auto eps = e.zone->endpoints(*e.record);
  Tiers t = tiers(eps, key, info, e.record->type);
  if (!t.held && (t.served == UINT32_MAX || t.served <= eps[at->second.second].priority)) return std::nullopt;
  std::string why = "damping ended; failback: " + failback_text(info.failback);
  return admin::Override{"held", 0, why, 0, admin::now_ms(), {}, {}};
}

Result<std::pair<const zones::Zone*, const zones::SteeredRecord*>> Control::find_record(const zones::ZoneSet& zs,
                                                                                       std::string record) {
  std::string type;
  if (size_t slash = record.rfind('/'); slash != std::string::npos) {
    type = record.substr(slash + 1);
    record.resize(slash);
    std::transform(type.begin(), type.end(), type.begin(), ::toupper);
  }
  std::transform(record.begin(), record.end(), record.begin(), ::tolower);
  if (!record.empty() && record.back() != '.') record += '.';
  std::vector<std::pair<const zones::Zone*, const zones::SteeredRecord*>> found;
  std::string types;
  for (const auto& z : zs.zones())
    for (const auto& r : z->steered_records())
      if (z->info(r).name == record && (type.empty() || type == zones::steered_type_name(r.type))) {
        found.emplace_back(z.get(), &r);
        types += (types.empty() ? "" : ", ") + zones::record_key(z->info(r).name, r.type);
      }
  if (found.empty())
    return Error{"", 0,
                 "no steered record '" + record + (type.empty() ? "" : "/" + type) +
                     "'; steered records: " + zones::steered_record_list(zs)};
  if (found.size() > 1) return Error{"", 0, record + " has several steered types: say which (" + types + ")"};
  return found[0];
}

Control::FailbackView Control::failback_view(const zones::Zone& z, const zones::SteeredRecord& r) const {
  const auto& info = z.info(r);
  FailbackView v;
  v.tiers = tiers(z.endpoints(r), "", info, r.type);
  v.answering = v.tiers.served != UINT32_MAX ? v.tiers.served : v.tiers.best;
  v.failed_over = v.answering != UINT32_MAX && v.answering > v.tiers.top;
  if (v.tiers.held) {
    std::string id = zones::record_key(info.name, r.type);
    if (auto since = holding_since_.find(id); since != holding_since_.end()) v.held_since_ms = since->second;
    if (auto h = preferred_healthy_since_.find(id); h != preferred_healthy_since_.end()) v.healthy_since_ms = h->second;
  }
  return v;
}

Json Control::failback_status(const zones::Zone& z, const zones::SteeredRecord& r, uint64_t now) const {
  FailbackView v = failback_view(z, r);
  Json out{{"failback", failback_text(z.info(r).failback)},
           {"preferred_tier", v.tiers.top},
           {"tier", v.answering == UINT32_MAX ? Json(nullptr) : Json(v.answering)},
           {"failed_over", v.failed_over},
           {"held", v.tiers.held}};
  if (v.tiers.held) {
    if (v.held_since_ms) {
      out["held_since"] = admin::format_time(v.held_since_ms);
      out["held_s"] = admin::elapsed_ms(now, v.held_since_ms) / 1000;
    }
    out["preferred_healthy_s"] =
        v.healthy_since_ms ? Json(admin::elapsed_ms(now, v.healthy_since_ms) / 1000) : Json(nullptr);
  }
  return out;
}

}  // namespace vane::server
