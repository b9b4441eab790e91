// The admin verbs (status is in control_view.cpp): each request is checked
// field by field (nothing in it names a path), resolved against the serving
// snapshot, written through the StateWriter and applied once durable.
#include "control.h"

#include <openssl/evp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "etcd_client.h"
#include "explain.h"
#include "log.h"

namespace vane::server {

using admin::Json;
using zones::override_name;
using zones::Override;

namespace {

// Fields are checked, never passed through: no request names a path.
std::optional<std::string> check_fields(const Json& req, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : req.items()) {
    bool ok = key == "cmd";
    for (const char* a : allowed) ok |= key == a;
    if (!ok) return "unknown field '" + key + "' for " + req["cmd"].get<std::string>();
  }
  return std::nullopt;
}

std::optional<std::string> get_string(const Json& req, const char* key, std::string& out, bool required = true,
                                      size_t max = 255) {
  auto it = req.find(key);
  if (it == req.end())
    return required ? std::optional<std::string>(std::string("missing \"") + key + "\"") : std::nullopt;
  if (!it->is_string()) return std::string("\"") + key + "\" must be a string";
  out = it->get<std::string>();
  if (out.size() > max) return std::string("\"") + key + "\" is longer than " + std::to_string(max) + " bytes";
  return std::nullopt;
}

// An override's "for" (90s, 15m, 2h; at most a year): when it ends, or the
// error. Empty text: no end (0).
std::optional<std::string> override_until(const std::string& for_text, uint64_t& until) {
  until = 0;
  if (for_text.empty()) return std::nullopt;
  uint64_t ms = 0;
  if (!parse_duration_ms(for_text, ms) || ms == 0 || ms > 366ULL * 86400 * 1000)
    return "\"for\" must be a duration like 90s, 15m or 2h (at most a year)";
  until = admin::now_ms() + ms;
  return std::nullopt;
}

// Any other change to an endpoint ends its ramp, at the weight it had
// reached: `c` keeps that weight unless it sets one, and the plan goes.
admin::StateStore::Change ramp_end(admin::StateStore::Change& c, const std::string& ramp_id, int reached) {
  if (!c.weight) c.weight = std::optional<int>{reached};
  admin::StateStore::Change gone{ramp_id, std::nullopt, std::nullopt, std::nullopt};
  gone.plan = std::optional<admin::Json>{};
  return gone;
}

}  // namespace

struct Control::Target {
  const zones::Zone* zone = nullptr;
  const zones::SteeredRecord* rec = nullptr;
  size_t ep = 0;
  uint32_t slot = UINT32_MAX;
  std::string record;  // "www.example.com./A"
  std::string key;     // "www.example.com./A/use1"
};

namespace {

// RECORD (owner name, with /TYPE when it has several steered types) and
// ENDPOINT, looked up in the serving snapshot only.
Result<Control::Target> resolve(const zones::ZoneSet& zs, const zones::StateTable& states, const std::string& record,
                                const std::string& endpoint) {
  auto found = Control::find_record(zs, record);
  if (!found) return found.error();
  Control::Target t{found->first, found->second, 0, UINT32_MAX,
                    zones::record_key(found->first->info(*found->second).name, found->second->type), ""};
  const auto& info = t.zone->info(*t.rec);
  auto it = std::find(info.endpoints.begin(), info.endpoints.end(), endpoint);
  if (it == info.endpoints.end()) {
    std::string list;
    for (const auto& e : info.endpoints) list += (list.empty() ? "" : ", ") + e;
    return Error{"", 0, "no endpoint '" + endpoint + "' in " + t.record + "; endpoints: " + list};
  }
  t.ep = static_cast<size_t>(it - info.endpoints.begin());
  t.key = zones::endpoint_key(info.name, t.rec->type, endpoint);
  t.slot = states.find(t.key);
  if (t.slot == UINT32_MAX) return Error{"", 0, "internal: no state slot for " + t.key};
  return t;
}

}  // namespace

Control::Control(Server& srv, admin::StateStore& store, admin::StateWriter& writer, admin::ClusterStore* cluster)
    : srv_(srv), store_(store), writer_(writer), cluster_(cluster) {
  xfr_cancel_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

// After the loop has run out. The refreshes still under way (told to give
// up by stop()) end before the eventfd they read is closed.
Control::~Control() {
  if (xfr_cancel_fd_ >= 0) eventfd_write(xfr_cancel_fd_, 1);
  xfr_pool_.reset();
  if (xfr_cancel_fd_ >= 0) close(xfr_cancel_fd_);
  if (notify_fd4_ >= 0) close(notify_fd4_);
  if (notify_fd6_ >= 0) close(notify_fd6_);
}


void Control::change(const Json& req, const admin::Peer& peer, admin::Reply reply) {
  const std::string cmd = req["cmd"].get<std::string>();
  if ((cmd == "drain" || cmd == "undrain") && req.contains("region")) return change_region(req, peer, reply);
  std::string record, endpoint, reason, state, for_text;
  std::optional<std::string> bad;
  if (cmd == "weight")
    bad = check_fields(req, {"record", "endpoint", "weight", "over", "reason"});
  else if (cmd == "force")
    bad = check_fields(req, {"record", "endpoint", "state", "for", "reason"});
  else if (cmd == "drain")
    bad = check_fields(req, {"record", "endpoint", "for", "reason"});
  else
    bad = check_fields(req, {"record", "endpoint", "reason"});
  if (!bad) bad = get_string(req, "record", record);
  if (!bad) bad = get_string(req, "endpoint", endpoint);
  if (!bad) bad = get_string(req, "reason", reason, false, 500);
  if (bad) return reply(admin::error_reply(*bad));
  auto snap = srv_.snapshot();
  auto t = resolve(*snap, srv_.states(), record, endpoint);
  if (!t) return reply(admin::error_reply(t.error().message, "not_found"));
  auto& s = srv_.states().at(t->slot);
  const auto& ep = t->zone->endpoints(*t->rec)[t->ep];
  Json journal{{"action", cmd}, {"endpoint", t->key}};
  peer.stamp(journal);
  if (!reason.empty()) journal["reason"] = reason;
  admin::StateStore::Change c{t->key, std::nullopt, std::nullopt, std::nullopt};
  std::optional<int16_t> new_weight;
  std::optional<std::string> new_override;
  uint64_t until = 0;
  auto current = static_cast<Override>(s.override_state.load());

  if (cmd == "weight") {
    auto w = req.find("weight");
    if (w == req.end()) return reply(admin::error_reply("missing \"weight\" (0..255, or \"config\")"));
    journal["from"] = zones::effective_weight(s, ep);
    if (w->is_string() && w->get<std::string>() == "config") {
      c.weight = std::optional<int>{};
      new_weight = -1;
      journal["to"] = ep.weight;
      journal["to_config"] = true;
    } else if (w->is_number_integer() && w->get<int64_t>() >= 0 && w->get<int64_t>() <= 255) {
      c.weight = std::optional<int>{w->get<int>()};
      new_weight = static_cast<int16_t>(w->get<int>());
      journal["to"] = *new_weight;
    } else {
      return reply(admin::error_reply("\"weight\" must be 0..255 or \"config\""));
    }
    if (auto over = req.find("over"); over != req.end()) {  // a gradual ramp instead
      uint64_t ms = 0;
      if (!over->is_string() || !parse_duration_ms(over->get<std::string>(), ms) || ms < 1000 ||
          ms > 7ULL * 86400 * 1000)
        return reply(admin::error_reply("\"over\" must be a duration like 10m (1 s to 7 days)"));
      return ramp(t->key, zones::effective_weight(s, ep), *new_weight < 0 ? ep.weight : *new_weight, ms, reason, peer,
                  reply);
    }
  } else if (cmd == "drain" || cmd == "undrain" || cmd == "force") {
    std::string target = cmd == "drain" ? "drain" : cmd == "undrain" ? "auto" : "";
    if (cmd == "undrain" && current != Override::kDrain)
      return reply(admin::error_reply(t->key + " is not drained (override: " + override_name(current) +
                                "); use force ... auto to clear other overrides"));
    if (cmd == "force") {
      if (auto e = get_string(req, "state", target)) return reply(admin::error_reply(*e));
      if (target != "up" && target != "down" && target != "auto")
        return reply(admin::error_reply("\"state\" must be up, down or auto"));
    }
    if (cmd != "undrain") {  // a drain or a force may end by itself
      if (auto e = get_string(req, "for", for_text, false, 32)) return reply(admin::error_reply(*e));
      if (!for_text.empty() && target == "auto") return reply(admin::error_reply("\"for\" makes no sense with auto"));
      if (auto e = override_until(for_text, until)) return reply(admin::error_reply(*e));
      if (until) journal["until"] = admin::format_time(until);
    }
    journal["from"] = override_name(current);
    journal["to"] = target;
    if (target == "auto")
      c.override_state = std::optional<admin::Override>{};
    else
      c.override_state = std::optional<admin::Override>{
          admin::Override{target, until, reason, peer.uid, admin::now_ms(), peer.token, {}}};
    new_override = target;
  } else {
    return reply(admin::error_reply("unknown cmd"));
  }
  // Any other change to an endpoint ends its ramp, at the weight it had reached.
  std::vector<admin::StateStore::Change> changes{c};
  std::string ramp_id = "ramp/" + t->key;
  bool ends_ramp = plans_.count(ramp_id) > 0;
  if (ends_ramp) {
    changes.push_back(ramp_end(changes[0], ramp_id, zones::effective_weight(s, ep)));
    journal["ended_ramp"] = true;
  }
  // Durable first (RocksDB synced, or an etcd quorum), then live: an "ok"
  // means it survives kill -9 of this node.
  std::string key = t->key, record_name = t->record;
  uint32_t slot = t->slot;
  zones::SteeredEndpoint ep_copy = ep;
  std::optional<admin::Override> stored = c.override_state ? *c.override_state : std::nullopt;
  writer_.commit(changes, journal,
                 [this, reply, cmd, key, record_name, endpoint, slot, ep_copy, new_weight, new_override, stored, until,
                  journal, reason, peer, ends_ramp, ramp_id](std::optional<Error> err, uint64_t seq) {
                   if (err) return reply(admin::error_reply(err->to_string(), "unavailable"));
                   if (ends_ramp) plans_.erase(ramp_id);
                   zones::StateEdit edit(srv_.states());  // weight and override, seen together
                   if (new_weight) edit.weight(key, slot, *new_weight);
                   if (new_override) {
                     edit.override_state(key, slot, zones::override_from(*new_override));
                     if (until && stored)
                       expiries_[key] = *stored;
                     else
                       expiries_.erase(key);
                   }
                   edit.publish();
                   const auto& s = srv_.states().at(slot);
                   ++admin_changes_[cmd];
                   VANE_INFO("admin: %s %s -> %s by %s%s%s", cmd.c_str(), key.c_str(),
                             journal["to"].dump().c_str(), peer.describe().c_str(), reason.empty() ? "" : ": ",
                             reason.c_str());
                   Json out{{"ok", true},
                            {"record", record_name},
                            {"endpoint", endpoint},
                            {"weight", zones::effective_weight(s, ep_copy)},
                            {"override", override_name(static_cast<Override>(s.override_state.load()))},
                            {"up", zones::endpoint_up(s)},
                            {"seq", seq}};
                   if (until) out["until"] = admin::format_time(until);
                   reply(out);
                 });
}

// `drain|undrain --region R [--zone Z]`: evacuate a region (or bring it
// back) across every record at once — one durable change, one journal
// entry, answered whole (a StateEdit). An endpoint already in the state
// asked for is left as it is; a drain replaces any other override, as a
// drain of one endpoint does, and undrain touches drained endpoints only.
void Control::change_region(const Json& req, const admin::Peer& peer, admin::Reply reply) {
  const std::string cmd = req["cmd"].get<std::string>();
  std::string region, zone_name, reason, for_text;
  if (req.contains("record") || req.contains("endpoint"))
    return reply(admin::error_reply("\"region\" takes the place of \"record\" and \"endpoint\""));
  std::optional<std::string> bad = cmd == "drain" ? check_fields(req, {"region", "zone", "for", "reason"})
                                                  : check_fields(req, {"region", "zone", "reason"});
  if (!bad) bad = get_string(req, "region", region);
  if (!bad) bad = get_string(req, "zone", zone_name, false);
  if (!bad) bad = get_string(req, "reason", reason, false, 500);
  if (!bad) bad = get_string(req, "for", for_text, false, 32);
  if (bad) return reply(admin::error_reply(*bad));
  uint64_t until = 0;
  if (auto e = override_until(for_text, until)) return reply(admin::error_reply(*e));
  auto snap = srv_.snapshot();
  const zones::RegionMap& regions = snap->regions;
  uint16_t id = regions.find(region);
  if (id == zones::kNoRegion) {
    std::string list;
    for (size_t i = 0; i < regions.size(); ++i) list += (list.empty() ? "" : ", ") + regions.name(uint16_t(i));
    return reply(admin::error_reply(
        "no region '" + region + "'" + (list.empty() ? "; no endpoint names a region" : "; regions: " + list),
        "not_found"));
  }
  const zones::Zone* only = nullptr;
  if (!zone_name.empty()) {
    std::string want = dns::canonical_text(zone_name);
    for (const auto& z : snap->zones())
      if (dns::canonical_text(z->origin_text()) == want) only = z.get();
    if (!only) return reply(admin::error_reply("zone " + want + " is not served here", "not_found"));
  }
  const Override target = cmd == "drain" ? Override::kDrain : Override::kAuto;
  std::vector<admin::StateStore::Change> changes;
  std::vector<std::pair<std::string, uint32_t>> moved;  // key, slot
  std::vector<std::string> ramps_ended;
  std::vector<std::pair<const zones::Zone*, const zones::SteeredRecord*>> records;  // of `snap`, each once
  Json unchanged = Json::array();
  size_t in_region = 0;
  const std::optional<admin::Override> stored =
      target == Override::kDrain ? std::optional<admin::Override>{admin::Override{"drain", until, reason, peer.uid,
                                                                                  admin::now_ms(), peer.token, region}}
                                 : std::nullopt;
  for (const auto& z : snap->zones()) {
    if (only && z.get() != only) continue;
    for (const auto& r : z->steered_records()) {
      const auto& info = z->info(r);
      auto eps = z->endpoints(r);
      for (size_t i = 0; i < eps.size(); ++i) {
        if (eps[i].region != id) continue;
        ++in_region;
        std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
        auto& s = srv_.states().at(eps[i].state);
        auto current = static_cast<Override>(s.override_state.load());
        if (target == Override::kDrain ? current == Override::kDrain : current != Override::kDrain) {
          unchanged.push_back(key);
          continue;
        }
        admin::StateStore::Change c{key, std::nullopt, std::optional<std::optional<admin::Override>>{stored},
                                    std::nullopt};
        if (std::string ramp_id = "ramp/" + key; plans_.count(ramp_id)) {
          changes.push_back(ramp_end(c, ramp_id, zones::effective_weight(s, eps[i])));
          ramps_ended.push_back(ramp_id);
        }
        changes.push_back(std::move(c));
        moved.emplace_back(key, eps[i].state);
        if (records.empty() || records.back().second != &r) records.emplace_back(z.get(), &r);
      }
    }
  }
  if (!in_region)
    return reply(admin::error_reply("no endpoint in region '" + region + "'" + (only ? " in zone " + zone_name : ""),
                                    "not_found"));
  Json out{{"ok", true}, {"region", region}, {"unchanged", unchanged}};
  if (only) out["zone"] = dns::canonical_text(zone_name);
  if (moved.empty()) {
    out["changed"] = Json::array();
    out["seq"] = 0;
    return reply(out);
  }
  Json journal{{"action", cmd}, {"region", region}, {"count", moved.size()}};
  if (only) journal["zone"] = out["zone"];
  Json listed = Json::array();
  for (const auto& m : moved)
    if (listed.size() < 50) listed.push_back(m.first);
  journal["endpoints"] = listed;
  journal["to"] = cmd == "drain" ? "drain" : "auto";
  if (until) journal["until"] = admin::format_time(until);
  if (!reason.empty()) journal["reason"] = reason;
  peer.stamp(journal);
  writer_.commit(std::move(changes), journal,
                 [this, reply, out, moved, ramps_ended, snap, records, target, stored, until, cmd, region, peer](
                     std::optional<Error> err, uint64_t seq) mutable {
                   // In a cluster the change is one etcd transaction: each
                   // key written, guarded and read back, a mark per record
                   // and the journal. etcd holds 128 operations (about 60
                   // endpoints) and 1.5 MiB by default; what it refuses as
                   // too big was not written at all.
                   if (auto why = err && cluster_ ? admin::EtcdClient::too_big(*err) : std::nullopt)
                     return reply(admin::error_reply(
                         std::to_string(moved.size()) + " endpoints in " + std::to_string(records.size()) +
                         " records are more than one etcd transaction holds (etcd: " + *why +
                         "); nothing was changed — name a zone (\"zone\") to " + cmd +
                         " fewer at once, or raise etcd's --max-txn-ops and --max-request-bytes"));
                   if (err) return reply(admin::error_reply(err->to_string(), "unavailable"));
                   for (const auto& id : ramps_ended) plans_.erase(id);
                   {
                     zones::StateEdit edit(srv_.states());  // the whole region at once
                     for (const auto& [key, slot] : moved) {
                       edit.override_state(key, slot, target);
                       if (until && stored)
                         expiries_[key] = *stored;
                       else
                         expiries_.erase(key);
                     }
                   }
                   admin_changes_[cmd] += moved.size();
                   VANE_INFO("admin: %s of region %s: %zu endpoints by %s", cmd.c_str(), region.c_str(), moved.size(),
                             peer.describe().c_str());
                   Json changed = Json::array(), dark = Json::array();
                   for (const auto& m : moved) changed.push_back(m.first);
                   for (const auto& [z, r] : records) {  // `snap` keeps them alive
                     bool any = false;
                     for (const auto& e : z->endpoints(*r)) any |= zones::endpoint_up(srv_.states().at(e.state));
                     if (!any) dark.push_back(zones::record_key(z->info(*r).name, r->type));
                   }
                   out["changed"] = changed;
                   out["no_endpoint_up"] = dark;  // they fail open (or answer NODATA with fail_closed)
                   if (until) out["until"] = admin::format_time(until);
                   out["seq"] = seq;
                   reply(out);
                 });
}

Json Control::explain(const Json& req) {
  if (auto bad = check_fields(req, {"qname", "qtype", "client"})) return admin::error_reply(*bad);
  std::string qname, qtype, client_text;
  if (auto e = get_string(req, "qname", qname)) return admin::error_reply(*e);
  if (auto e = get_string(req, "qtype", qtype, false, 8)) return admin::error_reply(*e);
  if (auto e = get_string(req, "client", client_text, false, 64)) return admin::error_reply(*e);
  std::transform(qtype.begin(), qtype.end(), qtype.begin(), ::toupper);
  uint16_t type = qtype.empty()      ? 0
                  : qtype == "A"     ? dns::kTypeA
                  : qtype == "AAAA"  ? dns::kTypeAAAA
                  : qtype == "CNAME" ? dns::kTypeCNAME
                                     : 0xFFFF;
  if (type == 0xFFFF) return admin::error_reply("\"qtype\" must be A, AAAA or CNAME");
  zones::Client client;
  if (!client_text.empty() && !zones::parse_client(client_text, client))
    return admin::error_reply("\"client\" must be an address or a subnet, e.g. 10.1.2.3 or 10.1.2.0/24");
  auto snap = srv_.snapshot();
  auto ex = zones::explain(*snap, qname, type, client);
  if (!ex) return admin::error_reply(ex.error().message);
  return {{"ok", true},           {"record", ex->record}, {"type", ex->type},     {"policy", ex->policy},
          {"client", ex->client}, {"steps", ex->steps},   {"answer", ex->answer}, {"scope", ex->scope}};
}

Json Control::history(const Json& req) {
  if (auto bad = check_fields(req, {"limit"})) return admin::error_reply(*bad);
  size_t limit = 20;
  if (auto it = req.find("limit"); it != req.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > int64_t(admin::kJournalKeep))
      return admin::error_reply("\"limit\" must be 1.." + std::to_string(admin::kJournalKeep));
    limit = it->get<size_t>();
  }
  return {{"ok", true}, {"entries", store_.history(limit)}};
}

// dnssec ds|keys|keygen|activate|retire: the keys of a signed zone. Key
// files live in the zone's key_dir (from the config, never the request);
// a change is written (fsynced) and then published by a reload.
void Control::dnssec(const Json& req, const admin::Peer& peer, admin::Reply reply) {
  std::string action, zone_name, role_text, alg_text;
  if (auto bad = check_fields(req, {"action", "zone", "role", "algorithm", "tag"})) return reply(admin::error_reply(*bad));
  if (auto bad = get_string(req, "action", action)) return reply(admin::error_reply(*bad));
  if (auto bad = get_string(req, "zone", zone_name)) return reply(admin::error_reply(*bad));
  dns::NameBuf nb;
  if (!dns::from_text(zone_name, nb)) return reply(admin::error_reply("bad zone name '" + zone_name + "'"));
  std::string origin = dns::to_text(nb.wire());
  const zones::ZoneSource* src = nullptr;
  std::string signed_zones;
  for (const auto& z : srv_.config().zones) {
    dns::NameBuf zb;
    dns::from_text(z.origin, zb);
    if (z.dnssec.online) signed_zones += (signed_zones.empty() ? "" : ", ") + dns::to_text(zb.wire());
    if (dns::to_text(zb.wire()) == origin) src = &z;
  }
  if (!src) return reply(admin::error_reply("no zone " + origin + " in the config; signed zones: " +
                                            (signed_zones.empty() ? "none" : signed_zones), "not_found"));
  if (!src->dnssec.online)
    return reply(admin::error_reply("zone " + origin + " is not signed (set dnssec: { signing: online } on it)"));
  auto keys = zones::load_keys(origin, src->dnssec, false);
  if (!keys) return reply(admin::error_reply(keys.error().to_string()));
  auto key_json = [&](const zones::DnssecKey& k) {
    int64_t now = int64_t(time(nullptr));
    return Json{{"tag", k.tag},
                {"algorithm", zones::algorithm_name(k.algorithm)},
                {"flags", k.flags},
                {"role", zones::role_name(k.role)},
                {"state", zones::state_name(k.state)},
                {"created", admin::format_time(uint64_t(k.created) * 1000)},
                {"age_s", std::max<int64_t>(0, now - k.created)},
                {"file", k.base.substr(k.base.rfind('/') + 1)}};
  };
  if (action == "keys" || action == "ds") {
    Json list = Json::array();
    for (const auto& k : (*keys)->keys) {
      if (action == "ds" && (!(k.flags & 1) || k.state == zones::KeyState::kRetired)) continue;
      Json j = key_json(k);
      if (action == "ds") j["ds"] = zones::ds_text(origin, k, (*keys)->dnskey_ttl);
      list.push_back(j);
    }
    return reply({{"ok", true}, {"zone", origin}, {"key_dir", src->dnssec.key_dir}, {action, list}});
  }
  auto find_tag = [&](const zones::DnssecKey*& out) -> std::optional<std::string> {
    auto it = req.find("tag");
    if (it == req.end() || !it->is_number_integer()) return "\"tag\" must be a key tag (vanectl dnssec keys ZONE)";
    std::string tags;
    for (const auto& k : (*keys)->keys) {
      if (k.tag == it->get<int64_t>()) out = &k;
      tags += (tags.empty() ? "" : ", ") + std::to_string(k.tag);
    }
    if (!out) return "zone " + origin + " has no key " + it->dump() + "; keys: " + (tags.empty() ? "none" : tags);
    return std::nullopt;
  };
  std::vector<zones::DnssecKey> changed;  // copies with their new state (pkey not owned)
  std::string message;
  if (action == "keygen") {
    zones::KeyRole role = zones::KeyRole::kCsk;
    if (auto bad = get_string(req, "role", role_text, false)) return reply(admin::error_reply(*bad));
    if (!role_text.empty()) {
      if (role_text != "csk" && role_text != "ksk" && role_text != "zsk")
        return reply(admin::error_reply("\"role\" must be csk, ksk or zsk"));
      role = role_text == "ksk" ? zones::KeyRole::kKsk : role_text == "zsk" ? zones::KeyRole::kZsk : zones::KeyRole::kCsk;
    }
    uint8_t alg = src->dnssec.algorithm;
    if (auto bad = get_string(req, "algorithm", alg_text, false)) return reply(admin::error_reply(*bad));
    if (!alg_text.empty() && !zones::algorithm_from_name(alg_text, alg))
      return reply(admin::error_reply("\"algorithm\" must be ecdsap256sha256 or ed25519"));
    // The first key of a duty signs at once; a later one is published only,
    // until `activate` switches to it (a rollover's first step).
    bool duty_taken = false;
    for (const auto& k : (*keys)->keys)
      if (k.state == zones::KeyState::kActive &&
          (k.role == role || k.role == zones::KeyRole::kCsk || role == zones::KeyRole::kCsk))
        duty_taken = true;
    auto made = zones::generate_key(origin, src->dnssec.key_dir, alg, role,
                                    duty_taken ? zones::KeyState::kPublished : zones::KeyState::kActive);
    if (!made) return reply(admin::error_reply(made.error().to_string()));
    Json j = key_json(*made);
    EVP_PKEY_free(made->pkey);
    VANE_INFO("admin: dnssec keygen %s: %s key %u (%s) by %s", origin.c_str(), zones::role_name(role),
              unsigned(j["tag"].get<int>()), j["state"].get<std::string>().c_str(), peer.describe().c_str());
    return srv_.reload_async([reply, j, origin](const ReloadOutcome& o) {
      if (!o.ok) return reply(admin::error_reply("key written, but the reload failed: " + o.message));
      reply({{"ok", true}, {"zone", origin}, {"key", j}});
    });
  }
  if (action != "activate" && action != "retire")
    return reply(admin::error_reply("unknown dnssec action '" + action + "'; known: ds, keys, keygen, activate, retire"));
  const zones::DnssecKey* key = nullptr;
  if (auto bad = find_tag(key)) return reply(admin::error_reply(*bad));
  if (action == "activate") {
    if (key->state == zones::KeyState::kActive) return reply(admin::error_reply("key " + std::to_string(key->tag) + " is already active"));
    // The switch: this key signs; the active key of the same duty stays
    // published (validators holding its signatures still find it) until retired.
    // A CSK takes over every duty; a KSK or ZSK takes its own, and a CSK's
    // once the other half of the split is active too.
    auto active = [&](zones::KeyRole r) {
      return std::any_of((*keys)->keys.begin(), (*keys)->keys.end(),
                         [&](const zones::DnssecKey& k) { return k.role == r && k.state == zones::KeyState::kActive; });
    };
    zones::KeyRole other = key->role == zones::KeyRole::kKsk ? zones::KeyRole::kZsk : zones::KeyRole::kKsk;
    for (const auto& k : (*keys)->keys) {
      bool same_duty = k.role == key->role || key->role == zones::KeyRole::kCsk ||
                       (k.role == zones::KeyRole::kCsk && active(other));
      if (&k != key && k.state == zones::KeyState::kActive && same_duty) {
        changed.push_back(k);
        changed.back().state = zones::KeyState::kPublished;
      }
    }
    changed.push_back(*key);
    changed.back().state = zones::KeyState::kActive;
  } else {
    if (key->state == zones::KeyState::kActive)
      return reply(admin::error_reply("key " + std::to_string(key->tag) +
                                      " is active: switch to another first (vanectl dnssec activate " + origin +
                                      " TAG), wait for its signatures to expire from caches, then retire it"));
    if (key->state == zones::KeyState::kRetired)
      return reply(admin::error_reply("key " + std::to_string(key->tag) + " is already retired"));
    changed.push_back(*key);
    changed.back().state = zones::KeyState::kRetired;
  }
  for (const auto& k : changed)
    if (auto e = zones::write_key_state(k)) return reply(admin::error_reply(e->to_string()));
  VANE_INFO("admin: dnssec %s %s key %u by %s", action.c_str(), origin.c_str(), unsigned(key->tag),
            peer.describe().c_str());
  Json done = Json::array();
  for (const auto& k : changed) done.push_back({{"tag", k.tag}, {"state", zones::state_name(k.state)}});
  srv_.reload_async([reply, done, origin](const ReloadOutcome& o) {
    if (!o.ok) return reply(admin::error_reply("key state written, but the reload failed: " + o.message));
    reply({{"ok", true}, {"zone", origin}, {"changed", done}});
  });
}

std::optional<std::string> Control::zone_of(const Json& req) const {
  auto text = [](const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string cmd = text(req, "cmd"), record = text(req, "record");
  if (cmd == "zone") return text(req, "zone").empty() ? std::nullopt : std::optional(dns::canonical_text(text(req, "zone")));
  if ((cmd == "drain" || cmd == "undrain") && req.contains("region"))  // a region's endpoints, in one zone or all
    return text(req, "zone").empty() ? std::optional<std::string>("every zone (name one with \"zone\")")
                                     : std::optional(dns::canonical_text(text(req, "zone")));
  if (cmd == "drill" && text(req, "action") == "cancel") {
    auto id = req.find("id");
    if (id == req.end() || !id->is_number_unsigned()) return std::nullopt;
    auto p = plans_.find("drill/" + std::to_string(id->get<uint64_t>()));
    if (p == plans_.end()) return std::nullopt;
    record = text(p->second, "record");
  }
  if (record.empty()) return std::nullopt;
  auto found = find_record(*srv_.snapshot(), record);
  if (!found) return std::nullopt;
  return dns::canonical_text(found->first->origin_text());
}

void Control::handle(const Json& request, const admin::Peer& peer, admin::Reply reply) {
  static const char* kKnown =
      "status, weight, drain, undrain, force, failback, drill, explain, reload, history, dnssec, zone";
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return reply(admin::error_reply(std::string("request has no \"cmd\" string; known: ") + kKnown));
  const std::string& name = cmd->get_ref<const std::string&>();
  if (name == "status") {
    if (auto bad = check_fields(request, {"filter"})) return reply(admin::error_reply(*bad));
    std::string filter;
    if (auto f = request.find("filter"); f != request.end()) {
      if (!f->is_string() || f->get_ref<const std::string&>().size() > 255)
        return reply(admin::error_reply("status: \"filter\" must be a zone or record name"));
      filter = f->get<std::string>();
    }
    return reply(status(filter));
  }
  if (name == "weight" || name == "drain" || name == "undrain" || name == "force") return change(request, peer, reply);
  if (name == "failback") return failback(request, peer, reply);
  if (name == "drill") return drill(request, peer, reply);
  if (name == "explain") return reply(explain(request));
  if (name == "history") return reply(history(request));
  if (name == "dnssec") return dnssec(request, peer, reply);
  if (name == "zone") {
    if (auto bad = check_fields(request, {"action", "zone"})) return reply(admin::error_reply(*bad));
    return zone_verb(request, reply);
  }
  if (name == "reload" && request.contains("zone")) {
    if (auto bad = check_fields(request, {"zone"})) return reply(admin::error_reply(*bad));
    if (!request["zone"].is_string()) return reply(admin::error_reply("reload: \"zone\" must be a string"));
    std::string zone = request["zone"].get<std::string>();
    VANE_INFO("admin: reload of zone %s requested by %s", zone.c_str(), peer.describe().c_str());
    srv_.reload_zone_async(zone, [reply](const ReloadOutcome& o) {
      reply(o.ok ? Json{{"ok", true}, {"message", o.message}} : admin::error_reply(o.message));
    });
    return;
  }
  if (name == "reload") {
    if (auto bad = check_fields(request, {})) return reply(admin::error_reply(*bad));
    VANE_INFO("admin: reload requested by %s", peer.describe().c_str());
    srv_.reload_async([this, reply](const ReloadOutcome& o) {
      if (o.ok)
        for (const auto& k : orphans())
          VANE_WARN("stored state for %s, which the config no longer has: kept", k.c_str());
      reply(o.ok ? Json{{"ok", true}, {"message", o.message}} : admin::error_reply(o.message));
    });
    return;
  }
  reply(admin::error_reply("unknown cmd '" + name + "'; known: " + kKnown));
}

}  // namespace vane::server
