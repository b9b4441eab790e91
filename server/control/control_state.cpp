// The state behind the control plane: the overlay of stored state at start,
// override expiry, health verdicts aggregated over vantages, and changes
// that arrive from the cluster. Main loop only; writes go through the
// StateWriter, and the endpoint-state atomics are the only thing DNS reads.
#include <sys/eventfd.h>

#include <algorithm>
#include <set>

#include "control.h"
#include "log.h"

namespace vane::server {

// How long etcd may leave this node unanswered before other vantages' views
// stop counting (its keepalives run every 500 ms).
constexpr uint64_t kTrustViewsMs = 1500;
// And how long after it answers again before they count again: a view
// write that was in flight to a hung etcd is carried out as it resumes,
// outdated if the endpoint changed meanwhile, and its node's newer view
// follows within a write or two.
constexpr uint64_t kSettleViewsMs = 1000;

using admin::Json;
using zones::override_from;
using zones::Override;

namespace {

// In a cluster a change is one etcd transaction: per endpoint its override
// and its record's mark, and the journal entry.
constexpr size_t kMostPerTxn = (admin::ClusterStore::kMaxTxnOps - 1) / 2;

using Due = std::pair<std::string, admin::Override>;  // an endpoint's override whose time is up

// Overrides set by one change — the same state, reason, author, region, set
// and end times, as a region drain writes them — end as one change (of at
// most `most` endpoints). A damped override ends on its own.
std::vector<std::vector<Due>> expiry_groups(std::vector<Due> due, size_t most) {
  std::map<std::tuple<uint64_t, uint64_t, std::string, std::string, uint32_t, std::string, std::string>, size_t> open;
  std::vector<std::vector<Due>> groups;
  for (auto& d : due) {
    const admin::Override& o = d.second;
    auto change = std::make_tuple(o.at_ms, o.until_ms, o.state, o.reason, o.uid, o.by, o.region);
    auto it = o.state == "damped" ? open.end() : open.find(change);
    if (it != open.end() && groups[it->second].size() < most) {
      groups[it->second].push_back(std::move(d));
      continue;
    }
    if (o.state != "damped") open[change] = groups.size();
    groups.push_back({std::move(d)});
  }
  return groups;
}

// The journal entry of a group's end: the endpoint, or how many and the
// first 50 of them (and the region, for a region drain's).
Json expiry_entry(const std::vector<Due>& g) {
  const admin::Override& o = g.front().second;
  Json j{{"action", "expire"}, {"was", o.state}, {"reason", o.reason}, {"by", "vaned"}};
  if (g.size() == 1 && o.region.empty()) {
    j["endpoint"] = g.front().first;
    return j;
  }
  if (!o.region.empty()) j["region"] = o.region;
  j["count"] = g.size();
  j["endpoints"] = Json::array();
  for (size_t i = 0; i < g.size() && i < 50; ++i) j["endpoints"].push_back(g[i].first);
  return j;
}

}  // namespace

void Control::apply_override(uint32_t slot, const std::string& state) {
  srv_.states().at(slot).override_state.store(static_cast<uint8_t>(override_from(state)), std::memory_order_relaxed);
}

std::optional<Error> Control::overlay() {
  auto& states = srv_.states();
  for (const auto& [key, w] : store_.weights())
    states.at(states.slot(key)).admin_weight.store(static_cast<int16_t>(std::clamp(w, 0, 255)));
  // Last health verdicts hold until fresh probes decide: no flap on restart.
  for (const auto& [key, h] : store_.health())
    states.at(states.slot(key))
        .health.store(static_cast<uint8_t>(h == "down" ? zones::Health::kDown : zones::Health::kUp));
  plans_ = store_.plans();
  uint64_t now = admin::now_ms();
  std::vector<Due> ended;
  for (const auto& [key, o] : store_.overrides()) {
    // Ran out while we were down: end it now, on the record. (In a cluster
    // the first expiry tick ends it, once, for every node.)
    if (o.until_ms && o.until_ms <= now && !cluster_) {
      ended.emplace_back(key, o);
      continue;
    }
    apply_override(states.slot(key), o.state);
    if (o.until_ms) expiries_[key] = o;
  }
  std::vector<admin::StateStore::Entry> ends;  // one synced write
  for (const auto& g : expiry_groups(std::move(ended), SIZE_MAX)) {
    std::vector<admin::StateStore::Change> changes;
    for (const auto& [key, _] : g)
      changes.push_back({key, std::nullopt, std::optional<admin::Override>{}, std::nullopt});
    ends.emplace_back(std::move(changes), expiry_entry(g));
    const admin::Override& o = g.front().second;
    std::string what = g.size() == 1 ? g[0].first : std::to_string(g.size()) + " endpoints";
    VANE_INFO("override %s %s ended while vaned was down (expired %s)", what.c_str(), o.state.c_str(),
              admin::format_time(o.until_ms).c_str());
  }
  if (!ends.empty()) return store_.commit_all(std::move(ends));
  return std::nullopt;
}

// Stored weights and overrides of endpoints the config no longer has (by
// slot: status asks on every call, and a large config has tens of
// thousands of endpoints).
std::vector<std::string> Control::orphans() {
  auto snap = srv_.snapshot();
  const auto& states = srv_.states();
  std::vector<bool> live(states.size());
  for (const auto& z : snap->zones())
    for (const auto& r : z->steered_records())
      for (const auto& e : z->endpoints(r))
        if (e.state < live.size()) live[e.state] = true;
  std::set<std::string> out;
  auto check = [&](const std::string& k) {
    uint32_t slot = states.find(k);
    if (slot >= live.size() || !live[slot]) out.insert(k);
  };
  for (const auto& [k, v] : store_.weights()) check(k);
  for (const auto& k : store_.override_keys()) check(k);
  return {out.begin(), out.end()};
}

void Control::start(uv_loop_t* loop) {
  for (const auto& k : orphans())
    VANE_WARN("stored state for %s, which the config no longer has: kept (vanectl status lists it)", k.c_str());
  uv_async_init(loop, &verdict_async_, [](uv_async_t* a) { static_cast<Control*>(a->data)->apply_verdicts(); });
  verdict_async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&verdict_async_));
  run_plans(admin::now_ms());  // ramps' weights and drills' TTLs before the first tick
  loop_ = loop;
  review_transfers();  // serials and the first transfer view
  // And after every wake-up of the main loop (an admin change, a verdict, a
  // cluster event), at most every 5 ms: a change reaches the serial, the
  // view and the NOTIFYs at once, not at the next tick.
  // (Within 5 ms of the last review, a one-shot timer does it when they are up.)
  uv_check_init(loop, &xfr_check_);
  uv_timer_init(loop, &xfr_soon_);
  xfr_check_.data = xfr_soon_.data = this;
  uv_check_start(&xfr_check_, [](uv_check_t* c) {
    auto* self = static_cast<Control*>(c->data);
    if (self->xfr_.empty()) return;
    uint64_t now = uv_now(c->loop);
    if (now - self->xfr_checked_ms_ >= 5) {
      self->xfr_checked_ms_ = now;
      self->review_transfers();
    } else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&self->xfr_soon_))) {
      uv_timer_start(
          &self->xfr_soon_,
          [](uv_timer_t* t) {
            auto* s = static_cast<Control*>(t->data);
            s->xfr_checked_ms_ = uv_now(t->loop);
            s->review_transfers();
          },
          5 - (now - self->xfr_checked_ms_), 0);
    }
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&xfr_check_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&xfr_soon_));
  uv_async_init(loop, &notify_async_, [](uv_async_t* a) { static_cast<Control*>(a->data)->on_notifies(); });
  notify_async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&notify_async_));
  srv_.notifies().set_wake(&notify_async_);
  review_secondaries();
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  timer_live_ = true;
  // Every 100 ms: an override's end, a drill's start or end and a ramp's
  // step take effect within that of their time (a client behind a resolver
  // sees them within the lowered TTL plus the resolver's whole-second clock).
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<Control*>(t->data)->expire(); }, 100, 100);
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void Control::stop() {
  if (timer_live_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&verdict_async_), nullptr);
    srv_.notifies().set_wake(nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&notify_async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&xfr_check_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&xfr_soon_), nullptr);
  }
  timer_live_ = false;
  stop_transfers();
  loop_ = nullptr;  // no new refreshes; one still running ends without effect, at once:
  if (xfr_cancel_fd_ >= 0) eventfd_write(xfr_cancel_fd_, 1);
  if (xfr_pool_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&xfr_done_async_))) {
    xfr_pool_->close();  // joined in ~Control
    uv_close(reinterpret_cast<uv_handle_t*>(&xfr_done_async_), nullptr);
  }
}

void Control::post_verdict(const healthcheck::Verdict& v) {
  post_observations({healthcheck::Observation{"", v.key, v.up, v.rtt_ms, v.detail, true}});  // vantage: ours
}

void Control::post_observations(std::vector<healthcheck::Observation> obs) {
  {
    std::lock_guard lock(verdict_mu_);
    for (auto& o : obs) observations_.push_back(std::move(o));
  }
  uv_async_send(&verdict_async_);
}

void Control::post_rtt(const std::string& key, double median_ms) {
  {
    std::lock_guard lock(verdict_mu_);
    rtts_.emplace_back(key, median_ms);
  }
  uv_async_send(&verdict_async_);
}

// Only vantages that a regions: rule names get an RTT slot (others are not
// read by any latency record).
void Control::store_rtt(const std::string& vantage, const std::string& key, double ms) {
  uint8_t v = srv_.states().find_vantage(vantage);
  uint32_t slot = srv_.states().find(key);
  if (v == zones::kNoVantage || slot == UINT32_MAX || ms <= 0) return;
  uint32_t us = static_cast<uint32_t>(std::clamp(ms * 1000.0, 1.0, 4e9));
  srv_.states().set_rtt_us(slot, v, us);
}


void Control::apply_verdicts() {
  std::vector<healthcheck::Observation> batch;
  std::vector<std::pair<std::string, double>> rtts;
  std::vector<std::pair<std::string, bool>> wavers;
  {
    std::lock_guard lock(verdict_mu_);
    batch.swap(observations_);
    rtts.swap(rtts_);
    wavers.swap(wavers_);
  }
  for (const auto& [key, w] : wavers) {
    uint32_t slot = srv_.states().find(key);
    if (slot == UINT32_MAX) continue;
    unsteady(slot).wavering = w;
    if (w) unsteady(slot).last_flip_ms = admin::now_ms();  // a failed probe counts as unsteady for a while too
  }
  for (const auto& [key, ms] : rtts) {
    store_rtt(vantage_, key, ms);
    note_rtt(vantage_, ms);
    ++checks_[{vantage_, "up"}];
  }
  uint64_t now = admin::now_ms();
  for (const auto& o : batch) {
    const std::string& vantage = o.self ? vantage_ : o.vantage;
    // An agent heard from: its views' lease here lives on, changed or not
    // (one call per agent and batch, not per endpoint).
    if (cluster_ && !o.self) {
      uint64_t& heard = agents_heard_ms_[o.vantage];
      if (heard != now) cluster_->heard_from_agent(o.vantage);
      heard = now;
    }
    uint32_t slot = srv_.states().find(o.key);
    // Older than the report behind the view held: delivered late, after a
    // newer one reached this node or etcd. It does not take that back.
    if (o.order.boot && slot != UINT32_MAX && o.order.before(agg_.order(slot, vantage))) {
      ++checks_[{vantage, "stale"}];
      continue;
    }
    if (!o.self)
      ++checks_[{vantage, o.up ? "up" : "down"}];
    else if (!o.up)
      ++checks_[{vantage, "down"}];
    if (!o.self && o.rtt_ms > 0) {
      store_rtt(o.vantage, o.key, o.rtt_ms);
      note_rtt(o.vantage, o.rtt_ms);
    }
    if (slot == UINT32_MAX) continue;
    healthcheck::VantageView v{o.up, now, o.rtt_ms, o.detail, o.self, false, o.order};
    if (auto d = agg_.observe(slot, vantage, v, now)) record_decision(slot, *d);
    if (cluster_) share_view(vantage, o.key, v, o.self);
  }
  flush_verdicts();
  if (!batch.empty()) review_failback(now);
}

void Control::record_decision(uint32_t slot, const healthcheck::Decision& d) {
  std::string key = srv_.states().key(slot);
  auto& s = srv_.states().at(slot);
  bool was_up = s.health.load() == static_cast<uint8_t>(zones::Health::kUp);
  uint64_t now = admin::now_ms();
  // Applied here at once on every node, etcd or not. In a connected cluster
  // one node writes verdicts (journaled once); the others, which decide the
  // same from the same shared views, hold theirs until its verdict arrives.
  bool mine = !cluster_ || cluster_->writes_health();
  LocalVerdict* lv = cluster_ ? &note_local_verdict(key, d.up, d.why, now) : nullptr;
  // Behind a write still out for this endpoint, or flips etcd has not
  // taken, it is written after them (review_local_verdicts).
  bool queued = lv && (lv->out || !lv->earlier.empty());
  if (mine && !queued) write_verdict(key, d.up, d.why, was_up);
  const char* to = d.up ? "up" : "down";
  s.health.store(static_cast<uint8_t>(d.up ? zones::Health::kUp : zones::Health::kDown), std::memory_order_relaxed);
  ++flips_[to];
  unsteady(slot).last_flip_ms = now;
  note_flip(key, slot, now);
  VANE_WARN("health: %s is %s (%s)%s%s", key.c_str(), to, d.why.c_str(),
            zones::endpoint_up(s) == d.up ? "" : " — an admin override decides its answers",
            mine ? "" : cluster_->connected() ? " — this node's verdict, until the cluster's arrives"
                                              : " — this node's verdict, cut off from etcd");
}

// Keeps `f` among the flips etcd has not taken, in the order they were
// decided; beyond kMaxUnwritten, the oldest pair goes (what is kept still
// alternates, and ends where it did).
void Control::keep_unwritten(std::vector<Flip>& earlier, Flip f) {
  auto at = std::find_if(earlier.begin(), earlier.end(), [&](const Flip& e) { return e.at_ms >= f.at_ms; });
  if (at != earlier.end() && at->at_ms == f.at_ms) return;
  earlier.insert(at, std::move(f));
  if (earlier.size() > kMaxUnwritten) earlier.erase(earlier.begin(), earlier.begin() + 2);
}

namespace {

// A verdict refused `failures` times is written again after 0.2 s, 0.4 s, ... 5 s.
uint64_t retry_delay_ms(uint32_t failures) {
  return std::min<uint64_t>(5000, 100ULL << std::min<uint32_t>(failures, 6));
}

Json verdict_entry(const std::string& key, bool up, const std::string& why) {
  return Json{{"action", "health"},       {"endpoint", key}, {"from", up ? "down" : "up"},
              {"to", up ? "up" : "down"}, {"detail", why},   {"by", "vaned"}};
}

}  // namespace

// A flip's journal entry: one decided when etcd did not answer says when.
Json Control::flip_entry(const std::string& key, const Flip& f) {
  if (!f.late) return verdict_entry(key, f.up, f.why);
  Json j = verdict_entry(
      key, f.up,
      f.why + (f.why.empty() ? "" : "; ") + "decided at " + admin::format_time(f.at_ms) + ", when etcd did not answer");
  j["decided_ms"] = f.at_ms;
  return j;
}

// A verdict this node applied that etcd does not hold yet (in a cluster).
// A flip back before etcd took the one before keeps that one to journal;
// one whose write is still out is kept only if that write fails.
Control::LocalVerdict& Control::note_local_verdict(const std::string& key, bool up, const std::string& why,
                                                   uint64_t now) {
  auto [it, fresh] = local_verdicts_.try_emplace(key);
  LocalVerdict& lv = it->second;
  if (fresh) {
    auto held = cluster_health_.find(key);
    lv.base_revision = held == cluster_health_.end() ? 0 : held->second.revision;
    lv.since_revision = cluster_->applied_revision();
  } else if (lv.up != up && !lv.writing) {
    keep_unwritten(lv.earlier, lv.flip());
  }
  if (fresh || lv.up != up) {
    lv.up = up;
    lv.decided_ms = now;
    lv.why = why;
    lv.late = !cluster_->connected() || cluster_->contact_age_ms() > kTrustViewsMs;
    lv.writing = false;
    lv.failures = 0;
    lv.retry_ms = 0;
  }
  lv.since_ms = now;
  return lv;
}

void Control::write_verdict(const std::string& key, bool up, const std::string& why, bool was_up, bool store,
                            Json entry) {
  std::vector<admin::StateStore::Change> changes;
  if (store) changes.push_back({key, std::nullopt, std::nullopt, std::string(up ? "up" : "down")});
  Json j = entry.is_null() ? verdict_entry(key, up, why) : std::move(entry);
  j["from"] = was_up ? "up" : "down";
  // A failed write is kept as this node's own verdict and written again
  // once etcd answers (review_local_verdicts); the guarded write journals a
  // verdict etcd already holds no second time.
  uint64_t decided = admin::now_ms();
  if (cluster_) {
    LocalVerdict& lv = local_verdicts_[key];  // noted by the caller
    lv.writing = true;
    lv.out = true;
    decided = lv.decided_ms;
  }
  // Written with the other verdicts of this round (flush_verdicts): one
  // synced write for a burst.
  verdict_writes_.push_back(
      {std::move(changes), std::move(j), [this, key, up, decided, why](std::optional<Error> err, uint64_t) {
         auto it = local_verdicts_.find(key);
         if (it != local_verdicts_.end()) it->second.out = false;
         bool same = it != local_verdicts_.end() && it->second.up == up;
         if (err) {
           refused(key, *err, same ? &it->second : nullptr);
           if (same) {
             it->second.writing = false;
             it->second.late = true;
           } else if (it != local_verdicts_.end() && decided < it->second.decided_ms) {
             // Flipped back while this was being written: journaled before it.
             keep_unwritten(it->second.earlier, {up, decided, why, true});
           }
           return;
         }
         if (!same) return;
         it->second.writing = false;
         if (it->second.earlier.empty()) local_verdicts_.erase(it);
       }});
}

// A verdict's write etcd refused (`lv`: of the verdict this node holds):
// logged the 1st, 2nd, 4th, 8th ... time, and written again after 0.2 s,
// 0.4 s, ... 5 s.
void Control::refused(const std::string& key, const Error& err, Backoff* b) {
  uint32_t failures = b ? ++b->failures : 1;
  if (failures == 1 || (failures & (failures - 1)) == 0)
    VANE_ERROR("cannot record health verdict for %s: %s (applied here%s; refused %u time%s)", key.c_str(),
               err.message.c_str(), cluster_ ? "; written again when etcd answers" : "", failures,
               failures == 1 ? "" : "s");
  if (b) b->retry_ms = admin::now_ms() + retry_delay_ms(failures);
}

// The node that writes verdicts, with a verdict of its own that etcd does
// not hold, or flips that etcd never took: the flips are journaled first,
// one write at a time (the next once etcd has the one before), so each is
// journaled once and in order; then the last one is written (only
// journaled when etcd holds it already, as it does when the endpoint came
// back to where etcd last saw it). Returns false when there is nothing to
// write: etcd holds it, from this node's write landing late or another's.
bool Control::write_late_verdict(const std::string& key, LocalVerdict& lv) {
  auto held = cluster_health_.find(key);
  bool holds = held != cluster_health_.end() && held->second.up == lv.up;
  if (holds && lv.all_journaled()) return false;
  if (lv.earlier.empty()) {
    write_verdict(key, lv.up, lv.why, !lv.up, !holds, flip_entry(key, lv.flip()));
    return true;
  }
  const Flip& f = lv.earlier.front();
  lv.out = true;
  verdict_writes_.push_back({{}, flip_entry(key, f), [this, key, at = f.at_ms](std::optional<Error> err, uint64_t) {
                               auto it = local_verdicts_.find(key);
                               if (it == local_verdicts_.end()) return;
                               LocalVerdict& lv = it->second;
                               lv.out = false;
                               if (err) return refused(key, *err, &lv);
                               std::erase_if(lv.earlier, [&](const Flip& f) { return f.at_ms == at; });
                               lv.owes_last = true;
                             }});
  return true;
}

void Control::flush_verdicts() {
  if (verdict_writes_.empty()) return;
  std::vector<admin::StateWriter::Entry> writes;
  writes.swap(verdict_writes_);
  writer_.commit_all(std::move(writes));
}

// Each tick: a verdict of this node's own that the cluster has not taken
// up. Cut off, it stands (and the grace starts again). Connected, the node
// that writes verdicts writes it; another node waits for that verdict, and
// after the grace takes what the cluster holds.
void Control::review_local_verdicts(uint64_t now) {
  if (!cluster_) return;
  for (auto it = local_verdicts_.begin(); it != local_verdicts_.end();) {
    auto& [key, lv] = *it;
    uint32_t slot = srv_.states().find(key);
    if (slot == UINT32_MAX) {
      it = local_verdicts_.erase(it);
      continue;
    }
    if (!cluster_->connected()) {
      // Flips decided since etcd last answered were decided without it,
      // though the node could not tell yet (a cut is noticed after 3 s).
      uint64_t last_answer = now - std::min(now, cluster_->contact_age_ms());
      if (lv.decided_ms >= last_answer) lv.late = true;
      for (Flip& f : lv.earlier)
        if (f.at_ms >= last_answer) f.late = true;
      lv.since_ms = now;
      ++it;
      continue;
    }
    auto& s = srv_.states().at(slot);
    bool applied_up = s.health.load() == static_cast<uint8_t>(zones::Health::kUp);
    if (cluster_->writes_health()) {
      if (!lv.out && now >= lv.retry_ms && !write_late_verdict(key, lv)) {
        it = local_verdicts_.erase(it);
        continue;
      }
      ++it;
      continue;
    }
    uint64_t grace = std::max<uint64_t>(2000, 3ULL * agg_.interval_ms(slot, 1000));
    if (admin::elapsed_ms(now, lv.since_ms) < grace) {
      ++it;
      continue;
    }
    auto held = cluster_health_.find(key);
    bool differs = held != cluster_health_.end() && held->second.up != applied_up;
    journal_alone(key, lv, differs ? &held->second : nullptr);
    if (differs) {
      bool up = held->second.up;
      VANE_WARN("health: %s is %s: the cluster's verdict (this node's own was %s)", key.c_str(), up ? "up" : "down",
                lv.up ? "up" : "down");
      s.health.store(static_cast<uint8_t>(up ? zones::Health::kUp : zones::Health::kDown), std::memory_order_relaxed);
      agg_.set_verdict(slot, up);
      unsteady(slot).last_flip_ms = now;
    }
    it = local_verdicts_.erase(it);
  }
  write_alone_flips(now);
}

// A node that does not write verdicts, in touch with etcd again after the
// grace: the flips it decided here, if any while etcd did not answer, and
// etcd's verdict has not changed since the first (had it, another node
// journaled that time). Its answers followed them and the cluster's did
// not, so they are journaled as `health-local`, in order, each with the
// node's name like every entry — then, when the cluster's verdict is not
// where they ended (`held`), the node's return to it.
void Control::journal_alone(const std::string& key, const LocalVerdict& lv, const HeldVerdict* held) {
  if (lv.moved) return;
  std::vector<Flip> flips = lv.earlier;
  flips.push_back(lv.flip());
  if (std::none_of(flips.begin(), flips.end(), [](const Flip& f) { return f.late; })) return;
  auto& alone = alone_flips_[key].entries;
  for (const Flip& f : flips) {
    alone.push_back(flip_entry(key, f));
    alone.back()["action"] = "health-local";
  }
  if (held) {
    alone.push_back(verdict_entry(key, held->up, "the cluster's verdict, taken once etcd answered again"));
    alone.back()["action"] = "health-local";
  }
  VANE_INFO("health: %s: journaling the %zu flip%s this node decided alone while cut off from etcd", key.c_str(),
            flips.size(), flips.size() == 1 ? "" : "s");
}

// One write out at a time per endpoint: the next once etcd has the one
// before, so they are journaled once and in order.
void Control::write_alone_flips(uint64_t now) {
  if (!cluster_->connected()) return;
  for (auto& [key, alone] : alone_flips_) {
    if (alone.out || now < alone.retry_ms) continue;
    alone.out = true;
    verdict_writes_.push_back({{}, alone.entries.front(), [this, key = key](std::optional<Error> err, uint64_t) {
                                 auto it = alone_flips_.find(key);
                                 if (it == alone_flips_.end()) return;
                                 it->second.out = false;
                                 if (err) return refused(key, *err, &it->second);
                                 it->second.entries.pop_front();
                                 if (it->second.entries.empty()) alone_flips_.erase(it);
                               }});
  }
}

// The config's targets, each starting from its endpoint's current verdict.
std::vector<healthcheck::Target> Control::current_targets(const Config& cfg) const {
  auto targets = healthcheck::targets_from(cfg);
  for (auto& t : targets) {
    uint32_t slot = srv_.states().find(t.key);
    if (slot != UINT32_MAX)
      t.initial_up = srv_.states().at(slot).health.load() == static_cast<uint8_t>(zones::Health::kUp);
  }
  return targets;
}

std::vector<healthcheck::Target> Control::health_targets(const Config& cfg) {
  vantage_ = cfg.vantage;
  auto targets = current_targets(cfg);
  std::vector<healthcheck::Aggregator::Spec> specs;
  specs.reserve(targets.size());
  for (const auto& t : targets) {
    uint32_t slot = srv_.states().find(t.key);
    if (slot != UINT32_MAX)
      specs.push_back({slot, {t.check->interval_ms, t.check->quorum, t.check->min_vantages}, t.initial_up});
  }
  uint64_t now = admin::now_ms();
  for (uint32_t slot : agg_.set_endpoints(std::move(specs))) {
    // This process starts out seeing what was last decided, until its probes say otherwise.
    bool up = agg_.verdict(slot);
    agg_.observe(slot, vantage_, {up, now, 0, "", true}, now);
    if (cluster_) share_view(vantage_, srv_.states().key(slot), {up, now, 0, "", true}, true);
  }
  // Agents' copy (built when asked): versioned by what to probe, not by
  // the verdicts it starts from.
  uint64_t h = 1469598103934665603ULL;
  for (const auto& t : targets) {
    Json j = healthcheck::target_to_json(t, false);
    j.erase("up");
    for (unsigned char c : j.dump()) h = (h ^ c) * 1099511628211ULL;
  }
  char version[17];
  snprintf(version, sizeof version, "%016llx", static_cast<unsigned long long>(h));
  std::lock_guard lock(targets_mu_);
  targets_version_ = version;
  return targets;
}

std::string Control::targets_document(bool shared_checks) const {
  return healthcheck::targets_document(current_targets(srv_.config()), shared_checks, targets_version());
}

void Control::expire() {
  uint64_t now = admin::now_ms();
  // Views in etcd are current while their vantage's lease lives — known
  // while etcd answers. When it has not for 1.5 s (hung, partitioned,
  // gone), other vantages' views are of unknown age: this node decides on
  // its own probes alone, at once, rather than waiting them out.
  if (cluster_) {
    bool in_touch = cluster_->connected() && cluster_->contact_age_ms() <= kTrustViewsMs;
    if (!in_touch)
      in_touch_since_ms_ = 0;
    else if (!in_touch_since_ms_)
      in_touch_since_ms_ = now;
    if (in_touch && (agg_.remote_trusted() || admin::elapsed_ms(now, in_touch_since_ms_) >= kSettleViewsMs))
      agg_.refresh_remote(now);
    else
      agg_.distrust_remote();
  }
  for (const auto& [slot, d] : agg_.tick(now)) record_decision(slot, d);  // vantages going stale
  review_local_verdicts(now);
  flush_verdicts();
  end_overrides(now);
  review_failback(now);
  run_plans(now);
  review_transfers();
  review_secondaries();
  sample_shares(now);
}

// Overrides whose time is up end here at once (also when the cluster is
// unreachable), and their end is written — in a cluster, by whichever node
// is first; the others find it already ended and write nothing. Those set
// by one change (a timed region drain) end as one change, with one journal
// entry; a damped one ends on its own, into what its record needs now.
// Locally a tick's ends are one synced write: 20 000 endpoints of a region
// come back at once, not one fsync each.
void Control::end_overrides(uint64_t now) {
  std::vector<Due> due;
  for (const auto& [key, o] : expiries_)
    if (o.until_ms <= now && !ending_.count(key)) due.emplace_back(key, o);
  if (due.empty()) return;
  std::vector<admin::StateWriter::Entry> writes;
  {
    zones::StateEdit edit(srv_.states());  // answers see a change's ends at once
    for (auto& g : expiry_groups(std::move(due), cluster_ ? kMostPerTxn : SIZE_MAX)) {
      const admin::Override o = g.front().second;
      std::optional<admin::Override> next = o.state == "damped" ? after_damping(g.front().first) : std::nullopt;
      std::vector<admin::StateStore::Change> changes;
      std::vector<std::string> keys;
      for (const auto& [key, _] : g) {
        uint32_t slot = srv_.states().find(key);
        if (slot != UINT32_MAX && o.state == "damped")  // at once: the next damped endpoint's tiers see it
          apply_override(slot, next ? next->state : "auto");
        else if (slot != UINT32_MAX)
          edit.override_state(key, slot, Override::kAuto);
        ending_.insert(key);
        changes.push_back({key, std::nullopt, std::optional<admin::Override>{next}, std::nullopt});
        keys.push_back(key);
      }
      Json j = expiry_entry(g);
      if (next) j["to"] = next->state;
      writes.push_back(
          {std::move(changes), std::move(j), [this, keys, o](std::optional<Error> err, uint64_t seq) {
             for (const auto& key : keys) ending_.erase(key);
             std::string what = keys.size() == 1 ? keys[0] : std::to_string(keys.size()) + " endpoints";
             if (err) {  // they stay in expiries_: the next tick tries again
               VANE_ERROR("cannot record the end of override %s: %s (will retry)", what.c_str(), err->message.c_str());
               return;
             }
             for (const auto& key : keys)
               if (auto it = expiries_.find(key); it != expiries_.end() && it->second.at_ms == o.at_ms)
                 expiries_.erase(it);
             if (seq)
               VANE_INFO("override %s %s expired (reason was: %s)", what.c_str(), o.state.c_str(), o.reason.c_str());
           }});
    }
  }
  writer_.commit_all(std::move(writes));
}

// ---- the cluster -------------------------------------------------------------

namespace {

// What shared_views_ holds of a view: etcd is written only when this changes.
std::string shared_form(const healthcheck::VantageView& v) {
  return std::string(v.up ? "up|" : "down|") + v.detail;
}

}  // namespace

// A vantage's view goes to etcd when it changes (up/down or its detail), so
// that every node aggregates the same observations.
void Control::share_view(const std::string& vantage, const std::string& key, const healthcheck::VantageView& v,
                         bool own) {
  if (own) own_[key] = v;
  std::string what = shared_form(v);
  auto& held = shared_views_[vantage + "/" + key];
  if (held == what) return;
  held = what;
  Json view{{"up", v.up}, {"rtt_ms", v.rtt_ms}, {"detail", v.detail}};
  if (v.order.boot) view["boot"] = v.order.boot, view["seq"] = v.order.seq;
  cluster_->put_observation(vantage, key, view, own, view_lease_s(srv_.states().find(key)));
}

// An agent's view that etcd no longer holds, while the agent still reports
// to this node: it keeps counting here and goes back to etcd at once, on
// this node's lease, rather than lapse until the agent's next report (a
// verdict that needs it would flip meanwhile). False: not heard here lately.
bool Control::keep_heard_view(const std::string& vantage, const std::string& key, uint32_t slot, uint64_t now) {
  auto heard = agents_heard_ms_.find(vantage);
  if (heard == agents_heard_ms_.end() || admin::elapsed_ms(now, heard->second) > view_lease_s(slot) * 1000ULL)
    return false;
  auto v = agg_.view(slot, vantage);
  if (!v) return false;
  share_view(vantage, key, *v, false);
  return true;
}

// How long a vantage's views outlive its last report: 3 check intervals,
// at least 5 s.
uint32_t Control::view_lease_s(uint32_t slot) const {
  return std::max<uint32_t>(5, 3 * agg_.interval_ms(slot, 10000) / 1000);
}

namespace {

// A view as share_view() wrote it; a field of another type (a foreign
// write) reads as absent rather than throw on the main loop.
healthcheck::VantageView view_from_json(const Json& j, uint64_t now) {
  auto field = [&j](const char* k, auto otherwise) {
    auto f = j.find(k);
    using T = decltype(otherwise);
    if (f == j.end()) return otherwise;
    if constexpr (std::is_same_v<T, bool>)
      return f->is_boolean() ? f->get<bool>() : otherwise;
    else if constexpr (std::is_same_v<T, double>)
      return f->is_number() ? f->get<double>() : otherwise;
    else if constexpr (std::is_same_v<T, uint32_t>)
      return f->is_number_unsigned() && f->get<uint64_t>() <= UINT32_MAX ? f->get<uint32_t>() : otherwise;
    else
      return f->is_string() ? f->get<std::string>() : otherwise;
  };
  healthcheck::VantageView v{field("up", true), now, field("rtt_ms", 0.0), field("detail", std::string()), false};
  v.order = {field("boot", 0u), field("seq", 0u)};
  return v;
}

}  // namespace

void Control::on_cluster(const std::vector<admin::ClusterEvent>& events, bool full) {
  using K = admin::ClusterEvent::Kind;
  auto& states = srv_.states();
  uint64_t now = admin::now_ms();
  std::set<std::string> weights, overrides;
  std::set<std::pair<std::string, std::string>> views;
  std::set<std::pair<uint32_t, std::string>> agg_views;  // views, by slot: the other vantages' to keep
  // Answers see what these events change at once: a transaction (or a
  // full sync) that moves weight from one endpoint to another is never
  // answered from all-zero weights, as if equal, halfway.
  zones::StateEdit edit(states);
  for (const auto& e : events) {
    if (e.kind == K::kWeight || e.kind == K::kOverride || e.kind == K::kHealth || e.kind == K::kAnswer) {
      auto& rev = record_rev_[e.kind == K::kAnswer ? e.key : e.key.substr(0, e.key.rfind('/'))];
      if (uint64_t(e.revision) > rev) rev = uint64_t(e.revision), ++record_rev_changes_;
    }
    uint32_t slot = states.find(e.key);
    switch (e.kind) {
      case K::kWeight:
        weights.insert(e.key);
        if (slot != UINT32_MAX)
          edit.weight(e.key, slot,
                      e.deleted ? int16_t(-1) : static_cast<int16_t>(std::clamp(std::atoi(e.value.c_str()), 0, 255)));
        break;
      case K::kOverride: {
        overrides.insert(e.key);
        auto j = e.deleted ? Json() : Json::parse(e.value, nullptr, false);
        auto o = j.is_object() ? admin::override_from_json(j) : admin::Override{"auto", 0, "", 0, 0, {}, {}};
        if (o.state == "auto" || (o.until_ms && o.until_ms <= now && !full)) {
          if (slot != UINT32_MAX) edit.override_state(e.key, slot, Override::kAuto);
          expiries_.erase(e.key);
        } else {
          if (slot != UINT32_MAX) edit.override_state(e.key, slot, override_from(o.state));
          if (o.until_ms)
            expiries_[e.key] = o;  // ran out already (full sync): the next tick ends it, once
          else
            expiries_.erase(e.key);
        }
        break;
      }
      case K::kHealth:
        if (slot != UINT32_MAX && !e.deleted) {
          bool up = e.value != "down";
          cluster_health_[e.key] = {up, e.revision};
          // This node's own verdict, not yet the cluster's: agreed, or it
          // stands for the grace (review_local_verdicts). A verdict written
          // since its first flip here was decided (by another node, or a
          // write of this one's landing late) journaled what happened
          // meanwhile: the flips held back are not journaled again.
          if (auto it = local_verdicts_.find(e.key); it != local_verdicts_.end()) {
            LocalVerdict& lv = it->second;
            if (e.revision != lv.base_revision) {
              lv.earlier.clear();
              lv.owes_last = false;
              lv.moved = true;
              lv.base_revision = e.revision;
            }
            if (lv.up == up && !lv.out && lv.all_journaled()) local_verdicts_.erase(it);
            break;
          }
          if (up != (states.at(slot).health.load() == uint8_t(zones::Health::kUp))) unsteady(slot).last_flip_ms = now;
          edit.health(e.key, slot, up ? zones::Health::kUp : zones::Health::kDown);
          agg_.set_verdict(slot, up);
        }
        break;
      case K::kJournal: {
        // A verdict journaled (by the node that writes them: also flips it
        // decided while etcd did not answer, which change no verdict).
        if (e.deleted || local_verdicts_.empty()) break;
        auto j = Json::parse(e.value, nullptr, false);
        if (!j.is_object() || j.value("action", "") != "health") break;
        auto it = local_verdicts_.find(j.value("endpoint", ""));
        if (it != local_verdicts_.end() && e.revision > it->second.since_revision) it->second.moved = true;
        break;
      }
      case K::kObservation: {
        std::string id = e.vantage + "/" + e.key;
        if (e.vantage == vantage_) {  // our own: this process knows better
          auto it = own_.find(e.key);
          if (e.deleted) {  // our lease ran out (etcd was away): write them again
            shared_views_.erase(id);
            if (it != own_.end() && cluster_->connected()) share_view(vantage_, e.key, it->second, true);
            break;
          }
          views.insert({e.key, e.vantage});
          // Not the view this process has now: an older write of ours that
          // landed after a newer one (sent on a link that was cut, delivered
          // when it healed, after the client had given up), or the echo of
          // one with a newer on its way. Written again: etcd must not keep
          // the older, which every other node would go on counting.
          auto j = Json::parse(e.value, nullptr, false);
          if (it == own_.end() || !j.is_object()) break;
          std::string held = shared_form(view_from_json(j, now));
          if (held != shared_form(it->second)) {
            shared_views_[id] = held;
            share_view(vantage_, e.key, it->second, true);
          }
          break;
        }
        if (e.deleted) {
          shared_views_.erase(id);
          // Gone with another node's lease (that node no longer hears the
          // agent), while the agent still reports here: it stands.
          if (!keep_heard_view(e.vantage, e.key, slot, now)) agg_.forget(slot, e.vantage);
          break;
        }
        auto j = Json::parse(e.value, nullptr, false);
        if (!j.is_object()) break;
        healthcheck::VantageView v = view_from_json(j, now);
        shared_views_[id] = shared_form(v);
        views.insert({e.key, e.vantage});
        agg_views.insert({slot, e.vantage});
        if (auto here = agg_.view(slot, e.vantage); here && !here->relayed) {
          // The echo of what the agent reported here stays a view reported
          // here: taken as etcd's, it would not count while cut off.
          if (here->up == v.up && here->detail == v.detail) break;
          // Another node's write of an older report (it reached that node
          // late): the newer one heard here stands, and goes back to etcd.
          if (v.order.before(here->order)) {
            share_view(e.vantage, e.key, *here, false);
            break;
          }
        }
        agg_.put_view(slot, e.vantage, v);
        if (v.rtt_ms > 0) store_rtt(e.vantage, e.key, v.rtt_ms);
        break;
      }
      default:
        break;
    }
  }
  if (full) {
    // What the cluster does not hold is not in force: back to the config's
    // weight and to auto. Only what differs is touched, so no answer flaps.
    auto snap = srv_.snapshot();
    for (const auto& z : snap->zones())
      for (const auto& r : z->steered_records())
        for (const auto& name : z->info(r).endpoints) {
          std::string key = zones::endpoint_key(z->info(r).name, r.type, name);
          uint32_t slot = states.find(key);
          if (slot == UINT32_MAX) continue;
          if (!weights.count(key) && states.at(slot).admin_weight.load() != -1) edit.weight(key, slot, -1);
          if (!overrides.count(key) && states.at(slot).override_state.load() != uint8_t(Override::kAuto)) {
            edit.override_state(key, slot, Override::kAuto);
            expiries_.erase(key);
          }
        }
    for (const auto& [id, held] : std::map<std::string, std::string>(shared_views_)) {
      std::string vantage = id.substr(0, id.find('/')), key = id.substr(id.find('/') + 1);
      if (vantage == vantage_) {  // ours, gone from etcd while we were away: write it again
        if (auto it = own_.find(key); it != own_.end() && !views.count({key, vantage})) {
          shared_views_.erase(id);
          share_view(vantage_, key, it->second, true);
        }
      } else if (!views.count({key, vantage})) {
        shared_views_.erase(id);
        // Lapsed while this node was away from etcd, from an agent that
        // kept reporting here: it stands.
        uint32_t slot = states.find(key);
        if (keep_heard_view(vantage, key, slot, now)) agg_views.insert({slot, vantage});
      }
    }
    agg_.retain_views(agg_views);
  }
  edit.publish();
  note_plan_events(events, full);
  for (const auto& [slot, d] : agg_.tick(now)) record_decision(slot, d);
  flush_verdicts();
  review_failback(now);
}

}  // namespace vane::server
