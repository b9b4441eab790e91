#include "control.h"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "explain.h"
#include "log.h"

namespace vane::server {

using admin::Json;
using zones::Override;

namespace {

const char* override_name(Override o) {
  switch (o) {
    case Override::kUp:
      return "up";
    case Override::kDown:
      return "down";
    case Override::kDrain:
      return "drain";
    case Override::kAuto:
      break;
  }
  return "auto";
}

Override override_from(const std::string& s) {
  return s == "up" ? Override::kUp : s == "down" ? Override::kDown : s == "drain" ? Override::kDrain : Override::kAuto;
}

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

std::string record_list(const zones::ZoneSet& zs) {
  std::string list;
  for (const auto& z : zs.zones())
    for (const auto& r : z->steered_records())
      list += (list.empty() ? "" : ", ") + z->info(r).name + "/" + zones::steered_type_name(r.type);
  return list.empty() ? "none" : list;
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
Result<Control::Target> resolve(const zones::ZoneSet& zs, const zones::StateTable& states, std::string record,
                                const std::string& endpoint) {
  std::string type;
  if (size_t slash = record.rfind('/'); slash != std::string::npos) {
    type = record.substr(slash + 1);
    record.resize(slash);
    std::transform(type.begin(), type.end(), type.begin(), ::toupper);
  }
  std::transform(record.begin(), record.end(), record.begin(), ::tolower);
  if (!record.empty() && record.back() != '.') record += '.';
  std::vector<Control::Target> found;
  for (const auto& z : zs.zones())
    for (const auto& r : z->steered_records())
      if (z->info(r).name == record && (type.empty() || type == zones::steered_type_name(r.type)))
        found.push_back({z.get(), &r, 0, UINT32_MAX, record + "/" + zones::steered_type_name(r.type), ""});
  if (found.empty())
    return Error{
        "", 0,
        "no steered record '" + record + (type.empty() ? "" : "/" + type) + "'; steered records: " + record_list(zs)};
  if (found.size() > 1) {
    std::string types;
    for (auto& f : found) types += (types.empty() ? "" : ", ") + f.record;
    return Error{"", 0, record + " has several steered types: say which (" + types + ")"};
  }
  Control::Target t = found[0];
  const auto& info = t.zone->info(*t.rec);
  auto it = std::find(info.endpoints.begin(), info.endpoints.end(), endpoint);
  if (it == info.endpoints.end()) {
    std::string list;
    for (const auto& e : info.endpoints) list += (list.empty() ? "" : ", ") + e;
    return Error{"", 0, "no endpoint '" + endpoint + "' in " + t.record + "; endpoints: " + list};
  }
  t.ep = static_cast<size_t>(it - info.endpoints.begin());
  t.key = zones::endpoint_key(record, t.rec->type, endpoint);
  t.slot = states.find(t.key);
  if (t.slot == UINT32_MAX) return Error{"", 0, "internal: no state slot for " + t.key};
  return t;
}

}  // namespace

Control::Control(Server& srv, admin::StateStore& store) : srv_(srv), store_(store) {}

Control::~Control() = default;

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
  uint64_t now = admin::now_ms();
  for (const auto& [key, o] : store_.overrides()) {
    if (o.until_ms && o.until_ms <= now) {  // ran out while we were down: end it now, on the record
      admin::StateStore::Change c{key, std::nullopt, std::optional<admin::Override>{}, std::nullopt};
      Json j{{"action", "expire"}, {"endpoint", key}, {"was", o.state}, {"reason", o.reason}, {"by", "vaned"}};
      if (auto err = store_.commit({c}, j)) return err;
      VANE_INFO("override %s %s ended while vaned was down (expired %s)", key.c_str(), o.state.c_str(),
                admin::format_time(o.until_ms).c_str());
      continue;
    }
    apply_override(states.slot(key), o.state);
    if (o.until_ms) expiries_[key] = o;
  }
  return std::nullopt;
}

std::vector<std::string> Control::orphans() {
  std::set<std::string> live;
  auto snap = srv_.snapshot();
  for (const auto& z : snap->zones())
    for (const auto& r : z->steered_records())
      for (const auto& e : z->info(r).endpoints) live.insert(zones::endpoint_key(z->info(r).name, r.type, e));
  std::set<std::string> out;
  for (const auto& [k, v] : store_.weights())
    if (!live.count(k)) out.insert(k);
  for (const auto& [k, v] : store_.overrides())
    if (!live.count(k)) out.insert(k);
  return {out.begin(), out.end()};
}

void Control::start(uv_loop_t* loop) {
  for (const auto& k : orphans())
    VANE_WARN("stored state for %s, which the config no longer has: kept (vanectl status lists it)", k.c_str());
  uv_async_init(loop, &verdict_async_, [](uv_async_t* a) { static_cast<Control*>(a->data)->apply_verdicts(); });
  verdict_async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&verdict_async_));
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  timer_live_ = true;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<Control*>(t->data)->expire(); }, 250, 250);
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void Control::stop() {
  if (timer_live_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&verdict_async_), nullptr);
  }
  timer_live_ = false;
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
  srv_.states().at(slot).rtt_us[v].store(us, std::memory_order_relaxed);
}

namespace {
constexpr double kRttBuckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
constexpr size_t kNumRttBuckets = sizeof kRttBuckets / sizeof kRttBuckets[0];

const char* rcode_name(int r) {
  static const char* const kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
  return r < 6 ? kNames[r] : r == 16 ? "BADVERS" : nullptr;
}
}  // namespace

void Control::note_rtt(const std::string& vantage, double ms) {
  auto& h = rtt_hist_[vantage];
  if (h.empty()) h.assign(kNumRttBuckets + 2, 0);
  for (size_t i = 0; i < kNumRttBuckets; ++i)
    if (ms <= kRttBuckets[i]) ++h[i];
  h[kNumRttBuckets] += static_cast<uint64_t>(ms * 1000);  // sum, in µs
  ++h[kNumRttBuckets + 1];                                // count
}

uint64_t Control::hits(uint32_t slot) const {
  uint64_t n = 0;
  for (const Worker* w : srv_.workers()) n += w->counters().steered.get(slot);
  return n;
}

std::string Control::metrics() {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  using prometheus::MetricType;
  std::vector<MetricFamily> fams;
  fams.reserve(32);  // family() hands out references: no reallocation
  auto family = [&](const char* name, const char* help, MetricType type) -> MetricFamily& {
    fams.push_back(MetricFamily{name, help, type, {}});
    return fams.back();
  };
  auto sample = [](MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter)
      m.counter.value = v;
    else
      m.gauge.value = v;
    f.metric.push_back(std::move(m));
  };
  sample(family("vane_build_info", "Build information.", MetricType::Gauge), {{"version", VANE_VERSION}}, 1);
  sample(family("vane_uptime_seconds", "Seconds since start.", MetricType::Gauge), {}, srv_.uptime_s());

  // Per-worker counters, summed now: nothing shared is touched per query.
  auto workers = srv_.workers();
  auto& queries =
      family("vane_queries_total", "Answered queries by protocol, query type and response code.", MetricType::Counter);
  for (int t = 0; t < 2; ++t)
    for (int q = 0; q < QueryCounters::kQtypes; ++q)
      for (int r = 0; r < 17; ++r) {
        uint64_t n = 0;
        for (const Worker* w : workers) n += w->counters().answers[t][q][r].load(std::memory_order_relaxed);
        if (!n) continue;
        const char* rn = rcode_name(r);
        sample(queries,
               {{"protocol", t ? "tcp" : "udp"},
                {"qtype", qtype_bucket_name(q)},
                {"rcode", rn ? rn : "RCODE" + std::to_string(r)}},
               double(n));
      }
  auto& truncated = family("vane_responses_truncated_total", "Responses sent with TC=1.", MetricType::Counter);
  for (int t = 0; t < 2; ++t) {
    uint64_t n = 0;
    for (const Worker* w : workers) n += w->counters().truncated[t].load(std::memory_order_relaxed);
    sample(truncated, {{"protocol", t ? "tcp" : "udp"}}, double(n));
  }
  uint64_t dropped = 0;
  for (const Worker* w : workers) dropped += w->stats().dropped.load(std::memory_order_relaxed);
  sample(family("vane_queries_dropped_total",
                "Datagrams dropped without an answer (not a query, oversized, send failed).", MetricType::Counter),
         {}, double(dropped));

  auto snap = srv_.snapshot();
  auto& serial = family("vane_zone_serial", "SOA serial of each served zone.", MetricType::Gauge);
  auto& records = family("vane_zone_records", "Records in each served zone.", MetricType::Gauge);
  for (const auto& z : snap->zones()) {
    sample(serial, {{"zone", z->origin_text()}}, z->serial());
    sample(records, {{"zone", z->origin_text()}}, double(z->record_count()));
  }

  auto& answers = family("vane_steered_answers_total", "Steered answers per record and endpoint.", MetricType::Counter);
  auto& up =
      family("vane_endpoint_up", "1 when the endpoint is in answers (override, else health).", MetricType::Gauge);
  auto& healthy =
      family("vane_endpoint_healthy", "The health verdict over all vantages (1 up, 0 down).", MetricType::Gauge);
  auto& weight =
      family("vane_endpoint_weight", "Effective weight (admin weight, else the config's).", MetricType::Gauge);
  auto& overrides = family("vane_endpoint_override", "Active admin overrides.", MetricType::Gauge);
  auto& views =
      family("vane_vantage_view_up", "Each vantage's current view of each endpoint (1 up, 0 down).", MetricType::Gauge);
  auto& fresh =
      family("vane_vantage_fresh", "1 when the vantage reported within 3 check intervals.", MetricType::Gauge);
  uint64_t now = admin::now_ms();
  for (const auto& z : snap->zones())  // the snapshot, not the config: a reload may be rewriting that
    for (const auto& r : z->steered_records()) {
      const auto& info = z->info(r);
      auto eps = z->endpoints(r);
      for (size_t i = 0; i < eps.size(); ++i) {
        const auto& s = snap->states->at(eps[i].state);
        std::vector<ClientMetric::Label> l{
            {"record", info.name}, {"type", zones::steered_type_name(r.type)}, {"endpoint", info.endpoints[i]}};
        sample(answers, l, double(hits(eps[i].state)));
        sample(up, l, zones::endpoint_up(s));
        sample(healthy, l, s.health.load() == static_cast<uint8_t>(zones::Health::kUp));
        sample(weight, l, zones::effective_weight(s, eps[i]));
        auto ov = static_cast<Override>(s.override_state.load());
        if (ov != Override::kAuto) {
          auto lo = l;
          lo.push_back({"state", override_name(ov)});
          sample(overrides, lo, 1);
        }
        std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
        for (const auto& [vantage, vf] : agg_.views(key, now)) {
          sample(views, {{"vantage", vantage}, {"endpoint", key}}, vf.first.up);
          sample(fresh, {{"vantage", vantage}, {"endpoint", key}}, vf.second);
        }
      }
    }
  auto& checks = family("vane_check_observations_total",
                        "Health observations by vantage and view (this process: successful probes and failures that "
                        "changed a verdict; agents: every reported view).",
                        MetricType::Counter);
  for (const auto& [k, n] : checks_) sample(checks, {{"vantage", k.first}, {"view", k.second}}, double(n));
  auto& rtt = family("vane_check_rtt_milliseconds", "Probe round-trip times (median of recent probes) by vantage.",
                     MetricType::Histogram);
  for (const auto& [vantage, h] : rtt_hist_) {
    ClientMetric m;
    m.label = {{"vantage", vantage}};
    for (size_t i = 0; i < kNumRttBuckets; ++i) m.histogram.bucket.push_back({h[i], kRttBuckets[i]});
    m.histogram.bucket.push_back({h[kNumRttBuckets + 1], std::numeric_limits<double>::infinity()});
    m.histogram.sample_sum = double(h[kNumRttBuckets]) / 1000.0;
    m.histogram.sample_count = h[kNumRttBuckets + 1];
    rtt.metric.push_back(std::move(m));
  }
  auto& flips = family("vane_health_flips_total", "Endpoint verdict changes, by new verdict.", MetricType::Counter);
  for (const char* to : {"up", "down"}) sample(flips, {{"to", to}}, double(flips_[to]));
  auto& reloads = family("vane_reloads_total", "Reloads by result.", MetricType::Counter);
  sample(reloads, {{"result", "ok"}}, double(srv_.reloads_ok()));
  sample(reloads, {{"result", "failed"}}, double(srv_.reloads_failed()));
  auto& changes = family("vane_admin_changes_total", "Acknowledged admin changes by action.", MetricType::Counter);
  for (const char* a : {"weight", "drain", "undrain", "force"})
    sample(changes, {{"action", a}}, double(admin_changes_[a]));
  return prometheus::TextSerializer().Serialize(fams);
}

Json Control::page_status() {
  Json s = status();
  s["history"] = store_.history(20);
  s["now"] = admin::format_time(admin::now_ms());
  // Share of answers over the last 10-20 s (the baseline moves every 10 s,
  // however many pages poll), per endpoint of each record.
  uint64_t now = admin::now_ms();
  bool rebase = now - last_hits_ms_ >= 10000;
  auto snap = srv_.snapshot();
  size_t ri = 0;
  for (const auto& z : snap->zones())
    for (const auto& r : z->steered_records()) {
      const auto& info = z->info(r);
      auto eps = z->endpoints(r);
      uint64_t total = 0;
      std::vector<uint64_t> count(eps.size()), delta(eps.size());
      for (size_t i = 0; i < eps.size(); ++i) {
        std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
        count[i] = hits(eps[i].state);
        delta[i] = count[i] - std::min(count[i], last_hits_[key]);
        total += delta[i];
        if (rebase) last_hits_[key] = count[i];
      }
      if (ri < s["records"].size())
        for (size_t i = 0; i < eps.size(); ++i) {
          s["records"][ri]["endpoints"][i]["answers"] = count[i];
          s["records"][ri]["endpoints"][i]["share"] = total ? double(delta[i]) / double(total) : 0.0;
        }
      ++ri;
    }
  if (rebase) last_hits_ms_ = now;
  return s;
}

void Control::apply_verdicts() {
  std::vector<healthcheck::Observation> batch;
  std::vector<std::pair<std::string, double>> rtts;
  {
    std::lock_guard lock(verdict_mu_);
    batch.swap(observations_);
    rtts.swap(rtts_);
  }
  for (const auto& [key, ms] : rtts) {
    store_rtt(vantage_, key, ms);
    note_rtt(vantage_, ms);
    ++checks_[{vantage_, "up"}];
  }
  for (const auto& o : batch) {
    const std::string& vantage = o.self ? vantage_ : o.vantage;
    if (!o.self)
      ++checks_[{vantage, o.up ? "up" : "down"}];
    else if (!o.up)
      ++checks_[{vantage, "down"}];
    if (!o.self && o.rtt_ms > 0) {
      store_rtt(o.vantage, o.key, o.rtt_ms);
      note_rtt(o.vantage, o.rtt_ms);
    }
  }
  uint64_t now = admin::now_ms();
  for (const auto& o : batch) {
    healthcheck::VantageView v{o.up, now, o.rtt_ms, o.detail, o.self};
    if (auto d = agg_.observe(o.key, o.self ? vantage_ : o.vantage, v, now)) record_decision(o.key, *d);
  }
}

void Control::record_decision(const std::string& key, const healthcheck::Decision& d) {
  uint32_t slot = srv_.states().find(key);
  if (slot == UINT32_MAX) return;
  auto& s = srv_.states().at(slot);
  bool was_up = s.health.load() == static_cast<uint8_t>(zones::Health::kUp);
  const char* to = d.up ? "up" : "down";
  admin::StateStore::Change c{key, std::nullopt, std::nullopt, std::string(to)};
  Json j{{"action", "health"}, {"endpoint", key}, {"from", was_up ? "up" : "down"},
         {"to", to},           {"detail", d.why}, {"by", "vaned"}};
  if (auto err = store_.commit({c}, j))
    VANE_ERROR("cannot record health verdict for %s: %s (applied anyway)", key.c_str(), err->to_string().c_str());
  s.health.store(static_cast<uint8_t>(d.up ? zones::Health::kUp : zones::Health::kDown), std::memory_order_relaxed);
  ++flips_[to];
  VANE_WARN("health: %s is %s (%s)%s", key.c_str(), to, d.why.c_str(),
            zones::endpoint_up(s) == d.up ? "" : " — an admin override decides its answers");
}

std::vector<healthcheck::Target> Control::health_targets(const Config& cfg) {
  vantage_ = cfg.vantage;
  auto targets = healthcheck::targets_from(cfg);
  std::vector<std::string> keys;
  uint64_t now = admin::now_ms();
  for (auto& t : targets) {
    uint32_t slot = srv_.states().find(t.key);
    if (slot != UINT32_MAX)
      t.initial_up = srv_.states().at(slot).health.load() == static_cast<uint8_t>(zones::Health::kUp);
    bool new_endpoint = !agg_.known(t.key);
    agg_.set_endpoint(t.key, {t.check.interval_ms, t.check.quorum, t.check.min_vantages}, t.initial_up);
    // This process starts out seeing what was last decided, until its probes say otherwise.
    if (new_endpoint) agg_.observe(t.key, vantage_, {t.initial_up, now, 0, "", true}, now);
    keys.push_back(t.key);
  }
  agg_.retain(keys);
  return targets;
}

void Control::expire() {
  uint64_t now = admin::now_ms();
  for (const auto& [key, d] : agg_.tick(now)) record_decision(key, d);  // vantages going stale
  for (auto it = expiries_.begin(); it != expiries_.end();) {
    if (it->second.until_ms > now) {
      ++it;
      continue;
    }
    const std::string& key = it->first;
    const admin::Override& o = it->second;
    admin::StateStore::Change c{key, std::nullopt, std::optional<admin::Override>{}, std::nullopt};
    Json j{{"action", "expire"}, {"endpoint", key}, {"was", o.state}, {"reason", o.reason}, {"by", "vaned"}};
    if (auto err = store_.commit({c}, j)) {
      VANE_ERROR("cannot end override of %s: %s (will retry)", key.c_str(), err->to_string().c_str());
      return;
    }
    uint32_t slot = srv_.states().find(key);
    if (slot != UINT32_MAX) apply_override(slot, "auto");
    VANE_INFO("override %s %s expired (reason was: %s)", key.c_str(), o.state.c_str(), o.reason.c_str());
    it = expiries_.erase(it);
  }
}

Json Control::status() {
  auto snap = srv_.snapshot();
  uint64_t now = admin::now_ms();
  Json zones = Json::array(), records = Json::array();
  auto overrides = store_.overrides();
  for (const auto& z : snap->zones()) {
    zones.push_back({{"name", z->origin_text()},
                     {"serial", z->serial()},
                     {"records", z->record_count()},
                     {"names", z->node_count()},
                     {"file", z->file()}});
    for (const auto& r : z->steered_records()) {
      const auto& info = z->info(r);
      auto eps = z->endpoints(r);
      Json endpoints = Json::array();
      for (size_t i = 0; i < eps.size(); ++i) {
        const auto& s = snap->states->at(eps[i].state);
        int16_t aw = s.admin_weight.load(std::memory_order_relaxed);
        auto ov = static_cast<Override>(s.override_state.load(std::memory_order_relaxed));
        Json e{{"name", info.endpoints[i]},
               {"address", info.addresses[i]},
               {"up", zones::endpoint_up(s)},
               {"health", s.health.load() == static_cast<uint8_t>(zones::Health::kUp) ? "up" : "down"},
               {"override", override_name(ov)},
               {"config_weight", eps[i].weight},
               {"weight", zones::effective_weight(s, eps[i])},
               {"admin_weight", aw >= 0 ? Json(aw) : Json(nullptr)},
               {"priority", eps[i].priority}};
        if (eps[i].region != zones::kNoRegion) e["region"] = snap->regions.name(eps[i].region);
        std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
        for (const auto& [vantage, vf] : agg_.views(key, now))
          e["vantages"][vantage] = {{"up", vf.first.up},
                                    {"fresh", vf.second},
                                    {"detail", vf.first.detail},
                                    {"rtt_ms", vf.first.rtt_ms},
                                    {"age_s", (now - vf.first.at_ms) / 1000}};
        if (auto it = overrides.find(key); it != overrides.end()) {
          if (it->second.until_ms) e["override_until"] = admin::format_time(it->second.until_ms);
          if (!it->second.reason.empty()) e["override_reason"] = it->second.reason;
        }
        endpoints.push_back(std::move(e));
      }
      records.push_back({{"name", info.name},
                         {"type", zones::steered_type_name(r.type)},
                         {"policy", zones::policy_name(r.policy)},
                         {"ttl", r.ttl},
                         {"endpoints", endpoints}});
    }
  }
  return {{"ok", true},
          {"version", VANE_VERSION},
          {"pid", getpid()},
          {"uptime_s", std::lround(srv_.uptime_s())},
          {"workers", srv_.threads()},
          {"generation", snap->generation},
          {"listen", srv_.listen()},
          {"config", srv_.config_path()},
          {"zones", zones},
          {"records", records},
          {"orphans", orphans()}};
}

Json Control::change(const Json& req, const admin::Peer& peer) {
  const std::string cmd = req["cmd"].get<std::string>();
  std::string record, endpoint, reason, state, for_text;
  std::optional<std::string> bad;
  if (cmd == "weight")
    bad = check_fields(req, {"record", "endpoint", "weight", "reason"});
  else if (cmd == "force")
    bad = check_fields(req, {"record", "endpoint", "state", "for", "reason"});
  else
    bad = check_fields(req, {"record", "endpoint", "reason"});
  if (!bad) bad = get_string(req, "record", record);
  if (!bad) bad = get_string(req, "endpoint", endpoint);
  if (!bad) bad = get_string(req, "reason", reason, false, 500);
  if (bad) return admin::error_reply(*bad);
  auto snap = srv_.snapshot();
  auto t = resolve(*snap, srv_.states(), record, endpoint);
  if (!t) return admin::error_reply(t.error().message);
  auto& s = srv_.states().at(t->slot);
  const auto& ep = t->zone->endpoints(*t->rec)[t->ep];
  Json journal{{"action", cmd}, {"endpoint", t->key}, {"uid", peer.uid}, {"pid", peer.pid}};
  if (!reason.empty()) journal["reason"] = reason;
  admin::StateStore::Change c{t->key, std::nullopt, std::nullopt, std::nullopt};
  std::optional<int16_t> new_weight;
  std::optional<std::string> new_override;
  uint64_t until = 0;
  auto current = static_cast<Override>(s.override_state.load());

  if (cmd == "weight") {
    auto w = req.find("weight");
    if (w == req.end()) return admin::error_reply("missing \"weight\" (0..255, or \"config\")");
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
      return admin::error_reply("\"weight\" must be 0..255 or \"config\"");
    }
  } else if (cmd == "drain" || cmd == "undrain" || cmd == "force") {
    std::string target = cmd == "drain" ? "drain" : cmd == "undrain" ? "auto" : "";
    if (cmd == "undrain" && current != Override::kDrain)
      return admin::error_reply(t->key + " is not drained (override: " + override_name(current) +
                                "); use force ... auto to clear other overrides");
    if (cmd == "force") {
      if (auto e = get_string(req, "state", target)) return admin::error_reply(*e);
      if (target != "up" && target != "down" && target != "auto")
        return admin::error_reply("\"state\" must be up, down or auto");
      if (auto e = get_string(req, "for", for_text, false, 32)) return admin::error_reply(*e);
      if (!for_text.empty()) {
        uint64_t ms = 0;
        if (target == "auto") return admin::error_reply("\"for\" makes no sense with auto");
        if (!parse_duration_ms(for_text, ms) || ms == 0 || ms > 366ULL * 86400 * 1000)
          return admin::error_reply("\"for\" must be a duration like 90s, 15m or 2h (at most a year)");
        until = admin::now_ms() + ms;
        journal["until"] = admin::format_time(until);
      }
    }
    journal["from"] = override_name(current);
    journal["to"] = target;
    if (target == "auto")
      c.override_state = std::optional<admin::Override>{};
    else
      c.override_state =
          std::optional<admin::Override>{admin::Override{target, until, reason, peer.uid, admin::now_ms()}};
    new_override = target;
  } else {
    return admin::error_reply("unknown cmd");
  }
  // Durable first, then live: an "ok" means it survives kill -9.
  if (auto err = store_.commit({c}, journal)) return admin::error_reply(err->to_string());
  if (new_weight) s.admin_weight.store(*new_weight, std::memory_order_relaxed);
  if (new_override) {
    apply_override(t->slot, *new_override);
    if (until)
      expiries_[t->key] = **c.override_state;
    else
      expiries_.erase(t->key);
  }
  ++admin_changes_[cmd];
  VANE_INFO("admin: %s %s -> %s by uid %u%s%s", cmd.c_str(), t->key.c_str(), journal["to"].dump().c_str(),
            unsigned(peer.uid), reason.empty() ? "" : ": ", reason.c_str());
  Json out{{"ok", true},
           {"record", t->record},
           {"endpoint", endpoint},
           {"weight", zones::effective_weight(s, ep)},
           {"override", override_name(static_cast<Override>(s.override_state.load()))},
           {"up", zones::endpoint_up(s)},
           {"seq", store_.last_seq()}};
  if (until) out["until"] = admin::format_time(until);
  return out;
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

void Control::handle(const Json& request, const admin::Peer& peer, admin::Reply reply) {
  static const char* kKnown = "status, weight, drain, undrain, force, explain, reload, history";
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return reply(admin::error_reply(std::string("request has no \"cmd\" string; known: ") + kKnown));
  const std::string& name = cmd->get_ref<const std::string&>();
  if (name == "status") {
    if (auto bad = check_fields(request, {})) return reply(admin::error_reply(*bad));
    return reply(status());
  }
  if (name == "weight" || name == "drain" || name == "undrain" || name == "force") return reply(change(request, peer));
  if (name == "explain") return reply(explain(request));
  if (name == "history") return reply(history(request));
  if (name == "reload") {
    if (auto bad = check_fields(request, {})) return reply(admin::error_reply(*bad));
    VANE_INFO("admin: reload requested by uid %u pid %d", unsigned(peer.uid), int(peer.pid));
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
