// Zone transfers out, the control plane's half (DESIGN.md "Zone
// transfers"): on every tick and after every reload, what each transferred
// zone would carry is computed from the live endpoint state; when it
// differs, the zone's state revision rises (durably, before anyone sees
// it), the served serial becomes the file's serial + that revision, the
// difference is kept for IXFR, a new TransferView is published to the TCP
// workers and the listed secondaries get a NOTIFY (RFC 1996), retried until
// they answer. Main loop only.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "control.h"
#include "log.h"
#include "sockets.h"

namespace vane::server {

namespace {

constexpr size_t kHistorySteps = 100;          // IXFR steps kept per zone; older serials get the whole zone
constexpr uint64_t kNotifyFirstRetryMs = 1000;  // then doubling...
constexpr uint64_t kNotifyMaxRetryMs = 60000;   // ...up to once a minute, until answered

// What a zone carries apart from its steered RRsets: every name, type, TTL
// and rdata, the SOA (and so the file's serial) among them.
uint64_t static_digest(const zones::Zone& z) {
  uint64_t h = 0x9E3779B97F4A7C15ULL;
  for (uint32_t id = 0; id < z.node_count(); ++id) {
    auto name = z.name_of(id);
    h = zones::hash_bytes(h, name.data(), name.size());
    for (const zones::RRset& rs : z.rrsets(id)) {
      uint8_t fixed[6];
      dns::put16(fixed, rs.type);
      dns::put32(fixed + 2, rs.ttl);
      h = zones::hash_bytes(h, fixed, sizeof fixed);
      if (!rs.steered) h = zones::hash_bytes(h, z.rdata(rs), rs.rdata_size);
    }
  }
  return h;
}

// Every RR the steered RRsets of `z` carry in a transfer, in RrList's wire
// form, one string each, sorted: two versions' difference is an IXFR step.
std::vector<std::string> steered_rrs(const zones::Zone& z, const std::vector<std::vector<uint16_t>>& sets) {
  std::vector<std::string> out;
  auto recs = z.steered_records();
  for (size_t r = 0; r < recs.size() && r < sets.size(); ++r) {
    dns::NameBuf owner;
    dns::from_text(z.info(recs[r]).name, owner);
    auto eps = z.endpoints(recs[r]);
    for (uint16_t i : sets[r]) {
      zones::RrList one;
      one.add(owner.wire(), recs[r].type, recs[r].ttl, z.steered_rdata(eps[i]), eps[i].rdlen);
      out.emplace_back(one.wire.begin(), one.wire.end());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void add_all(zones::RrList& list, const std::vector<std::string>& rrs) {
  for (const auto& rr : rrs) {
    list.wire.insert(list.wire.end(), rr.begin(), rr.end());
    ++list.count;
  }
}

}  // namespace

// A review looks at every transferred zone when the snapshot is new (a
// zone's file, its config and a secondary's copy all come with one), and
// otherwise at the zones with steered records alone: between snapshots
// only their answers move. What it finds is computed first; the zones
// whose revision rises are stored in one synced write (20 000 zones at a
// start: one fsync, not 20 000), and only then applied and published.
void Control::review_transfers() {
  auto snap = srv_.snapshot();
  if (!snap) return;
  const Config& cfg = srv_.config();
  const bool whole = snap != xfr_snapshot_ || xfr_review_all_;
  const uint64_t review = ++xfr_reviews_;
  bool publish = snap != xfr_snapshot_;
  uint64_t now = admin::now_ms();
  struct Found {
    std::string name;
    const zones::Zone* z;
    const zones::ZoneSource* src;  // null: as before (not a whole review)
    bool first, changed;
    uint64_t sd, digest, revision, rev;  // revision: before; rev: the new one, when changed
    std::vector<std::vector<uint16_t>> sets;
  };
  std::vector<Found> found;
  std::vector<std::pair<std::string, std::string>> stores;
  auto look = [&](const std::string& name, const zones::Zone* z, const zones::ZoneSource* src) {
    auto at = xfr_.find(name);
    XfrZone fresh;
    XfrZone& x = at == xfr_.end() ? fresh : at->second;
    const bool first = x.zone == nullptr;
    if (!first && x.zone == z && z->steered_records().empty()) {  // the same zone, nothing steered: as it was
      x.reviewed = review;
      if (src) {  // a reload may keep a zone and change who may transfer it
        x.spec = src->transfer;
        x.skip_dnssec = src->dnssec.online;
      }
      return;
    }
    Found f{name, z, src, first, false, x.zone == z ? x.static_digest : static_digest(*z), 0, x.revision, 0, {}};
    // Every steered record's transfer set, and a digest of all of it.
    f.digest = f.sd;
    for (const zones::SteeredRecord& rec : z->steered_records()) {
      zones::Pick pick;
      zones::transfer_set(rec, z->endpoints(rec), *snap->states, snap->regions, pick);
      f.sets.emplace_back(pick.index, pick.index + pick.count);
      uint8_t n = pick.count;
      f.digest = zones::hash_bytes(f.digest, &n, 1);
      for (uint16_t i : f.sets.back()) {
        const auto& ep = z->endpoints(rec)[i];
        f.digest = zones::hash_bytes(f.digest, z->steered_rdata(ep), ep.rdlen);
      }
    }
    // In a cluster the serial follows the revision of the last change to
    // answer state, so every node that applied the same history serves the
    // same serial; a change seen here first (a clock-driven ramp step, a
    // local verdict) moves it by one until that revision catches up.
    const uint64_t answer_rev = answer_revision(x, *z);
    f.changed = !first && (f.digest != x.digest || answer_rev > x.revision);
    bool stored_before = true;
    if (first) {
      // Where this node left off: the same content keeps its revision (and
      // so its serial); other content is a new revision. A zone never
      // transferred before starts at the cluster's revision (0 alone).
      unsigned long rev = 0, stored = 0;
      auto v = store_.zone_meta('x', name);
      if (v && sscanf(v->c_str(), "%lu %lx", &rev, &stored) == 2) {
        f.revision = rev;
        f.changed = stored != f.digest || answer_rev > rev;
      } else {
        f.revision = answer_rev > 0 ? answer_rev - 1 : 0;
        f.changed = true;
        stored_before = false;
      }
    }
    if (f.changed) {
      f.rev = stored_before ? std::max(f.revision + 1, answer_rev) : f.revision + (answer_rev > 0);
      char value[64];
      snprintf(value, sizeof value, "%lu %016lx", static_cast<unsigned long>(f.rev),
               static_cast<unsigned long>(f.digest));
      stores.emplace_back(name, value);
    }
    found.push_back(std::move(f));
  };
  if (whole) {
    for (const zones::ZoneSource& src : cfg.zones) {
      if (!src.transfer.enabled()) continue;
      dns::NameBuf origin;
      if (!dns::from_text(src.origin, origin)) continue;
      const zones::Zone* z = snap->find_zone(origin);
      if (!z || !z->served_serial()) continue;
      look(z->origin_text(), z, &src);
    }
  } else {
    for (const std::string& name : xfr_steered_) look(name, xfr_.at(name).zone, nullptr);
  }
  // Not durable, not served: a serial that could go backwards after a
  // crash would make secondaries ignore us. Nothing changes (the view
  // published before, and the snapshot it holds, stay) until the write
  // succeeds; every review tries again.
  if (!stores.empty()) {
    if (auto err = store_.put_zone_metas('x', stores)) {
      if (!xfr_review_all_)
        VANE_ERROR("%s: cannot store its transfer revision, its new serial is not served: %s",
                   zones_named(stores).c_str(), err->to_string().c_str());
      ++xfr_store_errors_;
      xfr_review_all_ = true;
      return;
    }
    if (xfr_review_all_) VANE_INFO("zone transfer revisions stored again: new serials are served");
  }
  xfr_review_all_ = false;
  std::vector<XfrZone*> applied;
  for (Found& f : found) {
    XfrZone& x = xfr_[f.name];
    if (f.first) x.serial_slot = srv_.states().zone_serial(f.name, f.z->serial());
    if (f.changed) {
      uint32_t serial = static_cast<uint32_t>(f.z->serial() + f.rev);
      if (!f.first && f.sd == x.static_digest) {
        // Only steered RRsets moved: keep the difference for IXFR.
        zones::IxfrStep step;
        step.from = x.serial;
        step.to = serial;
        auto before = steered_rrs(*x.zone, x.steered), after = steered_rrs(*f.z, f.sets);
        std::vector<std::string> gone, came;
        std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(gone));
        std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(came));
        add_all(step.removed, gone);
        add_all(step.added, came);
        x.history.push_back(std::move(step));
        if (x.history.size() > kHistorySteps) x.history.erase(x.history.begin());
      } else {
        x.history.clear();  // the zone file changed: older serials get the whole zone
      }
      VANE_INFO("zone %s: serial %u (file %u + state revision %lu)", f.name.c_str(), serial, f.z->serial(),
                static_cast<unsigned long>(f.rev));
      x.revision = f.rev;
      x.serial = serial;
      x.notify_due = true;
    } else if (f.first) {
      x.revision = f.revision;
      x.serial = static_cast<uint32_t>(f.z->serial() + x.revision);
    }
    x.digest = f.digest;
    if (f.changed || x.zone != f.z) publish = true;
    x.zone = f.z;
    x.static_digest = f.sd;
    x.steered = std::move(f.sets);
    if (f.src) {
      x.spec = f.src->transfer;
      x.skip_dnssec = f.src->dnssec.online;
    }
    x.reviewed = review;
    applied.push_back(&x);
  }
  // Those a whole review did not come to are gone from the config or the snapshot.
  if (whole) {
    xfr_steered_.clear();
    for (auto it = xfr_.begin(); it != xfr_.end();) {
      if (it->second.reviewed != review) {
        it = xfr_.erase(it);
        publish = true;
        continue;
      }
      if (!it->second.steered.empty()) xfr_steered_.push_back(it->first);
      ++it;
    }
  }
  if (publish) {
    auto view = std::make_shared<zones::TransferView>();
    view->snapshot = snap;
    view->keys = cfg.tsig;
    for (const auto& [name, x] : xfr_) {
      zones::ZoneTransfer& t = view->zones[x.zone];
      t.zone = x.zone;
      t.spec = x.spec;
      t.serial = x.serial;
      t.steered = x.steered;
      t.history = x.history;
      t.skip_dnssec = x.skip_dnssec;
    }
    srv_.transfers().publish(std::move(view));
    xfr_snapshot_ = snap;
  }
  // Answers carry the new serial once the view that transfers it is out;
  // then the secondaries hear of it.
  for (XfrZone* x : applied) {
    x->serial_slot->store(x->serial, std::memory_order_relaxed);
    if (x->notify_due) {
      x->notify_due = false;
      start_notify(*x, now);
    }
  }
  send_notifies(now);
}

// "zone a." or "zone a. and 3 other zones": whose values (zone, value) a
// store write held, for its error.
std::string Control::zones_named(const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out = "zone " + (values.empty() ? std::string() : values.front().first);
  if (values.size() > 1) out += " and " + std::to_string(values.size() - 1) + " other zones";
  return out;
}

// The revision of the last change to the zone's answer state anywhere in
// the cluster: the same on every node that applied the same history,
// whatever heartbeats or other zones' changes came between. 0 alone.
uint64_t Control::answer_revision(XfrZone& x, const zones::Zone& z) {
  if (!cluster_) return 0;
  if (x.zone == &z && x.answer_seen == record_rev_changes_) return x.answer_rev;
  uint64_t rev = 0;
  for (const zones::SteeredRecord& rec : z.steered_records())
    if (auto it = record_rev_.find(zones::record_key(z.info(rec).name, rec.type)); it != record_rev_.end())
      rev = std::max(rev, it->second);
  x.answer_seen = record_rev_changes_;
  return x.answer_rev = rev;
}

// NOTIFY (RFC 1996) to every transfer.notify target of the zone, for its
// current serial: a newer serial replaces an unanswered older one.
void Control::start_notify(XfrZone& x, uint64_t now) {
  if (x.spec.notify.empty()) return;
  x.notifies.clear();
  for (const std::string& target : x.spec.notify) {
    ListenAddr a;
    if (!parse_listen(target, a)) continue;
    XfrZone::Notify n;
    n.addr = a.addr;
    n.len = a.len;
    n.serial = x.serial;
    n.next_ms = now;
    x.notifies.push_back(n);
  }
  xfr_next_notify_ms_ = now;
}

void Control::send_notifies(uint64_t now) {
  if (now < xfr_next_notify_ms_) return;  // none due (most reviews, with 20 000 zones: no walk of them all)
  uint64_t next = UINT64_MAX;
  for (auto& [name, x] : xfr_) {
    for (auto& n : x.notifies) {
      if (n.answered) continue;
      if (n.next_ms > now) {
        next = std::min(next, n.next_ms);
        continue;
      }
      if (!open_notify_socket(n.addr.ss_family)) {
        next = std::min(next, now + kNotifyFirstRetryMs);
        continue;
      }
      static std::mt19937 rng{std::random_device{}()};
      n.id = static_cast<uint16_t>(rng());
      // Header, the question (zone SOA IN) and the new SOA in the answer
      // section (§3.7: a hint the secondary may use).
      std::vector<uint8_t> m(12, 0);
      dns::put16(m.data(), n.id);
      dns::put16(m.data() + 2, uint16_t(kOpcodeNotify << 11) | dns::kFlagAA);
      dns::put16(m.data() + 4, 1);
      dns::put16(m.data() + 6, 1);
      auto origin = x.zone->origin();
      m.insert(m.end(), origin.begin(), origin.end());
      uint8_t q[4];
      dns::put16(q, dns::kTypeSOA);
      dns::put16(q + 2, dns::kClassIN);
      m.insert(m.end(), q, q + 4);
      const zones::RRset* soa = x.zone->soa();
      const uint8_t* rd = x.zone->rdata(*soa);
      zones::RrList rr;
      rr.add(origin, dns::kTypeSOA, soa->ttl, rd + 2, dns::get16(rd));
      dns::put32(rr.wire.data() + rr.wire.size() - 20, n.serial);
      m.insert(m.end(), rr.wire.begin(), rr.wire.end());
      int fd = n.addr.ss_family == AF_INET6 ? notify_fd6_ : notify_fd4_;
      ssize_t sent = sendto(fd, m.data(), m.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&n.addr), n.len);
      ++n.attempts;
      notify_counts_[sent < 0 ? "error" : "sent"]++;
      if (n.attempts == 1 || n.attempts % 5 == 0)
        VANE_INFO("NOTIFY %s serial %u to %s (attempt %u)", name.c_str(), n.serial, format_addr(n.addr).c_str(),
                  n.attempts);
      n.next_ms = now + std::min(kNotifyMaxRetryMs, kNotifyFirstRetryMs << std::min(n.attempts - 1, 6u));
      next = std::min(next, n.next_ms);
    }
  }
  xfr_next_notify_ms_ = next;
}

bool Control::open_notify_socket(int family) {
  int& fd = family == AF_INET6 ? notify_fd6_ : notify_fd4_;
  if (fd >= 0) return true;
  fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  uv_poll_t* p = family == AF_INET6 ? &notify_poll6_ : &notify_poll4_;
  uv_poll_init_socket(loop_, p, fd);
  p->data = this;
  uv_poll_start(p, UV_READABLE, [](uv_poll_t* h, int, int) { static_cast<Control*>(h->data)->on_notify_answer(h); });
  return true;
}

// A NOTIFY answered (any rcode): that target has heard of the serial.
void Control::on_notify_answer(uv_poll_t* h) {
  int fd = h == &notify_poll6_ ? notify_fd6_ : notify_fd4_;
  uint8_t buf[512];
  sockaddr_storage from{};
  socklen_t len = sizeof from;
  ssize_t n;
  while ((n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len)) >= 12) {
    uint16_t id = dns::get16(buf), flags = dns::get16(buf + 2);
    if (!(flags & dns::kFlagQR) || ((flags >> 11) & 0xF) != kOpcodeNotify) continue;
    for (auto& [name, x] : xfr_)
      for (auto& t : x.notifies)
        if (!t.answered && t.attempts && t.id == id && format_addr(t.addr) == format_addr(from)) {
          t.answered = true;
          notify_counts_["answered"]++;
          VANE_INFO("NOTIFY %s serial %u answered by %s (rcode %u, attempt %u)", name.c_str(), t.serial,
                    format_addr(from).c_str(), flags & 0xF, t.attempts);
        }
    len = sizeof from;
  }
}

void Control::stop_transfers() {
  for (auto* p : {&notify_poll4_, &notify_poll6_})
    if ((p == &notify_poll4_ ? notify_fd4_ : notify_fd6_) >= 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(p)))
      uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
}

// For status: what each transferred zone is at.
admin::Json Control::transfer_status(const zones::Zone& z) const {
  auto it = xfr_.find(z.origin_text());
  if (it == xfr_.end()) return nullptr;
  const XfrZone& x = it->second;
  admin::Json notify = admin::Json::array();
  for (const auto& n : x.notifies)
    notify.push_back({{"to", format_addr(n.addr)}, {"serial", n.serial}, {"answered", n.answered}, {"attempts", n.attempts}});
  return {{"role", "primary"},
          {"serial", x.serial},
          {"file_serial", z.serial()},
          {"state_revision", x.revision},
          {"ixfr_history", x.history.size()},
          {"notify", notify}};
}

}  // namespace vane::server
