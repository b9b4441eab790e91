// Secondary zones, the control plane's half (DESIGN.md "Zone transfers",
// In): per zone, the SOA timers — refresh when due, retry after a failure,
// expire (then SERVFAIL) — a NOTIFY from a listed primary makes a refresh
// due now, and `vanectl zone refresh|retransfer`. Refreshes run on threads
// of their own (XfrInPool, server/xfr_in.h), one per zone at a time; a new copy on disk
// is served by a reload of that zone alone, the old one until then. The
// timers' state is kept in the state directory (s/<zone>), so a restart
// serves the last copy at once and keeps counting towards its expiry.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "control.h"
#include "log.h"

namespace vane::server {

namespace {

constexpr uint32_t kRetryWithoutCopyS = 10;  // before the first copy: the SOA's retry is not known yet
constexpr size_t kTransfersIn = 10;          // refreshes under way at once (XfrInPool)
constexpr size_t kTransfersPerPrimary = 8;   // of them, with one primary tried first: two stay for the others
constexpr uint32_t kSilentPrimaryMs = 600000;  // a primary that did not answer is tried last this long (XfrInPool)

admin::Json removed_reply(const std::string& zone) {
  return admin::error_reply("zone " + zone + ": no longer a secondary zone here (removed by a reload)", "not_found");
}

}  // namespace

// Each tick: the refreshes due, and the copies whose expire has passed.
// The config's list of secondary zones is taken again only when the config
// is (20 000 zones: no walk of the config, no strings built, per tick).
void Control::review_secondaries() {
  if (!srv_.snapshot()) return;
  uint64_t now = admin::now_ms();
  if (sec_config_ != srv_.config_generation()) {
    sec_config_ = srv_.config_generation();
    take_secondaries(now);
  }
  for (auto& [name, s] : sec_) {
    if (s.removed) continue;
    if (s.serial && !s.expired && s.last_ok_ms && now >= s.last_ok_ms + uint64_t(s.expire) * 1000) {
      s.expired = true;
      srv_.states().zone_expired(name, true)->store(true, std::memory_order_relaxed);
      VANE_ERROR("zone %s: EXPIRED — no good refresh for %us (its SOA expire); answered SERVFAIL until one succeeds",
                 name.c_str(), s.expire);
    }
    if (!s.in_flight && now >= s.next_check_ms && loop_) start_refresh(name, s);
  }
}

// The config's secondary zones: new ones start from the copy on disk,
// settings follow the config, and those gone from it are dropped.
void Control::take_secondaries(uint64_t now) {
  std::set<std::string> configured;
  for (const zones::ZoneSource& src : srv_.config().zones) {
    if (!src.secondary.enabled()) continue;
    std::string name = src.origin + (src.origin.ends_with('.') ? "" : ".");
    configured.insert(name);
    auto [it, fresh] = sec_.try_emplace(name);
    SecZone& s = it->second;
    s.spec = src.secondary;
    s.file = src.file;
    s.removed = false;
    if (!fresh) continue;
    // Where the last run left off: the copy on disk and when it was last good.
    uint32_t serial = 0;
    if (read_copy_soa(s.file, serial, s.refresh, s.retry, s.expire)) s.serial = serial;
    if (auto v = store_.zone_meta('s', name)) {
      auto j = admin::Json::parse(*v, nullptr, false);
      if (j.is_object()) s.last_ok_ms = j.value("last_ok_ms", uint64_t(0));
    }
    struct stat st;
    if (s.serial && !s.last_ok_ms && stat(s.file.c_str(), &st) == 0)  // no record of it: as old as the file
      s.last_ok_ms = uint64_t(st.st_mtime) * 1000;
    s.expired = !s.serial || (s.last_ok_ms && now >= s.last_ok_ms + uint64_t(s.expire) * 1000);
    if (s.serial)
      VANE_INFO("zone %s: secondary, serving the copy of serial %u%s; checking the primary", name.c_str(), *s.serial,
                s.expired ? " — EXPIRED, answered SERVFAIL until a refresh succeeds" : "");
    else
      VANE_INFO("zone %s: secondary with no copy yet (SERVFAIL until the first transfer)", name.c_str());
    s.next_check_ms = now;
    srv_.states().zone_expired(name, true)->store(s.expired, std::memory_order_relaxed);
  }
  // Gone from the config: whoever still waits hears so now (the refresh
  // under way, if any, answers its own and then the zone is dropped).
  for (auto it = sec_.begin(); it != sec_.end();) {
    SecZone& s = it->second;
    if (configured.count(it->first)) {
      ++it;
      continue;
    }
    s.removed = true;
    auto gone = removed_reply(it->first);
    for (const auto& reply : std::exchange(s.waiting_next, {})) reply(gone);
    if (s.in_flight) {
      ++it;
      continue;
    }
    for (const auto& reply : std::exchange(s.waiting, {})) reply(gone);
    it = sec_.erase(it);
  }
}

void Control::start_refresh(const std::string& name, SecZone& s) {
  XfrInRequest req;
  req.zone = name;
  req.spec = s.spec;
  req.file = s.file;
  req.have_serial = s.serial;
  req.force_axfr = s.force_axfr;
  req.cancel_fd = xfr_cancel_fd_;
  if (!s.spec.key.empty())
    if (auto k = srv_.config().tsig.find(s.spec.key); k != srv_.config().tsig.end()) req.key = k->second;
  s.in_flight = true;
  s.force_axfr = false;
  s.again = false;
  for (auto& r : s.waiting_next) s.waiting.push_back(std::move(r));
  s.waiting_next.clear();
  if (!xfr_pool_) {
    uv_async_init(loop_, &xfr_done_async_, [](uv_async_t* a) {
      auto* self = static_cast<Control*>(a->data);
      for (auto& [zone, res] : self->xfr_pool_->take_done()) self->finish_refresh(zone, std::move(res));
      self->store_refreshes();
    });
    xfr_done_async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&xfr_done_async_));
    xfr_pool_ = std::make_unique<XfrInPool>(kTransfersIn, kTransfersPerPrimary, kSilentPrimaryMs,
                                            [this] { uv_async_send(&xfr_done_async_); });
  }
  xfr_pool_->submit(name, std::move(req));
}

void Control::finish_refresh(const std::string& name, XfrInResult res) {
  auto it = sec_.find(name);
  if (it == sec_.end() || !loop_) return;  // gone from the config, or vaned is stopping
  SecZone& s = it->second;
  s.in_flight = false;
  // Gone from the config meanwhile: its outcome has no zone to go to.
  // Whoever waits hears so, and it is dropped.
  if (s.removed) {
    auto gone = removed_reply(name);
    for (const auto& reply : std::exchange(s.waiting, {})) reply(gone);
    sec_.erase(it);
    return;
  }
  uint64_t now = admin::now_ms();
  // Whoever asked (vanectl zone ...) hears the outcome; kept by value, as a
  // new copy is answered only after the reload that serves it.
  auto answer = [waiting = std::exchange(s.waiting, {}), name, serial = res.serial, kind = res.kind,
                 server = res.server](bool ok, const std::string& error) {
    admin::Json r = ok ? admin::Json{{"ok", true}, {"zone", name}, {"serial", serial}, {"result", kind},
                                     {"primary", server}}
                       : admin::error_reply("zone " + name + ": " + error);
    for (const auto& reply : waiting) reply(r);
  };
  if (!res.ok) {
    ++xfr_in_counts_[{res.error.find("AXFR: ") != std::string::npos   ? "axfr"
                      : res.error.find("IXFR: ") != std::string::npos ? "ixfr"
                                                                      : "soa",
                      "failed"}];
    s.last_error = res.error;
    s.last_error_ms = now;
    s.next_check_ms = now + uint64_t(s.serial ? s.retry : kRetryWithoutCopyS) * 1000;
    if (s.again) s.next_check_ms = now;
    VANE_WARN("zone %s: refresh failed: %s; next try in %us", name.c_str(), res.error.c_str(),
              unsigned((s.next_check_ms - now) / 1000));
    return answer(false, res.error);
  }
  ++xfr_in_counts_[{!res.updated ? "soa" : res.kind == "IXFR" ? "ixfr" : "axfr", res.updated ? "updated" : "current"}];
  s.last_error.clear();
  s.last_ok_ms = now;
  s.last_kind = res.kind;
  s.last_server = res.server;
  s.refresh = res.refresh;
  s.retry = res.retry;
  s.expire = res.expire;
  s.next_check_ms = s.again ? now : now + uint64_t(res.refresh) * 1000;
  admin::Json state{{"serial", res.serial}, {"last_ok_ms", now}, {"refresh", res.refresh}, {"retry", res.retry},
                    {"expire", res.expire}};
  sec_stores_.emplace_back(name, state.dump());  // stored with the others ending now (store_refreshes)
  if (!res.updated) {
    if (s.expired) VANE_INFO("zone %s: refreshed from %s, serial %u: no longer expired", name.c_str(), res.server.c_str(), res.serial);
    s.expired = false;
    srv_.states().zone_expired(name, true)->store(false, std::memory_order_relaxed);
    return sec_stored_.push_back([answer] { answer(true, ""); });
  }
  VANE_INFO("zone %s: %s from %s: serial %u, %zu records in %zu messages", name.c_str(), res.kind.c_str(),
            res.server.c_str(), res.serial, res.records, res.messages);
  s.serial = res.serial;
  // The new copy is served once the zone set is rebuilt from it; until
  // then the old copy (or SERVFAIL, with none) answers.
  srv_.reload_zone_async(name, [this, name, answer, serial = res.serial](const ReloadOutcome& o) {
    auto it = sec_.find(name);
    if (!o.ok) {
      VANE_ERROR("zone %s: serial %u transferred but the reload failed: %s", name.c_str(), serial, o.message.c_str());
      if (it != sec_.end()) it->second.last_error = "reload: " + o.message;
      return answer(false, "transferred, but the reload failed: " + o.message);
    }
    if (it != sec_.end() && it->second.serial == serial) {
      it->second.expired = false;
      srv_.states().zone_expired(name, true)->store(false, std::memory_order_relaxed);
    }
    answer(true, "");
  });
}

// The refreshes that ended together: their times in one synced write
// (the SOA checks of 20 000 zones at a start are not 20 000 fsyncs on the
// main loop), then whoever asked for a check that found the copy current.
void Control::store_refreshes() {
  if (!sec_stores_.empty()) {
    if (auto err = store_.put_zone_metas('s', sec_stores_))
      VANE_ERROR("%s: cannot store the refresh time: %s (counted from the copy's file after a restart)",
                 zones_named(sec_stores_).c_str(), err->to_string().c_str());
    sec_stores_.clear();
  }
  for (const auto& answer : std::exchange(sec_stored_, {})) answer();
}

void Control::on_notifies() {
  uint64_t now = admin::now_ms();
  for (const std::string& zone : srv_.notifies().take()) {
    auto it = sec_.find(zone);
    if (it == sec_.end()) continue;
    VANE_INFO("zone %s: NOTIFY from its primary: refreshing", zone.c_str());
    ++notify_in_;
    if (it->second.in_flight)
      it->second.again = true;  // another look once this one ends
    else
      it->second.next_check_ms = now;
  }
  review_secondaries();
}

// vanectl zone refresh|retransfer ZONE: answered when the refresh ends.
void Control::zone_verb(const admin::Json& req, admin::Reply reply) {
  if (!req.value("action", admin::Json()).is_string() || !req.value("zone", admin::Json()).is_string())
    return reply(admin::error_reply("zone: needs \"action\" (refresh or retransfer) and \"zone\" strings"));
  std::string action = req.value("action", ""), zone = req.value("zone", "");
  if (action != "refresh" && action != "retransfer")
    return reply(admin::error_reply("zone: action must be refresh or retransfer"));
  if (!zone.empty() && zone.back() != '.') zone += '.';
  std::transform(zone.begin(), zone.end(), zone.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = sec_.find(zone);
  if (it == sec_.end()) {
    std::string known;
    size_t listed = 0;
    for (const auto& [name, z] : sec_) {
      if (++listed > 10) {
        known += ", ... (" + std::to_string(sec_.size()) + " in all)";
        break;
      }
      known += (known.empty() ? "" : ", ") + name;
    }
    return reply(admin::error_reply("zone '" + zone + "' is not a secondary zone here (secondary zones: " +
                                    (known.empty() ? "none" : known) + ")", "not_found"));
  }
  if (!loop_) return reply(admin::error_reply("vaned is stopping"));
  SecZone& s = it->second;
  if (s.removed) return reply(removed_reply(zone));  // its refresh under way ends, then it is gone
  if (action == "retransfer") s.force_axfr = true;
  if (s.in_flight) {  // answered by the next one, which this asks for: the one under way may not transfer
    s.waiting_next.push_back(std::move(reply));
    s.again = true;
    return;
  }
  s.waiting.push_back(std::move(reply));
  s.next_check_ms = 0;
  start_refresh(zone, s);
}

admin::Json Control::secondary_status(const zones::Zone& z) const {
  auto it = sec_.find(z.origin_text());
  if (it == sec_.end()) return nullptr;
  const SecZone& s = it->second;
  uint64_t now = admin::now_ms();
  admin::Json j{{"role", "secondary"},
                {"primaries", s.spec.servers},
                {"serial", s.serial ? admin::Json(*s.serial) : admin::Json()},
                {"expired", s.expired},
                {"refreshing", s.in_flight}};
  if (s.last_ok_ms) {
    j["last_refresh"] = admin::format_time(s.last_ok_ms);
    uint64_t end = s.last_ok_ms + uint64_t(s.expire) * 1000;
    j["expires_in_s"] = end > now ? int64_t((end - now) / 1000) : 0;
    if (!s.last_kind.empty()) j["last_transfer"] = s.last_kind + " from " + s.last_server;
  }
  j["next_check_in_s"] = s.next_check_ms > now ? int64_t((s.next_check_ms - now) / 1000) : 0;
  if (!s.last_error.empty()) {
    j["last_error"] = s.last_error;
    j["last_error_at"] = admin::format_time(s.last_error_ms);
  }
  return j;
}

// Primaries that did not answer, tried after the others for a while (XfrInPool).
admin::Json Control::silent_primaries() const {
  admin::Json out = admin::Json::array();
  if (!xfr_pool_) return out;
  uint64_t now = admin::now_ms();
  for (const auto& [server, ago] : xfr_pool_->silent()) {
    uint64_t at = now - uint64_t(ago.count());
    out.push_back({{"primary", server},
                   {"not_answering_since", admin::format_time(at)},
                   {"tried_last_until", admin::format_time(at + kSilentPrimaryMs)}});
  }
  return out;
}

// Seconds until a secondary zone's copy expires (0: expired or none), for /metrics.
std::vector<std::pair<std::string, double>> Control::secondary_expiries() const {
  std::vector<std::pair<std::string, double>> out;
  uint64_t now = admin::now_ms();
  for (const auto& [name, s] : sec_) {
    uint64_t end = s.last_ok_ms + uint64_t(s.expire) * 1000;
    out.emplace_back(name, s.serial && !s.expired && s.last_ok_ms && end > now ? double(end - now) / 1000 : 0);
  }
  return out;
}

}  // namespace vane::server
