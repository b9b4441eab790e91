// Plans that run over time (DESIGN.md "Drills, ramps and TTLs"), and the TTL
// caps they and unsteady endpoints put on answers.
//
// A drill ("drill/<id>") lowers its record's TTL from (start − the record's
// TTL − kDrillMargin), forces the endpoint down at start (a timed override
// that ends at the drill's end), and ends. A ramp ("ramp/<endpoint>") moves
// an endpoint's effective weight from `from` to `to` between start and end.
// Both are stored plans — durable, shared by a cluster — and their effect is
// computed from the clock on every node each tick; the node that writes
// health verdicts also writes their steps, each journaled.
//
// A drill is exact as clients see it: its start and end are committed
// kDrillLead ahead (a tick plus a synced write), and in the seconds before
// either, the lowered TTL counts down so that an answer handed out then
// expires by it — even in a resolver whose clock counts whole seconds
// (Unbound keeps "TTL 3 at 12.9 s" until 16 s): TTL 1, then 0 in the last
// second (nothing cached for that one name for a second).
#include <algorithm>
#include <cmath>
#include <ctime>

#include "control.h"
#include "log.h"

namespace vane::server {

using admin::Json;
using zones::Override;

namespace {

constexpr uint64_t kDrillMargin = 5000;      // ms before (start − TTL) that the TTL is lowered
constexpr uint64_t kDrillLead = 200;         // ms ahead of its time that a drill's start and end are written
constexpr uint64_t kUnsteadyAfterFlip = 60000;  // ms after a verdict change or a wavering probe that a record stays unsteady
constexpr uint64_t kMaxPlan = 7ULL * 86400 * 1000;
constexpr size_t kMaxDrills = 256;  // scheduled at once

// "+35s" (from now) or "2026-11-26T10:00:00Z" (UTC).
bool parse_at(const std::string& text, uint64_t now, uint64_t& out) {
  uint64_t ms = 0;
  if (!text.empty() && text[0] == '+') {
    if (!parse_duration_ms(text.substr(1), ms)) return false;
    out = now + ms;
    return true;
  }
  tm t{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &t);
  if (!end || *end) return false;
  time_t s = timegm(&t);
  if (s < 0) return false;
  out = uint64_t(s) * 1000;
  return true;
}

// Fields of a stored plan (written by vaned, but read as if they might not
// be: a plan from etcd with a wrong type must not throw on the main loop).
uint64_t get_u64(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}
int get_int(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? int(std::clamp<int64_t>(it->get<int64_t>(), -1, 255)) : 0;
}
std::string get_str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

void Control::post_waver(const std::string& key, bool wavering) {
  {
    std::lock_guard lock(verdict_mu_);
    wavers_.emplace_back(key, wavering);
  }
  uv_async_send(&verdict_async_);
}

namespace {

// Whether a sorted set of "name/TYPE" keys may have one for `name` without
// building a key: such a key would be the first at or after `name`. (It may
// begin with `name` and be another's: look it up then.)
bool names(const std::set<std::string>& keys, const std::string& name) {
  auto it = keys.lower_bound(name);
  return it != keys.end() && it->compare(0, name.size(), name) == 0;
}

}  // namespace

// "name/TYPE" -> the record's own TTL and its state slot, for the records that drills name.
// Looked up again only when the snapshot or the drilled records change: a
// scheduled drill among 100 000 steered records took 43 % of a core idle
// when every record's key was built on every tick.
const std::map<std::string, Control::DrilledRecord>& Control::drill_ttls() {
  auto snap = srv_.snapshot();
  std::set<std::string> wanted;
  for (const auto& [id, p] : plans_)
    if (id.rfind("drill/", 0) == 0) wanted.insert(get_str(p, "record"));
  if (drill_ttls_snap_.lock() == snap && wanted == drilled_) return drill_ttls_;
  drill_ttls_snap_ = snap;
  drilled_ = std::move(wanted);
  drill_ttls_.clear();
  if (!drilled_.empty())
    for (const auto& z : snap->zones())
      for (const auto& r : z->steered_records()) {
        const std::string& name = z->info(r).name;
        if (!names(drilled_, name)) continue;
        std::string key = zones::record_key(name, r.type);
        if (drilled_.count(key)) drill_ttls_[key] = {r.ttl, r.state};
      }
  return drill_ttls_;
}

void Control::run_plans(uint64_t now) {
  // Every tick: nothing here may cost per record unless a plan needs it
  // (100 000 steered records would keep a core busy).
  const auto& ttl_of = drill_ttls();
  bool write = decides();
  zones::StateEdit ramps(srv_.states());  // two ramps of one record move together
  for (const auto& [id, p] : std::map<std::string, Json>(plans_)) {
    if (plan_writing_.count(id)) continue;
    std::string key = get_str(p, "endpoint");
    if (id.rfind("ramp/", 0) == 0) {
      uint64_t start = get_u64(p, "start_ms"), end = get_u64(p, "end_ms");
      int from = get_int(p, "from"), to = get_int(p, "to");
      double f = now >= end ? 1.0 : now <= start ? 0.0 : double(now - start) / double(end - start);
      int w = int(std::lround(from + (to - from) * f));
      auto weight = static_cast<int16_t>(std::clamp(w, 0, 255));
      if (uint32_t slot = srv_.states().find(key);
          slot != UINT32_MAX && srv_.states().at(slot).admin_weight.load(std::memory_order_relaxed) != weight)
        ramps.weight(key, slot, weight);
      if (now >= end && write) {
        ramps.publish();  // before the end is written: it may be applied at once
        admin::StateStore::Change c{key, std::optional<int>{to}, std::nullopt, std::nullopt};
        admin::StateStore::Change done{id, std::nullopt, std::nullopt, std::nullopt};
        done.plan = std::optional<Json>{};
        commit_plan(id, {c, done},
                    {{"action", "ramp-end"}, {"endpoint", key}, {"from", from}, {"to", to}, {"by", "vaned"}},
                    std::nullopt);
      }
      continue;
    }
    // A drill.
    uint64_t start = get_u64(p, "start_ms"), end = get_u64(p, "end_ms");
    std::string phase = (get_str(p, "phase").empty() ? std::string("scheduled") : get_str(p, "phase"));
    auto found = ttl_of.find(get_str(p, "record"));
    uint32_t ttl = found == ttl_of.end() ? 0 : found->second.ttl;
    uint32_t lower = uint32_t(get_u64(p, "lower_ttl"));
    if (!write) continue;
    Json j{{"endpoint", key}, {"drill", get_u64(p, "id")}, {"reason", get_str(p, "reason")}, {"by", "vaned"}};
    if (now >= end) {
      admin::StateStore::Change done{id, std::nullopt, std::nullopt, std::nullopt};
      done.plan = std::optional<Json>{};
      j["action"] = "drill-end";
      if (phase != "running") j["missed"] = "vaned was not running (or not deciding) during the drill's window";
      commit_plan(id, {done}, j, std::nullopt);
    } else if (now + kDrillLead >= start && phase != "running") {
      Json next = p;
      next["phase"] = "running";
      admin::Override o{"down",
                        end - std::min(end - start, kDrillLead),
                        "drill " + std::to_string(get_u64(p, "id")) + ": " + get_str(p, "reason"),
                        uint32_t(get_u64(p, "uid")),
                        now,
                        get_str(p, "by"),
                        {}};
      admin::StateStore::Change force{key, std::nullopt, std::optional<admin::Override>{o}, std::nullopt};
      admin::StateStore::Change step{id, std::nullopt, std::nullopt, std::nullopt};
      step.plan = std::optional<Json>{next};
      j["action"] = "drill-start";
      j["until"] = admin::format_time(end);
      commit_plan(id, {force, step}, j, o);
    } else if (lower && phase == "scheduled" && now + ttl * 1000ULL + kDrillMargin >= start) {
      Json next = p;
      next["phase"] = "lowered";
      admin::StateStore::Change step{id, std::nullopt, std::nullopt, std::nullopt};
      step.plan = std::optional<Json>{next};
      j["action"] = "drill-lower-ttl";
      j["from"] = ttl;
      j["to"] = lower;
      j["starts"] = admin::format_time(start);
      commit_plan(id, {step}, j, std::nullopt);
    }
  }
  update_caps(now);
}

// One step of a plan, written and then applied here (the others apply it
// from the cluster). `forced`: the override a drill's start puts in place.
void Control::commit_plan(const std::string& id, std::vector<admin::StateStore::Change> changes, Json journal,
                          std::optional<admin::Override> forced, admin::Reply reply) {
  plan_writing_.insert(id);
  writer_.commit(changes, journal, [this, id, changes, forced, reply, journal](std::optional<Error> err, uint64_t seq) {
    plan_writing_.erase(id);
    if (err) {
      VANE_ERROR("%s: cannot record %s: %s", id.c_str(), journal.value("action", "").c_str(), err->message.c_str());
      if (reply) reply(admin::error_reply(err->to_string(), "unavailable"));
      return;
    }
    apply_plan_changes(changes);
    if (forced) expiries_[changes[0].endpoint] = *forced;
    update_caps(admin::now_ms());
    VANE_INFO("%s: %s%s", id.c_str(), journal.value("action", "").c_str(),
              journal.contains("endpoint") ? (" " + journal["endpoint"].get<std::string>()).c_str() : "");
    if (reply) {
      Json out = journal;
      out["ok"] = true;
      out["seq"] = seq;
      reply(out);
    }
  });
}

// What a committed change does here at once (plans, overrides, weights).
void Control::apply_plan_changes(const std::vector<admin::StateStore::Change>& changes) {
  zones::StateEdit edit(srv_.states());  // answers see them together
  for (const auto& c : changes) {
    if (c.plan) {
      if (*c.plan)
        plans_[c.endpoint] = **c.plan;
      else
        plans_.erase(c.endpoint);
      continue;
    }
    uint32_t slot = srv_.states().find(c.endpoint);
    if (slot == UINT32_MAX) continue;
    if (c.weight) edit.weight(c.endpoint, slot, *c.weight ? static_cast<int16_t>(**c.weight) : int16_t(-1));
    if (c.override_state)
      edit.override_state(c.endpoint, slot,
                          zones::override_from(*c.override_state ? (*c.override_state)->state : "auto"));
    if (c.override_state && !*c.override_state) expiries_.erase(c.endpoint);
  }
}

void Control::update_caps(uint64_t now) {
  const auto& drilled = drill_ttls();
  std::map<uint32_t, uint32_t> caps;  // record state slot -> lowest cap
  auto lower = [&](uint32_t slot, uint32_t ttl) {
    auto [it, fresh] = caps.try_emplace(slot, ttl);
    if (!fresh) it->second = std::min(it->second, ttl);
  };
  for (const auto& [id, p] : plans_) {
    if (id.rfind("drill/", 0) != 0 || !uint32_t(get_u64(p, "lower_ttl"))) continue;
    auto t = drilled.find(get_str(p, "record"));
    if (t == drilled.end()) continue;
    uint64_t start = get_u64(p, "start_ms"), end = get_u64(p, "end_ms");
    if (now + t->second.ttl * 1000ULL + kDrillMargin >= start && now < end) {
      uint64_t next = now < start ? start : end;  // the next change clients must see
      uint64_t left_s = (next - now) / 1000;
      lower(t->second.slot, uint32_t(std::min<uint64_t>(get_u64(p, "lower_ttl"), left_s ? left_s - 1 : 0)));
    }
  }
  // Only records with ttl_unsteady, and those capped, are visited: a drill
  // lowering a TTL among 100 000 records cost 3.7 % of a core when every
  // record was.
  auto snap = srv_.snapshot();
  if (caps_snap_.lock() != snap) {
    caps_snap_ = snap;
    caps_unsteady_.clear();
    for (const auto& z : snap->zones())
      for (const auto& r : z->steered_records())
        if (z->info(r).ttl_unsteady) caps_unsteady_.push_back({z.get(), &r});
  }
  for (const auto& [z, r] : caps_unsteady_) {
    auto eps = z->endpoints(*r);
    for (size_t i = 0; i < eps.size(); ++i) {
      const Unsteady& u = this->unsteady(eps[i].state);
      bool unsteady = u.wavering || (u.last_flip_ms && admin::elapsed_ms(now, u.last_flip_ms) < kUnsteadyAfterFlip);
      if (!unsteady) {  // a fresh vantage that disagrees with the verdict
        bool up = srv_.states().at(eps[i].state).health.load() == uint8_t(zones::Health::kUp);
        for (const auto& [vantage, vf] : agg_.views(eps[i].state, now)) unsteady |= vf.second && vf.first.up != up;
      }
      if (unsteady) lower(r->state, z->info(*r).ttl_unsteady);
    }
  }
  // Stored + 1 (0 is "no cap"). A slot capped before and not now is
  // cleared, also when its record has gone with a reload.
  for (uint32_t slot : capped_)
    if (!caps.count(slot)) srv_.states().at(slot).ttl_cap.store(0, std::memory_order_relaxed);
  capped_.clear();
  for (const auto& [slot, cap] : caps) {
    auto& cell = srv_.states().at(slot).ttl_cap;
    if (cell.load(std::memory_order_relaxed) != cap + 1) cell.store(cap + 1, std::memory_order_relaxed);
    capped_.push_back(slot);
  }
}

// vanectl drill RECORD ENDPOINT --at ... --for ... | drill list | drill cancel ID
void Control::drill(const Json& req, const admin::Peer& peer, admin::Reply reply) {
  // (json::value() throws on a wrong type: look before taking.)
  auto act = req.find("action");
  if (act != req.end() && !act->is_string()) return reply(admin::error_reply("\"action\" must be a string"));
  std::string action = act == req.end() ? "schedule" : act->get<std::string>();
  uint64_t now = admin::now_ms();
  auto allowed = [&](std::initializer_list<const char*> keys) -> std::optional<std::string> {
    for (const auto& [k, v] : req.items()) {
      bool ok = k == "cmd" || k == "action";
      for (const char* a : keys) ok |= k == a;
      if (!ok) return "unknown field '" + k + "' for drill " + action;
    }
    return std::nullopt;
  };
  if (action == "list") {
    if (auto bad = allowed({})) return reply(admin::error_reply(*bad));
    return reply({{"ok", true}, {"drills", drills_view(now)}});
  }
  if (action == "cancel") {
    if (auto bad = allowed({"id", "reason"})) return reply(admin::error_reply(*bad));
    auto it = req.find("id");
    if (it == req.end() || !it->is_number_unsigned()) return reply(admin::error_reply("missing \"id\" (a drill number)"));
    std::string id = "drill/" + std::to_string(it->get<uint64_t>());
    auto p = plans_.find(id);
    if (p == plans_.end()) return reply(admin::error_reply("no drill " + std::to_string(it->get<uint64_t>()) + " (vanectl drill list)", "not_found"));
    if (plan_writing_.count(id)) return reply(admin::error_reply(id + " is changing right now; retry"));
    std::string key = get_str(p->second, "endpoint");
    admin::StateStore::Change gone{id, std::nullopt, std::nullopt, std::nullopt};
    gone.plan = std::optional<Json>{};
    std::vector<admin::StateStore::Change> changes{gone};
    auto stored = store_.overrides();
    if (auto o = stored.find(key); o != stored.end() && o->second.reason.rfind("drill " + std::to_string(get_u64(p->second, "id")) + ":", 0) == 0)
      changes.push_back({key, std::nullopt, std::optional<admin::Override>{}, std::nullopt});  // it was running: back to auto
    Json j{{"action", "drill-cancel"}, {"drill", get_u64(p->second, "id")}, {"endpoint", key},
           {"was", (get_str(p->second, "phase").empty() ? std::string("scheduled") : get_str(p->second, "phase"))}};
    peer.stamp(j);
    if (req.contains("reason") && req["reason"].is_string()) j["reason"] = req["reason"];
    return commit_plan(id, changes, j, std::nullopt, reply);
  }
  if (action != "schedule") return reply(admin::error_reply("\"action\" must be schedule, list or cancel"));
  if (auto bad = allowed({"record", "endpoint", "at", "for", "lower_ttl", "reason"})) return reply(admin::error_reply(*bad));
  for (const char* k : {"record", "endpoint", "at", "for"})
    if (!req.contains(k) || !req[k].is_string() || req[k].get<std::string>().size() > 255)
      return reply(admin::error_reply(std::string("missing \"") + k + "\" (a string)"));
  std::string reason = req.contains("reason") && req["reason"].is_string() ? req["reason"].get<std::string>() : "";
  if (reason.size() > 500) return reply(admin::error_reply("\"reason\" is longer than 500 bytes"));
  auto snap = srv_.snapshot();
  auto found = find_record(*snap, req["record"].get<std::string>());
  if (!found) return reply(admin::error_reply(found.error().message, "not_found"));
  auto [z, r] = *found;
  const auto& info = z->info(*r);
  std::string record = zones::record_key(info.name, r->type), endpoint = req["endpoint"];
  if (std::find(info.endpoints.begin(), info.endpoints.end(), endpoint) == info.endpoints.end())
    return reply(admin::error_reply("no endpoint '" + endpoint + "' in " + record, "not_found"));
  uint64_t start = 0, len = 0;
  if (!parse_at(req["at"], now, start) || start + 1000 < now || start > now + kMaxPlan)
    return reply(admin::error_reply("\"at\" must be +DURATION or a UTC time like 2026-11-26T10:00:00Z, within 7 days"));
  if (!parse_duration_ms(req["for"], len) || len == 0 || len > kMaxPlan)
    return reply(admin::error_reply("\"for\" must be a duration like 15m (at most 7 days)"));
  uint32_t lower = 0;
  if (auto it = req.find("lower_ttl"); it != req.end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() >= r->ttl)
      return reply(admin::error_reply("\"lower_ttl\" must be 1 .. " + std::to_string(r->ttl - 1) +
                                      " (below the record's TTL of " + std::to_string(r->ttl) + ")"));
    lower = it->get<uint32_t>();
  }
  std::string key = zones::endpoint_key(info.name, r->type, endpoint);
  // Numbered after the journal, so that no two drills share a number.
  uint64_t n = store_.last_seq() + 1;
  size_t drills = 0;
  for (const auto& [id, p] : plans_) {
    if (id.rfind("drill/", 0) != 0) continue;
    if (++drills >= kMaxDrills)
      return reply(admin::error_reply("already " + std::to_string(kMaxDrills) + " drills scheduled; cancel some first"));
    n = std::max<uint64_t>(n, get_u64(p, "id") + 1);
    if (get_str(p, "endpoint") == key && start < get_u64(p, "end_ms") && get_u64(p, "start_ms") < start + len)
      return reply(admin::error_reply("drill " + std::to_string(get_u64(p, "id")) + " on " + key + " overlaps (vanectl drill list)"));
  }
  Json plan{{"id", n},          {"record", record}, {"endpoint", key},       {"start_ms", start},
            {"end_ms", start + len}, {"lower_ttl", lower}, {"reason", reason}, {"uid", peer.uid},
            {"phase", "scheduled"}};
  if (!peer.token.empty()) plan["by"] = peer.token;
  std::string id = "drill/" + std::to_string(n);
  admin::StateStore::Change c{id, std::nullopt, std::nullopt, std::nullopt};
  c.plan = std::optional<Json>{plan};
  Json j{{"action", "drill"},  {"drill", n},        {"endpoint", key},
         {"starts", admin::format_time(start)}, {"until", admin::format_time(start + len)},
         {"start_ms", start},  {"end_ms", start + len}};
  peer.stamp(j);
  if (lower) {
    j["lower_ttl"] = lower;
    j["ttl_lowered_from"] = admin::format_time(start - std::min<uint64_t>(start, r->ttl * 1000ULL + kDrillMargin));
  }
  if (!reason.empty()) j["reason"] = reason;
  commit_plan(id, {c}, j, std::nullopt, reply);
}

Json Control::drills_view(uint64_t now) const {
  Json out = Json::array();
  for (const auto& [id, p] : plans_) {
    if (id.rfind("drill/", 0) != 0) continue;
    uint64_t start = get_u64(p, "start_ms"), end = get_u64(p, "end_ms");
    Json d{{"id", get_u64(p, "id")},
           {"record", get_str(p, "record")},
           {"endpoint", get_str(p, "endpoint")},
           {"start", admin::format_time(start)},
           {"end", admin::format_time(end)},
           {"phase", now >= start ? "running" : (get_str(p, "phase").empty() ? std::string("scheduled") : get_str(p, "phase"))},
           {"lower_ttl", uint32_t(get_u64(p, "lower_ttl"))},
           {"reason", get_str(p, "reason")}};
    if (now < start) d["starts_in_s"] = (start - now) / 1000;
    else d["ends_in_s"] = (end - std::min(end, now)) / 1000;
    out.push_back(std::move(d));
  }
  return out;
}

// weight RECORD ENDPOINT N --over DURATION: a plan instead of a weight.
void Control::ramp(const std::string& key, int from, int to, uint64_t over, const std::string& reason,
                   const admin::Peer& peer, admin::Reply reply) {
  uint64_t now = admin::now_ms();
  std::string id = "ramp/" + key;
  if (plan_writing_.count(id)) return reply(admin::error_reply(id + " is changing right now; retry"));
  Json plan{{"endpoint", key}, {"from", from},      {"to", to},       {"start_ms", now},
            {"end_ms", now + over}, {"reason", reason}, {"uid", peer.uid}};
  if (!peer.token.empty()) plan["by"] = peer.token;
  admin::StateStore::Change c{id, std::nullopt, std::nullopt, std::nullopt};
  c.plan = std::optional<Json>{plan};
  Json j{{"action", "ramp"}, {"endpoint", key}, {"from", from}, {"to", to},
         {"over", admin::format_duration(over)}, {"until", admin::format_time(now + over)}};
  peer.stamp(j);
  if (!reason.empty()) j["reason"] = reason;
  commit_plan(id, {c}, j, std::nullopt, reply);
}

Json Control::ramp_view(const std::string& key, uint64_t now) const {
  auto it = plans_.find("ramp/" + key);
  if (it == plans_.end()) return Json();
  const Json& p = it->second;
  uint64_t end = get_u64(p, "end_ms");
  return {{"from", get_int(p, "from")}, {"to", get_int(p, "to")}, {"until", admin::format_time(end)},
          {"ends_in_s", (end - std::min(end, now)) / 1000}};
}

void Control::note_plan_events(const std::vector<admin::ClusterEvent>& events, bool full) {
  std::set<std::string> seen;
  for (const auto& e : events) {
    if (e.kind != admin::ClusterEvent::Kind::kPlan) continue;
    seen.insert(e.key);
    auto j = e.deleted ? Json() : Json::parse(e.value, nullptr, false);
    if (j.is_object())
      plans_[e.key] = j;
    else
      plans_.erase(e.key);
  }
  if (full)
    for (auto it = plans_.begin(); it != plans_.end();) it = seen.count(it->first) ? std::next(it) : plans_.erase(it);
}

}  // namespace vane::server
