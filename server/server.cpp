// Daemon lifecycle and reload. Nothing here runs per query.
#include "server.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "dnstap.h"
#include "log.h"
#include "udp_ring.h"

namespace vane::server {

namespace {

uint64_t stable_hash(const std::string& s) {  // FNV-1a: the same across runs and builds
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001B3ULL;
  return h;
}

// Compiles vane.yaml's records: into per-zone steered inputs, with endpoint
// state slots that stay put across reloads.
// A file's inode, size and mtime ("" when it cannot be stat'ed): what
// tells a replaced file (geoipupdate renames a new one in place).
std::string file_identity(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

std::string utc_date(uint64_t epoch) {
  time_t t = time_t(epoch);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// The geo database and the tables built from it, kept while the file and
// the plan stay the same (a zone reload, or a reload that changes only
// zones, must not walk a million networks again).
struct GeoCache {
  std::mutex mu;
  std::string key;
  std::shared_ptr<const zones::GeoState> state;
} g_geo_cache;

std::string geo_key(const std::string& path, const zones::GeoPlan& plan) {
  std::string id = file_identity(path);
  if (id.empty()) return "";
  std::ostringstream k;
  k << path << '|' << id << '|' << plan.geo << plan.proximity;
  for (const auto& r : plan.rules) {
    k << '|' << r.text << ':';
    for (uint16_t o : r.order) k << o << ',';
  }
  for (const auto& c : plan.coords) k << '|' << c.region << '@' << c.lat << ',' << c.lon << ',' << c.bias_km;
  return k.str();
}

std::optional<Error> compile_geo(const Config& cfg, zones::RegionMap& regions) {
  if (cfg.geo_database.empty()) return std::nullopt;
  zones::GeoPlan plan;
  for (const auto& r : cfg.regions) {
    if (r.geo.empty()) continue;
    zones::GeoPlan::Rule rule;
    rule.text = r.geo;
    rule.line = r.line;
    if (r.geo != "default") {
      std::string g = r.geo;
      size_t a = g.find('/');
      rule.continent = g.substr(0, a);
      if (a != std::string::npos) {
        size_t b = g.find('/', a + 1);
        rule.country = g.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
        if (b != std::string::npos) rule.subdivision = g.substr(b + 1);
      }
    }
    for (const auto& name : r.order) rule.order.push_back(regions.intern(name));
    plan.rules.push_back(std::move(rule));
  }
  for (const auto& rc : cfg.region_coords) plan.coords.push_back({regions.intern(rc.region), rc.lat, rc.lon, rc.bias_km});
  for (const auto& rec : cfg.records) {
    plan.geo |= rec.policy == zones::Policy::kGeo;
    plan.proximity |= rec.policy == zones::Policy::kProximity;
  }
  std::lock_guard lock(g_geo_cache.mu);
  std::string key = geo_key(cfg.geo_database, plan);
  if (!key.empty() && key == g_geo_cache.key) {
    regions.geo = g_geo_cache.state;
    return std::nullopt;
  }
  auto db = zones::GeoDb::open(cfg.geo_database);
  if (!db) return Error{cfg.path, cfg.geo_line, "geo: database " + cfg.geo_database + ": " + db.error().message};
  auto state = zones::build_geo(db.take(), std::move(plan));
  VANE_INFO("geo database %s (%s, built %s, %u nodes): %zu address ranges for geo, %zu for proximity, %.1f MiB, %.0f ms",
            cfg.geo_database.c_str(), state->db->type().c_str(), utc_date(state->db->build_epoch()).c_str(),
            state->db->node_count(), state->geo.size(), state->proximity.size(),
            double(state->geo.bytes() + state->proximity.bytes()) / (1 << 20), state->build_ms);
  g_geo_cache.key = key;
  g_geo_cache.state = state;
  regions.geo = std::move(state);
  return std::nullopt;
}

// The records are compiled into copies of the zones they steer in
// (`edited`, by index in cfg.zones); the other zones are read as configured.
std::optional<Error> compile_records(const Config& cfg, zones::StateTable& states, zones::RegionMap& regions,
                                     std::map<size_t, zones::ZoneSource>& edited) {
  for (const auto& r : cfg.regions) {
    if (!r.geo.empty()) continue;
    std::vector<uint16_t> order;
    for (const auto& name : r.order) order.push_back(regions.intern(name));
    regions.add_rule(r.family, r.prefix, r.addr, order,
                     r.vantage.empty() ? zones::kNoVantage : states.vantage_slot(r.vantage));
  }
  regions.finish();
  if (auto err = compile_geo(cfg, regions)) return err;
  for (const RecordSpec& rec : cfg.records) {
    zones::SteeredInput in;
    dns::NameBuf nb;
    dns::from_text(rec.name, nb);
    in.owner.assign(nb.data, nb.data + nb.len);
    in.record = zones::SteeredRecord{rec.type, rec.policy, rec.fail_closed, rec.sticky, rec.measured, rec.max_answers,
                                     rec.ttl,  0,          0,               0,          0};
    in.record.pick_all = rec.pick_all;
    in.record.state = states.slot(zones::record_key(rec.name, rec.type));
    if (in.record.state == UINT32_MAX) return Error{cfg.path, rec.line, "too many endpoints in all (limit 1048576)"};
    in.info.ttl_unsteady = rec.ttl_unsteady;
    in.info.name = rec.name;
    in.info.failback = rec.failback;
    in.file = cfg.path;
    in.line = rec.line;
    for (const EndpointSpec& ep : rec.endpoints) {
      zones::SteeredEndpoint e{};
      e.state = states.slot(zones::endpoint_key(rec.name, rec.type, ep.name));
      if (e.state == UINT32_MAX) return Error{cfg.path, ep.line, "too many endpoints in all (limit 1048576)"};
      e.priority = ep.priority;
      e.key = stable_hash(ep.name);
      e.region = ep.region.empty() ? zones::kNoRegion : regions.intern(ep.region);
      e.weight = ep.weight;
      e.rdata_off = static_cast<uint32_t>(in.rdata.size());
      if (rec.type == dns::kTypeCNAME) {
        dns::NameBuf t;
        dns::from_text(ep.address, t);
        in.rdata.insert(in.rdata.end(), t.data, t.data + t.len);
        e.rdlen = static_cast<uint8_t>(t.len);
      } else {
        uint8_t a[16];
        inet_pton(rec.type == dns::kTypeA ? AF_INET : AF_INET6, ep.address.c_str(), a);
        e.rdlen = rec.type == dns::kTypeA ? 4 : 16;
        in.rdata.insert(in.rdata.end(), a, a + e.rdlen);
      }
      in.endpoints.push_back(e);
      in.info.endpoints.push_back(ep.name);
      for (const CheckSpec& ch : cfg.checks)
        if (ch.name == ep.check && ch.damping_flips) {
          in.info.damping.resize(in.endpoints.size());
          in.info.damping.back() = {ch.damping_flips, ch.damping_window_ms, ch.damping_hold_ms};
        }
    }
    edited.try_emplace(rec.zone, cfg.zones[rec.zone]).first->second.steered.push_back(std::move(in));
  }
  return std::nullopt;
}

}  // namespace

// Reads one zone (its keys, its files). Touches nothing shared: zones load
// on several threads at once. place_one() then ties it to the state table.
// `no_copy`: a secondary zone without its file yet (served as expired).
// Its "loaded" line goes to `line` when given (the caller logs a set's
// lines together, in config order), else to the log, unless `quiet`.
static Result<std::unique_ptr<zones::Zone>> read_one(const zones::ZoneSource& given, bool quiet, bool create_keys,
                                                     bool& no_copy, std::string* line = nullptr) {
  std::optional<zones::ZoneSource> changed;  // `given` with its keys, or a stand-in's text
  if (given.dnssec.online) {
    std::string made;
    auto keys = zones::load_keys(given.origin, given.dnssec, create_keys, &made);
    if (!keys) return keys.error();
    if (!made.empty())
      VANE_INFO("zone %s had no DNSSEC key: made a %s CSK %s (publish its DS: vanectl dnssec ds %s)",
                given.origin.c_str(), zones::algorithm_name(given.dnssec.algorithm), made.c_str(), given.origin.c_str());
    if ((*keys)->has_active()) changed.emplace(given).keys = keys.take();
  }
  // A secondary zone without a copy yet is served SERVFAIL until its first
  // transfer (an SOA-only stand-in keeps its place in the zone set).
  no_copy = given.secondary.enabled() && access(given.file.c_str(), R_OK) != 0;
  if (no_copy) {
    if (!changed) changed.emplace(given);
    changed->text = "$ORIGIN " + given.origin + (given.origin.ends_with('.') ? "" : ".") +
                    "\n@ 0 IN SOA invalid. invalid. 0 0 0 0 0\n";
  }
  const zones::ZoneSource& src = changed ? *changed : given;
  auto t0 = std::chrono::steady_clock::now();
  auto z = zones::load_zone(src);
  if (!z) return z.error();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet) {
    char msg[2048];
    snprintf(msg, sizeof msg, "zone %s loaded from %s: %zu records (%zu steered), %zu names, serial %u, %.1f ms, %.1f MiB",
             (*z)->origin_text().c_str(), src.file.c_str(), (*z)->record_count(), src.steered.size(),
             (*z)->node_count(), (*z)->serial(), ms, double((*z)->memory_bytes()) / (1 << 20));
    if (line)
      *line = msg;
    else
      VANE_INFO("%s", msg);
  }
  (*z)->set_file(src.file);
  return z;
}

static std::shared_ptr<const zones::Zone> place_one(std::unique_ptr<zones::Zone> z, const zones::ZoneSource& src,
                                                    bool no_copy, zones::StateTable& states) {
  if (src.transfer.enabled()) z->set_served_serial(states.zone_serial(z->origin_text(), z->serial()));
  if (src.secondary.enabled()) {
    std::vector<zones::Client> from;
    for (const auto& s : src.secondary.servers) {
      ListenAddr a;
      if (parse_listen(s, a)) from.push_back(client_of(a.addr));
    }
    auto* expired = states.zone_expired(z->origin_text(), no_copy);
    if (no_copy) expired->store(true, std::memory_order_relaxed);
    z->set_secondary(expired, std::move(from));
  }
  return std::shared_ptr<const zones::Zone>(std::move(z));
}

static Result<std::shared_ptr<const zones::Zone>> load_one(const zones::ZoneSource& src, zones::StateTable& states,
                                                           bool quiet, bool create_keys) {
  bool no_copy = false;
  auto z = read_one(src, quiet, create_keys, no_copy);
  if (!z) return z.error();
  return place_one(z.take(), src, no_copy, states);
}

namespace {

// What a zone is built from (see ZoneFingerprint): each file it read, by
// inode, size and modification time (the master file even when missing: a
// secondary's first copy), and its part of the config — its records as
// compiled (state slots, region ids, rdata, names), transfer and secondary
// settings. `read`: a zone just read from these files; each file it read is
// taken as that read found it (Zone::sources), the others as they are now.
// `was`: the fingerprint this one is compared with, whose contents are
// taken again if it was racy.
ZoneFingerprint fingerprint(const zones::ZoneSource& src, const std::vector<std::string>& files,
                            const zones::Zone* read = nullptr, const ZoneFingerprint* was = nullptr) {
  ZoneFingerprint fp;
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](const void* p, size_t n) { h = zones::hash_bytes(h, static_cast<const uint8_t*>(p), n); };
  auto str = [&](const std::string& s) {
    uint64_t n = s.size();
    mix(&n, sizeof n);
    mix(s.data(), s.size());
  };
  str(src.origin);
  str(src.file);
  str(src.text);
  auto as_read = [&](const std::string& f) -> const zones::Zone::Source* {
    if (read)
      for (const zones::Zone::Source& s : read->sources())
        if (s.path == f) return &s;
    return nullptr;
  };
  const int64_t now = time(nullptr);
  std::vector<const zones::Zone::Source*> found(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& f = files[i];
    str(f);
    struct stat st {};
    zones::Zone::FileId v = {~0ULL, 0, 0, 0, 0};
    const zones::Zone::Source* r = found[i] = as_read(f);
    if (r)
      v = r->id;
    else if (stat(f.c_str(), &st) == 0)
      v = zones::Zone::file_id(st);
    mix(v.data(), sizeof v);
    if ((v[0] != ~0ULL && now - int64_t(v[3]) < zones::Zone::kRacySeconds) || (r && r->racy)) fp.racy = true;
    if (r && r->racy && !r->contents) fp.unknown = true;
  }
  if (fp.racy || (was && was->racy)) {
    uint64_t c = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < files.size(); ++i) {
      const zones::Zone::Source* r = found[i];
      std::optional<uint64_t> one = r && r->contents ? r->contents : zones::hash_file(files[i]);
      uint64_t v[] = {one.value_or(0), one.has_value()};
      c = zones::hash_bytes(c, reinterpret_cast<const uint8_t*>(v), sizeof v);
    }
    fp.contents = c;
  }
  for (const zones::SteeredInput& in : src.steered) {
    mix(in.owner.data(), in.owner.size());
    const zones::SteeredRecord& r = in.record;
    uint64_t rv[] = {r.type, uint64_t(r.policy), r.fail_closed, r.sticky, r.measured, r.max_answers, r.ttl, r.state};
    mix(rv, sizeof rv);
    for (const zones::SteeredEndpoint& e : in.endpoints) {
      uint64_t ev[] = {e.state, e.priority, e.key, e.rdata_off, e.region, e.rdlen, e.weight};
      mix(ev, sizeof ev);
    }
    mix(in.rdata.data(), in.rdata.size());
    str(in.info.name);
    for (const std::string& s : in.info.endpoints) str(s);
    int64_t iv[] = {in.info.failback, int64_t(in.info.ttl_unsteady)};
    mix(iv, sizeof iv);
    for (const auto& d : in.info.damping) {
      uint64_t dv[] = {d.flips, d.window_ms, d.hold_ms};
      mix(dv, sizeof dv);
    }
  }
  uint64_t flags[] = {src.transfer.enabled(), src.secondary.enabled()};
  mix(flags, sizeof flags);
  for (const std::string& s : src.secondary.servers) str(s);
  fp.files = h;
  return fp;
}

// The fingerprint of a zone just read: its files as that read found them
// (a failed read: as they are now).
ZoneFingerprint fingerprint_read(const zones::ZoneSource& src, const std::vector<std::string>& files,
                                 const Result<std::unique_ptr<zones::Zone>>& read) {
  return fingerprint(src, files, read ? (*read).get() : nullptr);
}

// A source whose fingerprint is its origin and files alone: nothing in the
// config adds to it (what a zones: entry of just { name, file } gives).
bool fingerprint_config_only(const zones::ZoneSource& src) {
  return src.text.empty() && src.steered.empty() && !src.transfer.enabled() && !src.secondary.enabled() &&
         src.secondary.servers.empty() && !src.dnssec.online && !src.keys && src.parse_chunk == 0;
}

// The files a zone was read from, with its master file first.
std::vector<std::string> files_of(const zones::ZoneSource& src, const zones::Zone* z) {
  std::vector<std::string> f{src.file};
  if (z)
    for (const zones::Zone::Source& s : z->sources())
      if (s.path != src.file) f.push_back(s.path);
  return f;
}

}  // namespace

namespace {

std::string zone_key(const std::string& origin) { return origin + (origin.ends_with('.') ? "" : "."); }

size_t usable_cores() {
  cpu_set_t cpus;
  return sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? size_t(CPU_COUNT(&cpus)) : 1;
}

}  // namespace

ZonePreload::ZonePreload() : helpers_(std::min<size_t>(usable_cores(), 16) - 1) {}

ZonePreload::~ZonePreload() {
  finish();
}

std::function<void(const std::string&, const std::string&)> ZonePreload::hook() {
  return [this](const std::string& origin, const std::string& file) { add(origin, file); };
}

void ZonePreload::add(const std::string& origin, const std::string& file) {
  if (helpers_ == 0) return;  // one core: the parse has it
  std::lock_guard lock(mu_);
  if (stopped_) return;
  Item& it = items_.emplace_back();
  it.src.origin = origin;
  it.src.file = file;
  // Only a config of many zones is worth threads (as build_zone_set).
  if (items_.size() == kMinZones)
    for (size_t h = 0; h < helpers_; ++h) threads_.emplace_back([this] { run(); });
  cv_.notify_one();
}

void ZonePreload::run() {
  while (true) {
    Item* it;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopped_ || next_ < items_.size(); });
      if (stopped_) return;
      it = &items_[next_++];  // a deque: items do not move as more are added
    }
    bool no_copy = false;
    it->result = read_one(it->src, false, false, no_copy, &it->line);
    it->fingerprint = fingerprint_read(it->src, {it->src.file}, *it->result);
    ++read_;
  }
}

void ZonePreload::finish() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (Item& it : items_)  // the helpers have been joined: a result is complete
    if (it.result) by_name_[zone_key(it.src.origin)] = &it;
}

ZonePreload::Item* ZonePreload::find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<zones::ZoneSet>> build_zone_set(const Config& cfg, zones::StateTable& states, bool quiet,
                                                       bool create_keys, const ZoneCache* previous, ZoneCache* next,
                                                       size_t* reread, ZonePreload* preload) {
  zones::RegionMap regions;
  std::map<size_t, zones::ZoneSource> edited;
  if (auto err = compile_records(cfg, states, regions, edited)) return *err;
  std::vector<const zones::ZoneSource*> sources(cfg.zones.size());
  for (size_t i = 0; i < sources.size(); ++i) sources[i] = &cfg.zones[i];
  for (auto& [i, src] : edited) sources[i] = &src;
  if (preload) preload->finish();
  if (next) next->reserve(sources.size());
  std::vector<std::shared_ptr<const zones::Zone>> loaded(sources.size());
  // What each zone needs: the previous snapshot's copy when nothing it is
  // built from changed (or the copy read ahead while the config was being
  // parsed), else a read. Worked out on every core the process may use
  // when there are many zones (a big zone also parses on them, inside its
  // own read); a signed zone is read in order on this thread, since making
  // a missing key writes files.
  struct Job {
    std::string name;  // "example.com."
    const CachedZone* was = nullptr;
    std::vector<std::string> files;
    ZoneFingerprint fp;
    bool same = false;  // as `was`: taken from it
    std::optional<Result<std::unique_ptr<zones::Zone>>> result;
    std::string line;  // "loaded"
    bool no_copy = false;
  };
  std::vector<Job> jobs(sources.size());
  // Files it turned out to $INCLUDE count from now on, as the read found
  // them (one changed since is read again at the next reload).
  auto settle = [](Job& j, const zones::ZoneSource& src) {
    if (!*j.result) return;
    const zones::Zone& z = ***j.result;
    if (j.files.size() <= 1 && z.sources().size() <= 1) return;  // its master file alone, as before
    std::vector<std::string> now = files_of(src, &z);
    if (now != j.files) j.fp = fingerprint(src, now, &z);
  };
  auto prepare = [&](size_t i) {
    const zones::ZoneSource& src = *sources[i];
    Job& j = jobs[i];
    j.name = zone_key(src.origin);
    // Read ahead from this very source (the config adds nothing to its
    // { name, file }): its fingerprint is the one its read took, so a change
    // to the file since shows at the next reload, as after any read. A
    // read-ahead that failed is not taken: the file may have been caught
    // mid-write, and the read below gives the error if it still stands.
    if (ZonePreload::Item* p = preload ? preload->find(j.name) : nullptr;
        p && p->result && *p->result && p->src.file == src.file && p->src.origin == src.origin &&
        fingerprint_config_only(src)) {
      j.result = std::move(p->result);
      j.line = std::move(p->line);
      j.fp = p->fingerprint;  // of its master file alone (j.files left empty)
      preload->took();
      settle(j, src);
      return;
    }
    if (previous)
      if (auto it = previous->find(j.name); it != previous->end()) j.was = &it->second;
    j.files = files_of(src, j.was ? j.was->zone.get() : nullptr);
    if (!j.was && !src.dnssec.online) {  // nothing to compare with: read, then fingerprint what was read
      j.result = read_one(src, quiet, create_keys, j.no_copy, &j.line);
      j.fp = fingerprint_read(src, j.files, *j.result);
      settle(j, src);
      return;
    }
    j.fp = fingerprint(src, j.files, nullptr, j.was ? &j.was->fingerprint : nullptr);
    // A zone signed online is always read again: its keys may have changed.
    j.same = j.was && j.was->fingerprint.same_as_before(j.fp) && !src.dnssec.online;
    if (j.same || src.dnssec.online) return;
    j.result = read_one(src, quiet, create_keys, j.no_copy, &j.line);
    settle(j, src);
  };
  std::atomic<size_t> next_job{0};
  auto work = [&] {
    for (size_t k; (k = next_job.fetch_add(1, std::memory_order_relaxed)) < jobs.size();) prepare(k);
  };
  size_t helpers = jobs.size() >= ZonePreload::kMinZones ? std::min<size_t>(usable_cores(), 16) - 1 : 0;
  std::vector<std::thread> threads;
  for (size_t h = 0; h < helpers; ++h) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  std::vector<std::string> lines;
  auto log_read = [&] {
    if (!quiet) log_lines("info", lines);
  };
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& j = jobs[i];
    const zones::ZoneSource& src = *sources[i];
    if (j.same) {
      loaded[i] = j.was->zone;
      if (next) (*next)[j.name] = CachedZone{j.fp, j.was->zone};  // no longer racy once its files age
      continue;
    }
    if (reread) ++*reread;
    if (!j.result) {
      j.result = read_one(src, quiet, create_keys, j.no_copy, &j.line);
      settle(j, src);
    }
    if (!*j.result) {  // the first bad zone in config order
      log_read();
      return j.result->error();
    }
    if (!j.line.empty()) lines.push_back(std::move(j.line));
    auto z = place_one(j.result->take(), src, j.no_copy, states);
    if (next) (*next)[j.name] = CachedZone{j.fp, z};
    loaded[i] = std::move(z);
  }
  log_read();
  if (preload && preload->taken() && !quiet)
    VANE_INFO("%zu of %zu zones were read while the config was being parsed", preload->taken(), jobs.size());
  auto set = std::make_shared<zones::ZoneSet>(std::move(loaded));
  set->states = &states;
  set->regions = std::move(regions);
  set->rrl = cfg.rrl;
  return set;
}

Server::Server(Config cfg, ConfigSource reload_source)
    : cfg_(std::move(cfg)),
      reload_source_(std::move(reload_source)),
      config_path_(cfg_.path),
      threads_(cfg_.threads),
      started_(std::chrono::steady_clock::now()) {
  for (const auto& l : cfg_.listen) listen_.push_back(l.text);
}

Server::~Server() {
  stop();
}

// udp.receive resolved. Not in the config: recvmmsg, unless
// VANE_UDP_RECEIVE (io_uring, recvmmsg or auto) says otherwise — the test
// suite runs every UDP test on both paths so. `auto`: io_uring when a probe
// of it works here. io_uring asked for by name and not usable is an error at
// start, not a silent downgrade.
Result<UdpOptions> Server::udp_receive(const Config& cfg) {
  using R = UdpOptions::Receive;
  UdpOptions u = cfg.udp;
  const char* how = "udp.receive";
  if (u.receive == R::kUnset) {
    u.receive = R::kRecvmmsg;
    const char* env = getenv("VANE_UDP_RECEIVE");
    std::string e = env ? env : "";
    if (e == "io_uring" || e == "recvmmsg" || e == "auto") {
      u.receive = e == "io_uring" ? R::kIoUring : e == "auto" ? R::kAuto : R::kRecvmmsg;
      how = "VANE_UDP_RECEIVE";
    } else if (!e.empty()) {
      VANE_WARN("VANE_UDP_RECEIVE=%s ignored: it must be io_uring, recvmmsg or auto", e.c_str());
    }
  }
  std::string why = u.receive == R::kRecvmmsg ? "" : UdpRing::probe();
  if (u.receive == R::kIoUring && !why.empty())
    return Error{cfg.path, 0, std::string(how) + ": io_uring is not usable on this kernel (" + why + "); use recvmmsg or auto"};
  bool fell_back = u.receive == R::kAuto && !why.empty();
  if (u.receive == R::kAuto) u.receive = why.empty() ? R::kIoUring : R::kRecvmmsg;
  if (u.receive == R::kIoUring)
    VANE_INFO("UDP receive: io_uring (multishot recvmsg, %u provided buffers per socket)", UdpRing::kBuffers);
  else if (fell_back)
    VANE_INFO("UDP receive: recvmmsg (io_uring not usable here: %s)", why.c_str());
  else
    VANE_INFO("UDP receive: recvmmsg");
  return u;
}

std::optional<Error> Server::start(uv_loop_t* main_loop, ZonePreload* preload) {
  loop_ = main_loop;
  auto zs = build_zone_set(cfg_, *states_, false, true, nullptr, &zone_cache_, nullptr, preload);
  if (!zs) return zs.error();
  if (auto err = attach_dnstap(cfg_, nullptr, **zs)) return err;
  (*zs)->generation = ++generation_;
  publisher_.publish(zs.take());
  auto socks = open_sockets(cfg_.listen, cfg_.threads);
  if (!socks) return socks.error();
  admission_ = std::make_unique<TcpAdmission>(cfg_.tcp);
  AnswerOptions aopts;
  aopts.edns_udp_size = cfg_.edns_udp_size;
  aopts.sig_cache_entries = cfg_.dnssec_cache;
  auto udp = udp_receive(cfg_);
  if (!udp) return udp.error();
  for (unsigned i = 0; i < cfg_.threads; ++i)
    workers_.push_back(std::make_unique<Worker>(i, std::move((*socks)[i]), publisher_, transfers_, notifies_, *admission_, aopts,
                                                cfg_.tcp, *udp));
  for (auto& w : workers_) w->start();
  listen_.clear();
  for (const auto& la : cfg_.listen) {
    listen_.push_back(format_addr(la.addr));
    VANE_INFO("listening on %s (udp+tcp)", listen_.back().c_str());
  }
  every_second(retire_timer_, retire_timer_live_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->collect_retired(); });
  if (!cfg_.geo_database.empty()) {
    geo_seen_ = file_identity(cfg_.geo_database);
    every_second(geo_timer_, geo_timer_live_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->check_geo_file(); });
  }
  return std::nullopt;
}

std::optional<Error> Server::attach_dnstap(const Config& cfg, const zones::ZoneSet* current, zones::ZoneSet& set) const {
  if (!cfg.dnstap.enabled()) return std::nullopt;
  if (current && current->dnstap && current->dnstap->spec() == cfg.dnstap) {  // the same sink goes on
    set.dnstap = current->dnstap;
    return std::nullopt;
  }
  auto sink = DnstapSink::open(cfg.dnstap, dnstap_queues(threads_, cfg_.listen.size()));
  if (!sink) return Error{cfg.path, cfg.dnstap.line, sink.error().message};
  VANE_INFO("dnstap: logging %s%s%s to %s (one in %u)", cfg.dnstap.log_queries ? "queries" : "",
            cfg.dnstap.log_queries && cfg.dnstap.log_responses ? " and " : "",
            cfg.dnstap.log_responses ? "responses" : "", cfg.dnstap.sink().c_str(), cfg.dnstap.sample);
  set.dnstap = sink.take();
  return std::nullopt;
}

void Server::every_second(uv_timer_t& t, bool& live, uv_timer_cb cb) {
  uv_timer_init(loop_, &t);
  live = true;
  t.data = this;
  uv_timer_start(&t, cb, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(&t));  // never what keeps the loop alive
}

void Server::check_geo_file() {
  if (cfg_.geo_database.empty()) return;
  std::string now = file_identity(cfg_.geo_database);
  if (now == geo_seen_) return;
  geo_seen_ = now;
  if (now.empty()) {
    ++geo_errors_;
    geo_last_error_ = cfg_.geo_database + ": the file is gone; still serving the database loaded before";
    VANE_ERROR("geo: %s", geo_last_error_.c_str());
    return;
  }
  VANE_INFO("geo: %s changed: building its tables (the old ones serve until then)", cfg_.geo_database.c_str());
  reload_async([this](const ReloadOutcome& o) {
    if (o.ok) {
      geo_last_error_.clear();
      return;
    }
    ++geo_errors_;
    geo_last_error_ = o.message;
  });
}

void Server::publish(std::shared_ptr<zones::ZoneSet> z) {
  auto old = publisher_.current();
  publisher_.publish(std::move(z));
  for (auto& w : workers_) w->refresh();
  // Workers drop the old snapshot as they wake; the last reference is
  // released here on the main loop so no worker pays for freeing it.
  std::lock_guard lock(retired_mu_);
  if (old) retired_.push_back(std::move(old));
}

void Server::collect_retired() {
  for (auto& w : workers_) w->nudge();  // a wake lost to a race (worker.cpp, kWakeSignal)
  std::lock_guard lock(retired_mu_);
  std::erase_if(retired_, [](const auto& z) { return z.use_count() == 1; });
}

// A reload is built on a pool thread, which only reads cfg_ and
// zone_cache_, and committed on the main loop, the one thread that writes
// them: the control plane reads the config there at any time. One job runs
// at a time, so a build never sees a half-committed predecessor.
struct Server::Staged {
  ReloadOutcome outcome;                // a full reload's: a failure, or the summary without the generation
  std::shared_ptr<zones::ZoneSet> set;  // null: nothing to publish
  std::optional<Config> cfg;         // a full reload's config
  std::optional<ZoneCache> cache;    // a full reload's zone cache
  static constexpr size_t kNowhere = SIZE_MAX;
  struct Zone {
    std::string wire;                  // its name; empty: a name that is not one
    size_t config_at = kNowhere;       // its place in cfg_.zones
    size_t served_at = kNowhere;       // and in the snapshot
    ReloadOutcome outcome{false, ""};  // a failure, or the summary without the generation
    std::string origin;                // loaded: its origin, size and cache entry
    size_t records = 0;
    CachedZone cached;
  };
  std::vector<Zone> zones;                        // a zone batch's, one per zone
  std::unordered_map<std::string, size_t> asked;  // as a request named a zone -> its place in zones
};

std::unique_ptr<Server::Staged> Server::stage_reload() const {
  auto out = std::make_unique<Staged>();
  auto t0 = std::chrono::steady_clock::now();
  Config next = cfg_;
  if (reload_source_) {
    auto c = reload_source_();
    if (!c) {
      VANE_ERROR("reload refused, still serving the previous config: %s", c.error().to_string().c_str());
      out->outcome = {false, c.error().to_string()};
      return out;
    }
    next = c.take();
  }
  ZoneCache cache;
  size_t reread = 0;
  auto zs = build_zone_set(next, *states_, false, true, &zone_cache_, &cache, &reread);
  if (!zs) {
    VANE_ERROR("reload refused, still serving the previous zones: %s", zs.error().to_string().c_str());
    out->outcome = {false, zs.error().to_string()};
    return out;
  }
  if (auto err = attach_dnstap(next, publisher_.current().get(), **zs)) {
    VANE_ERROR("reload refused, still serving the previous config: %s", err->to_string().c_str());
    out->outcome = {false, err->to_string()};
    return out;
  }
  // Sockets, threads and TCP limits are fixed at start: say so instead of pretending.
  std::vector<std::string> old_listen, new_listen;
  for (auto& l : cfg_.listen) old_listen.push_back(l.text);
  for (auto& l : next.listen) new_listen.push_back(l.text);
  if (old_listen != new_listen || next.threads != cfg_.threads || !(next.tcp == cfg_.tcp) || !(next.udp == cfg_.udp))
    VANE_WARN("reload: listen, threads, tcp and udp changes take effect only after a restart");
  size_t records = 0;
  for (const auto& z : (*zs)->zones()) records += z->record_count();
  next.listen = cfg_.listen;
  next.threads = cfg_.threads;
  next.tcp = cfg_.tcp;
  next.udp = cfg_.udp;
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  char msg[220];
  snprintf(msg, sizeof msg, "reloaded %zu zones (%zu read again, the others unchanged), %zu records in %.1f ms",
           next.zones.size(), reread, records, ms);
  out->outcome = {true, msg};
  out->set = zs.take();
  out->cfg = std::move(next);
  out->cache = std::move(cache);
  return out;
}

// Zone reloads queued together (a secondary's transfers ending while one
// runs, several `vanectl reload ZONE`) are one batch: the records are
// compiled once, each zone's files read again, and one snapshot is
// published for all of them. Each zone keeps its own outcome: one bad file
// is refused with file:line while the others are served.
std::unique_ptr<Server::Staged> Server::stage_zone_reload(const std::vector<std::string>& asked) const {
  auto out = std::make_unique<Staged>();
  auto t0 = std::chrono::steady_clock::now();
  // The asked zones by origin (two spellings of one zone are one), then
  // one pass over the config and one over the served set to find them.
  auto view = [](std::span<const uint8_t> w) {
    return std::string_view(reinterpret_cast<const char*>(w.data()), w.size());
  };
  out->zones.reserve(asked.size());  // by_wire's keys point into them
  std::unordered_map<std::string_view, size_t> by_wire;
  for (const auto& name : asked) {
    if (out->asked.count(name)) continue;
    dns::NameBuf want;
    if (!dns::from_text(name, want)) {
      out->asked.emplace(name, out->zones.size());
      out->zones.push_back({});
      out->zones.back().outcome.message = "bad zone name '" + name + "'";
      continue;
    }
    auto at = by_wire.find(view(want.wire()));
    if (at == by_wire.end()) {
      out->zones.push_back({});
      out->zones.back().wire.assign(view(want.wire()));
      at = by_wire.emplace(out->zones.back().wire, out->zones.size() - 1).first;
    }
    out->asked.emplace(name, at->second);
  }
  std::string known;
  for (size_t i = 0; i < cfg_.zones.size(); ++i) {
    dns::NameBuf o;
    if (auto at = dns::from_text(cfg_.zones[i].origin, o) ? by_wire.find(view(o.wire())) : by_wire.end();
        at != by_wire.end())
      out->zones[at->second].config_at = i;
    if (i < 10) known += (known.empty() ? "" : ", ") + cfg_.zones[i].origin;
  }
  auto cur = publisher_.current();
  std::vector<std::shared_ptr<const zones::Zone>> zs;
  if (cur) zs.assign(cur->zones().begin(), cur->zones().end());
  for (size_t i = 0; i < zs.size(); ++i)
    if (auto at = by_wire.find(view(zs[i]->origin())); at != by_wire.end()) out->zones[at->second].served_at = i;
  // The records are compiled against the whole config (their region ids
  // must match the other zones'); only the asked zones' files are read again.
  std::map<size_t, zones::ZoneSource> edited;
  zones::RegionMap regions;
  std::optional<Error> compiled = compile_records(cfg_, *states_, regions, edited);
  size_t replaced = 0;
  for (auto& one : out->zones) {
    if (one.wire.empty()) continue;  // a bad name
    auto wire = std::span(reinterpret_cast<const uint8_t*>(one.wire.data()), one.wire.size());
    if (one.config_at == Staged::kNowhere || !cur) {
      one.outcome.message = "zone " + dns::to_text(wire) + " is not served here (zones: " + known +
                            (cfg_.zones.size() > 10 ? ", ..." : "") + ")";
      continue;
    }
    if (compiled) {
      one.outcome.message = compiled->to_string();
      continue;
    }
    if (one.served_at == Staged::kNowhere) {
      one.outcome.message =
          "zone " + dns::to_text(wire) + " is in the config but not in the served set: reload the config";
      continue;
    }
    const zones::ZoneSource& original =
        edited.count(one.config_at) ? edited.at(one.config_at) : cfg_.zones[one.config_at];
    auto z = load_one(original, *states_, false, true);
    if (!z) {
      VANE_ERROR("reload of zone %s refused, still serving the previous copy: %s", dns::to_text(wire).c_str(),
                 z.error().to_string().c_str());
      one.outcome.message = z.error().to_string();
      continue;
    }
    one.outcome.ok = true;
    one.records = (*z)->record_count();
    one.origin = (*z)->origin_text();
    one.cached = CachedZone{fingerprint(original, files_of(original, z->get()), z->get()), *z};
    zs[one.served_at] = z.take();
    ++replaced;
  }
  if (replaced) {
    out->set = std::make_shared<zones::ZoneSet>(std::move(zs));
    out->set->states = states_.get();
    out->set->regions = std::move(regions);
    out->set->rrl = cur->rrl;
    out->set->dnstap = cur->dnstap;
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (auto& one : out->zones) {
    if (!one.outcome.ok) continue;
    char msg[240];
    if (replaced == 1)
      snprintf(msg, sizeof msg, "reloaded zone %s: %zu records in %.1f ms, the other %zu zones untouched",
               one.origin.c_str(), one.records, ms, cfg_.zones.size() - 1);
    else
      snprintf(msg, sizeof msg,
               "reloaded zone %s: %zu records in %.1f ms, in one reload with %zu other zones; the other %zu "
               "zones untouched",
               one.origin.c_str(), one.records, ms, replaced - 1, cfg_.zones.size() - replaced);
    one.outcome.message = msg;
  }
  return out;
}

std::vector<ReloadOutcome> Server::commit(Staged& st) {
  std::vector<ReloadOutcome> outcomes;
  if (st.zones.empty() && !st.outcome.ok) {
    ++reloads_failed_;
    return {st.outcome};
  }
  if (st.set) {
    st.set->generation = ++generation_;
    publish(std::move(st.set));
  }
  if (st.zones.empty()) {
    if (st.cfg) {
      cfg_ = std::move(*st.cfg);
      ++config_generation_;
    }
    if (st.cache) zone_cache_ = std::move(*st.cache);
    outcomes.push_back(st.outcome);
  }
  for (auto& one : st.zones) {
    if (one.outcome.ok) zone_cache_[one.origin] = std::move(one.cached);
    outcomes.push_back(one.outcome);
  }
  for (auto& o : outcomes) {
    if (!o.ok) {
      ++reloads_failed_;
      continue;
    }
    o.message += " (generation " + std::to_string(generation_) + ")";
    VANE_INFO("%s", o.message.c_str());
    ++reloads_ok_;
  }
  return outcomes;
}

void Server::reload_zone_async(const std::string& zone, ReloadDone done) {
  std::vector<ReloadDone> d;
  if (done) d.push_back(std::move(done));
  reload_queue_.push_back({zone, std::move(d)});
  run_next_reload();
}

void Server::reload_async(ReloadDone done) {
  // Callers that arrive while a reload runs wait for the next one, so each
  // sees a reload that started after it asked; callers that arrive while
  // one is queued share it.
  auto queued = std::find_if(reload_queue_.begin(), reload_queue_.end(), [](const auto& r) { return r.zone.empty(); });
  if (queued == reload_queue_.end()) queued = reload_queue_.insert(reload_queue_.end(), ReloadRequest{});
  if (done) queued->done.push_back(std::move(done));
  run_next_reload();
}

void Server::run_next_reload() {
  if (stopped_ || reload_running_ || reload_queue_.empty()) return;
  reload_running_ = true;
  // A full reload alone; zone reloads: every one queued at the front.
  do {
    reload_current_.push_back(std::move(reload_queue_.front()));
    reload_queue_.pop_front();
  } while (!reload_current_.front().zone.empty() && !reload_queue_.empty() && !reload_queue_.front().zone.empty());
  reload_work_.data = this;
  uv_queue_work(
      loop_, &reload_work_,
      [](uv_work_t* w) {
        auto* s = static_cast<Server*>(w->data);
        if (s->reload_current_.front().zone.empty()) {
          s->staged_ = s->stage_reload();
        } else {
          std::vector<std::string> zones;
          for (const auto& r : s->reload_current_) zones.push_back(r.zone);
          s->staged_ = s->stage_zone_reload(zones);
        }
        malloc_trim(0);  // what parsing the config freed goes back to the system (see main.cpp)
      },
      [](uv_work_t* w, int) {
        auto* s = static_cast<Server*>(w->data);
        if (s->stopped_) {
          // SIGTERM came while it was read. What it would tell (the health
          // checker, the control plane, an admin client) is stopped or gone.
          VANE_INFO("reload abandoned: vaned is stopping");
          s->staged_.reset();
          s->reload_current_.clear();
          s->reload_running_ = false;
          return;
        }
        std::unordered_map<std::string, size_t> asked = std::move(s->staged_->asked);  // a zone's outcome's place
        std::vector<ReloadOutcome> outcomes = s->commit(*s->staged_);
        std::vector<ReloadRequest> reqs = std::move(s->reload_current_);
        s->reload_current_.clear();
        s->staged_.reset();
        s->reload_running_ = false;
        if (asked.empty() && outcomes.front().ok && s->on_reloaded_) s->on_reloaded_();
        for (auto& r : reqs) {
          const ReloadOutcome& o = outcomes[asked.empty() ? 0 : asked.at(r.zone)];
          for (auto& d : r.done) d(o);
        }
        s->run_next_reload();
      });
}

void Server::stop() {
  stopped_ = true;
  for (auto& w : workers_) w->stop();
  workers_.clear();  // joins
  // What the query log queued goes out before the process does (bounded).
  if (auto s = publisher_.current(); s && s->dnstap) s->dnstap->close(std::chrono::milliseconds(1500));
  for (auto [timer, live] : {std::pair{&retire_timer_, &retire_timer_live_}, std::pair{&geo_timer_, &geo_timer_live_}}) {
    if (*live && !uv_is_closing(reinterpret_cast<uv_handle_t*>(timer)))
      uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
    *live = false;
  }
}

}  // namespace vane::server
