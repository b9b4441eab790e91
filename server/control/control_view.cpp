// The operator view: vanectl status, /metrics (Prometheus text through
// prometheus-cpp) and the status page's JSON. Main loop only; per-worker
// query counters are summed here, never on the DNS path.
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>

#include "control.h"
#include "dnstap.h"

namespace vane::server {

using admin::Json;
using zones::override_name;
using zones::Override;

namespace {
constexpr uint64_t kShareSampleMs = 5000, kShareWindowMs = 15 * 60 * 1000;
constexpr uint8_t kShareScale = 250, kNoShare = 255;
constexpr double kRttBuckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
constexpr size_t kNumRttBuckets = sizeof kRttBuckets / sizeof kRttBuckets[0];

const char* rcode_name(int r) {
  static const char* const kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN"};
  return r < 7 ? kNames[r] : r == 16 ? "BADVERS" : nullptr;
}

// One query counter summed over every thread's QueryCounters (each written
// by its one thread). `field` names the counter: a member pointer, or a
// function returning a reference to it.
template <typename Field>
uint64_t total(const std::vector<const Worker*>& workers, Field field) {
  uint64_t n = 0;
  for (const Worker* w : workers)
    for (const QueryCounters* c : w->counters()) n += std::invoke(field, *c).load(std::memory_order_relaxed);
  return n;
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

uint64_t Control::answers_since(std::span<const zones::SteeredEndpoint> eps, std::vector<uint64_t>& last,
                                bool advance, std::vector<uint64_t>& count, std::vector<uint64_t>& delta) const {
  uint64_t total = 0;
  count.resize(eps.size());
  delta.resize(eps.size());
  for (size_t i = 0; i < eps.size(); ++i) {
    uint32_t slot = eps[i].state;
    if (slot >= last.size()) grow_to(last, slot);
    count[i] = hits(slot);
    delta[i] = count[i] - std::min(count[i], last[slot]);
    total += delta[i];
    if (advance) last[slot] = count[i];
  }
  return total;
}

uint64_t Control::hits(uint32_t slot) const {
  uint64_t n = 0;
  for (const Worker* w : srv_.workers())
    for (const QueryCounters* c : w->counters()) n += c->steered.get(slot);
  return n;
}

std::string Control::metrics() {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  using prometheus::MetricType;
  std::vector<MetricFamily> fams;
  fams.reserve(96);  // family() hands out references: no reallocation
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
        uint64_t n = total(workers, [&](const QueryCounters& c) -> auto& { return c.answers[t][q][r]; });
        if (!n) continue;
        const char* rn = rcode_name(r);
        sample(queries,
               {{"protocol", t ? "tcp" : "udp"},
                {"qtype", qtype_bucket_name(q)},
                {"rcode", rn ? rn : "RCODE" + std::to_string(r)}},
               double(n));
      }
  auto& truncated = family("vane_responses_truncated_total", "Responses sent with TC=1.", MetricType::Counter);
  for (int t = 0; t < 2; ++t)
    sample(truncated, {{"protocol", t ? "tcp" : "udp"}},
           double(total(workers, [&](const QueryCounters& c) -> auto& { return c.truncated[t]; })));
  uint64_t dropped = 0;
  for (const Worker* w : workers) dropped += w->stats().dropped.load(std::memory_order_relaxed);
  sample(family("vane_queries_dropped_total",
                "Datagrams dropped without an answer (not a query, oversized, send failed).", MetricType::Counter),
         {}, double(dropped));

  uint64_t evicted = 0;
  for (const Worker* w : workers) evicted += w->stats().tcp_evicted.load(std::memory_order_relaxed);
  sample(family("vane_tcp_evicted_total",
                "TCP connections closed at tcp.max_connections to admit a new client (the idlest of the address "
                "holding most).",
                MetricType::Counter),
         {}, double(evicted));

  sample(family("vane_udp_batches_total",
                "UDP receives that returned queries (vane_queries_total{protocol=\"udp\"} / this = queries per batch).",
                MetricType::Counter),
         {}, double(total(workers, &QueryCounters::udp_batches)));
  sample(family("vane_udp_coalesce_waits_total", "Waits of udp.coalesce before a receive, taken under load.",
                MetricType::Counter),
         {}, double(total(workers, &QueryCounters::udp_waits)));

  auto snap = srv_.snapshot();
  auto& serial = family("vane_zone_serial", "SOA serial of each served zone.", MetricType::Gauge);
  auto& records = family("vane_zone_records", "Records in each served zone.", MetricType::Gauge);
  for (const auto& z : snap->zones()) {
    sample(serial, {{"zone", z->origin_text()}},
           z->served_serial() ? z->served_serial()->load(std::memory_order_relaxed) : z->serial());
    sample(records, {{"zone", z->origin_text()}}, double(z->record_count()));
  }
  auto& xfr = family("vane_transfers_out_total", "Zone transfer requests by kind and outcome.", MetricType::Counter);
  const auto& xc = srv_.transfers().counters;
  for (int k = 0; k < zones::TransferCounters::kKinds; ++k)
    for (int o = 0; o < zones::TransferCounters::kOutcomes; ++o)
      sample(xfr, {{"kind", k == zones::TransferCounters::kAxfr ? "axfr" : "ixfr"},
                   {"result", o == zones::TransferCounters::kOk ? "ok" : o == zones::TransferCounters::kRefused ? "refused" : "notauth"}},
             double(xc.out[k][o].load(std::memory_order_relaxed)));
  auto& notifies = family("vane_notify_total", "NOTIFY messages to secondaries: sent, answered, or a send error.",
                          MetricType::Counter);
  for (const char* r : {"sent", "answered", "error"})
    sample(notifies, {{"result", r}}, double(notify_counts_.count(r) ? notify_counts_.at(r) : 0));
  auto& xin = family("vane_transfers_in_total",
                     "Refreshes of secondary zones by kind (soa: the check found nothing newer or failed there; axfr, "
                     "ixfr) and result (updated, current, failed).",
                     MetricType::Counter);
  for (const char* k : {"soa", "axfr", "ixfr"})
    for (const char* r : {"updated", "current", "failed"})
      if (std::string(k) != "soa" || std::string(r) != "updated") {  // a check alone updates nothing
        auto it = xfr_in_counts_.find({k, r});
        sample(xin, {{"kind", k}, {"result", r}}, double(it == xfr_in_counts_.end() ? 0 : it->second));
      }
  sample(family("vane_notify_received_total", "NOTIFYs from a secondary zone's primaries, acted on.",
                MetricType::Counter),
         {}, double(notify_in_));
  auto& expires = family("vane_zone_expires_seconds",
                         "Seconds until a secondary zone's copy expires (0: expired or none: answered SERVFAIL).",
                         MetricType::Gauge);
  for (const auto& [zone, secs] : secondary_expiries()) sample(expires, {{"zone", zone}}, secs);
  sample(family("vane_transfer_store_errors_total",
                "Zone serial changes that could not be stored (and so were not served).", MetricType::Counter),
         {}, double(xfr_store_errors_));

  auto& answers = family("vane_steered_answers_total", "Steered answers per record and endpoint.", MetricType::Counter);
  auto& up =
      family("vane_endpoint_up", "1 when the endpoint is in answers (override, else health).", MetricType::Gauge);
  auto& healthy =
      family("vane_endpoint_healthy", "The health verdict over all vantages (1 up, 0 down).", MetricType::Gauge);
  auto& weight =
      family("vane_endpoint_weight", "Effective weight (admin weight, else the config's).", MetricType::Gauge);
  auto& overrides = family("vane_endpoint_override", "Active admin overrides.", MetricType::Gauge);
  auto& remaining = family("vane_endpoint_override_remaining_seconds",
                           "Seconds until a timed override ends (force --for, damping): a planned outage or drill when "
                           "the state is down.",
                           MetricType::Gauge);
  auto& up_count = family("vane_record_endpoints_up", "Endpoints of each steered record that are in answers.",
                          MetricType::Gauge);
  auto& fail_open = family("vane_record_fail_open",
                           "1 when no endpoint of the record is up and it answers with all of them (fail open).",
                           MetricType::Gauge);
  auto& failed_over = family("vane_record_failed_over",
                             "1 when a failover record answers from a tier below its preferred one.", MetricType::Gauge);
  auto& held = family("vane_record_failback_held",
                      "1 while a failover record is held on a lower tier by its failback policy.", MetricType::Gauge);
  auto& held_s = family("vane_record_failback_held_seconds", "How long the record has been held (0: not held).",
                        MetricType::Gauge);
  auto& healthy_s = family("vane_record_failback_preferred_healthy_seconds",
                           "How long a held record's preferred tier has been continuously healthy (0: it is not).",
                           MetricType::Gauge);
  auto stored_overrides = store_.overrides();
  auto& views =
      family("vane_vantage_view_up", "Each vantage's current view of each endpoint (1 up, 0 down).", MetricType::Gauge);
  auto& fresh =
      family("vane_vantage_fresh", "1 when the vantage reported within 3 check intervals.", MetricType::Gauge);
  uint64_t now = admin::now_ms();
  // Every endpoint's series, or (many endpoints) only those out of the
  // ordinary, with totals: a scrape of 100 000 endpoints stays small, and the
  // shipped alerts (which fire on the unusual) still see what they need.
  size_t endpoint_count = 0;
  for (const auto& z : snap->zones())
    for (const auto& r : z->steered_records()) endpoint_count += z->endpoints(r).size();
  auto mode = srv_.config().endpoint_metrics;
  bool every = mode == Config::EndpointMetrics::kAll ||
               (mode == Config::EndpointMetrics::kAuto && endpoint_count <= Config::kEndpointMetricsAuto);
  sample(family("vane_endpoint_metrics_limited",
                "1 when per-endpoint and per-record series are exported only for endpoints and records out of the "
                "ordinary (http.endpoint_metrics).",
                MetricType::Gauge),
         {}, !every);
  auto& zone_answers =
      family("vane_zone_steered_answers_total", "Steered answers per zone (all its records).", MetricType::Counter);
  auto& counts = family("vane_endpoints", "Steered endpoints by health verdict.", MetricType::Gauge);
  auto& in_answers = family("vane_endpoints_in_answers", "Steered endpoints in answers (override, else health).",
                            MetricType::Gauge);
  size_t healthy_n = 0, up_n = 0;
  for (const auto& z : snap->zones()) {  // the snapshot, not the config: a reload may be rewriting that
    double zone_hits = 0;
    for (const auto& r : z->steered_records()) {
      const auto& info = z->info(r);
      auto eps = z->endpoints(r);
      std::vector<ClientMetric::Label> rl{{"record", info.name}, {"type", zones::steered_type_name(r.type)}};
      FailbackView v = failback_view(*z, r);
      if (every || v.tiers.up < eps.size() || v.failed_over || v.tiers.held) {
        sample(up_count, rl, v.tiers.up);
        sample(fail_open, rl, v.tiers.up == 0 && !r.fail_closed);
        if (r.policy == zones::Policy::kFailover) {
          auto seconds_since = [&](uint64_t t) { return t ? double(now - t) / 1000.0 : 0.0; };
          sample(failed_over, rl, v.failed_over);
          sample(held, rl, v.tiers.held);
          sample(held_s, rl, seconds_since(v.held_since_ms));
          sample(healthy_s, rl, seconds_since(v.healthy_since_ms));
        }
      }
      for (size_t i = 0; i < eps.size(); ++i) {
        const auto& s = snap->states->at(eps[i].state);
        double n = double(hits(eps[i].state));
        zone_hits += n;
        bool is_up = zones::endpoint_up(s), is_healthy = s.health.load() == static_cast<uint8_t>(zones::Health::kUp);
        healthy_n += is_healthy;
        up_n += is_up;
        auto ov = static_cast<Override>(s.override_state.load());
        std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
        auto stored = stored_overrides.find(key);
        bool timed = stored != stored_overrides.end() && stored->second.until_ms > now;
        auto vs = agg_.views(eps[i].state, now);
        bool stale = std::any_of(vs.begin(), vs.end(), [](const auto& vf) { return !vf.second.second; });
        if (!every && is_up && is_healthy && ov == Override::kAuto && !timed && !stale &&
            s.admin_weight.load(std::memory_order_relaxed) < 0)
          continue;
        std::vector<ClientMetric::Label> l{
            {"record", info.name}, {"type", zones::steered_type_name(r.type)}, {"endpoint", info.endpoints[i]}};
        if (every) sample(answers, l, n);  // a counter comes and goes with nothing
        sample(up, l, is_up);
        sample(healthy, l, is_healthy);
        sample(weight, l, zones::effective_weight(s, eps[i]));
        if (ov != Override::kAuto) {
          auto lo = l;
          lo.push_back({"state", override_name(ov)});
          sample(overrides, lo, 1);
        }
        if (timed) {
          auto lo = l;
          lo.push_back({"state", stored->second.state});
          sample(remaining, lo, double(stored->second.until_ms - now) / 1000.0);
        }
        for (const auto& [vantage, vf] : vs) {
          sample(views, {{"vantage", vantage}, {"endpoint", key}}, vf.first.up);
          sample(fresh, {{"vantage", vantage}, {"endpoint", key}}, vf.second);
        }
      }
    }
    if (!z->steered_records().empty()) sample(zone_answers, {{"zone", z->origin_text()}}, zone_hits);
  }
  sample(counts, {{"health", "up"}}, double(healthy_n));
  sample(counts, {{"health", "down"}}, double(endpoint_count - healthy_n));
  sample(in_answers, {}, double(up_n));
  auto& checks = family("vane_check_observations_total",
                        "Health observations by vantage and view (this process: successful probes and failures that "
                        "changed a verdict; agents: every reported view, and as view=\"stale\" each one older than the "
                        "report behind the view held, not taken).",
                        MetricType::Counter);
  for (const auto& [k, n] : checks_) sample(checks, {{"vantage", k.first}, {"view", k.second}}, double(n));
  // In seconds, Prometheus's base unit (promtool's lint insists); buckets
  // are kept in ms inside.
  auto& rtt = family("vane_check_rtt_seconds", "Probe round-trip times (median of recent probes) by vantage.",
                     MetricType::Histogram);
  for (const auto& [vantage, h] : rtt_hist_) {
    ClientMetric m;
    m.label = {{"vantage", vantage}};
    for (size_t i = 0; i < kNumRttBuckets; ++i) m.histogram.bucket.push_back({h[i], kRttBuckets[i] / 1000.0});
    m.histogram.bucket.push_back({h[kNumRttBuckets + 1], std::numeric_limits<double>::infinity()});
    m.histogram.sample_sum = double(h[kNumRttBuckets]) / 1e6;  // kept in µs
    m.histogram.sample_count = h[kNumRttBuckets + 1];
    rtt.metric.push_back(std::move(m));
  }
  auto& rrl = family("vane_rrl_responses_total",
                     "UDP answers held back by response rate limiting: dropped, or sent truncated (slipped).",
                     MetricType::Counter);
  sample(rrl, {{"action", "dropped"}}, double(total(workers, &QueryCounters::rrl_dropped)));
  sample(rrl, {{"action", "slipped"}}, double(total(workers, &QueryCounters::rrl_slipped)));
  auto& sigs = family("vane_dnssec_signatures_total",
                      "RRSIGs for DO answers: served from the signature cache (hit), made on a miss, or failed "
                      "(the RRset went out unsigned).",
                      MetricType::Counter);
  sample(sigs, {{"result", "hit"}}, double(total(workers, &QueryCounters::sig_hits)));
  sample(sigs, {{"result", "miss"}}, double(total(workers, &QueryCounters::sig_misses)));
  sample(sigs, {{"result", "failure"}}, double(total(workers, &QueryCounters::sig_failures)));
  sample(family("vane_dnssec_sign_seconds_total", "CPU time spent making RRSIGs on cache misses.",
                MetricType::Counter),
         {}, double(total(workers, &QueryCounters::sig_ns)) / 1e9);
  auto& flips = family("vane_health_flips_total", "Endpoint verdict changes, by new verdict.", MetricType::Counter);
  for (const char* to : {"up", "down"}) sample(flips, {{"to", to}}, double(flips_[to]));
  auto& reloads = family("vane_reloads_total", "Reloads by result.", MetricType::Counter);
  sample(reloads, {{"result", "ok"}}, double(srv_.reloads_ok()));
  sample(reloads, {{"result", "failed"}}, double(srv_.reloads_failed()));
  if (snap->regions.geo) {
    const auto& g = *snap->regions.geo;
    sample(family("vane_geo_database_age_seconds",
                  "Seconds since the served geo database was built (its build_epoch): how stale locations are.",
                  MetricType::Gauge),
           {}, double(admin::now_ms() / 1000) - double(g.db->build_epoch()));
    auto& nets = family("vane_geo_ranges", "Address ranges with one answer in the geo decision tables, by table.",
                        MetricType::Gauge);
    sample(nets, {{"table", "geo"}}, double(g.geo.size()));
    sample(nets, {{"table", "proximity"}}, double(g.proximity.size()));
  }
  if (snap->dnstap) {
    auto& dt = family("vane_dnstap_messages_total",
                      "dnstap messages by result: queued for the writer, or dropped because the thread's queue was "
                      "full (the reader is slow, gone or not reading); answers never wait for it.",
                      MetricType::Counter);
    sample(dt, {{"result", "queued"}}, double(total(workers, &QueryCounters::dnstap_sent)));
    sample(dt, {{"result", "dropped"}}, double(total(workers, &QueryCounters::dnstap_dropped)));
    sample(family("vane_dnstap_dropped_total", "dnstap messages dropped (a full queue): the same as result=dropped.",
                  MetricType::Counter),
           {}, double(total(workers, &QueryCounters::dnstap_dropped)));
  }
  if (!srv_.config().geo_database.empty())
    sample(family("vane_geo_database_errors_total",
                  "Geo database files that could not be used (missing, unreadable, corrupt): the previous one kept serving.",
                  MetricType::Counter),
           {}, double(srv_.geo_errors()));
  sample(family("vane_state_store_write_errors_total",
                "Synced state-store (RocksDB) writes that failed: each refused an admin change or verdict whole "
                "(a full or failing disk).",
                MetricType::Counter),
         {}, double(store_.write_errors()));
  sample(family("vane_steering_torn_picks_total",
                "Steered answers picked while a change to several of the record's endpoints was being stored, "
                "after waiting ~1 ms for it (the control thread stalled mid-way): maybe from half of the change.",
                MetricType::Counter),
         {}, double(srv_.states().torn_picks()));
  auto& changes = family("vane_admin_changes_total", "Acknowledged admin changes by action.", MetricType::Counter);
  for (const char* a : {"weight", "drain", "undrain", "force", "failback"})
    sample(changes, {{"action", a}}, double(admin_changes_[a]));
  if (cluster_) {
    Json c = cluster_->status();
    sample(family("vane_cluster_connected", "1 while this node reaches etcd and watches the cluster state.",
                  MetricType::Gauge),
           {{"node", c["node"]}}, c["connected"].get<bool>() ? 1 : 0);
    sample(family("vane_cluster_applied_revision", "The etcd revision this node's state has applied.",
                  MetricType::Gauge),
           {}, double(c["applied_revision"].get<int64_t>()));
    sample(family("vane_cluster_lag_revisions", "Cluster revisions this node has not applied yet.", MetricType::Gauge),
           {}, double(c["lag"].get<int64_t>()));
    sample(family("vane_cluster_state_age_seconds",
                  "Seconds since this node last heard from etcd (0 while connected): how old its answers' state may be.",
                  MetricType::Gauge),
           {}, c["state_age_s"].is_number() ? c["state_age_s"].get<double>() : -1);
    sample(family("vane_cluster_nodes", "Nodes with a live membership lease.", MetricType::Gauge), {},
           double(c["nodes"].size()));
    sample(family("vane_cluster_config_mismatch", "1 when a node serves a config digest that differs from most nodes'.",
                  MetricType::Gauge),
           {}, c["digest_mismatch"].get<bool>() ? 1 : 0);
  }
  return prometheus::TextSerializer().Serialize(fams);
}

// Every kShareSampleMs: each endpoint's share of its record's answers since
// the sample before, in 1/kShareScale, by state slot (slots outlive reloads);
// kNoShare where the record answered nothing. One byte per slot per sample:
// the 15-minute window is bounded at 180 bytes a slot, however many answers.
void Control::sample_shares(uint64_t now) {
  if (now - share_last_ms_ < kShareSampleMs) return;
  bool first = share_last_ms_ == 0;
  share_last_ms_ = now;
  ShareSample smp{now, std::vector<uint8_t>(first ? 0 : srv_.states().size(), kNoShare)};
  auto snap = srv_.snapshot();
  std::vector<uint64_t> count, d;
  for (const auto& z : snap->zones())
    for (const auto& r : z->steered_records()) {
      auto eps = z->endpoints(r);
      uint64_t total = answers_since(eps, share_last_, true, count, d);
      if (first || !total) continue;
      for (size_t i = 0; i < eps.size(); ++i)
        smp.share[eps[i].state] = static_cast<uint8_t>((d[i] * kShareScale + total / 2) / total);
    }
  if (first) return;  // the baseline: shares start with the next sample
  // Slots past the last one that answered hold nothing: a sample of records
  // that answered nothing is empty.
  while (!smp.share.empty() && smp.share.back() == kNoShare) smp.share.pop_back();
  smp.share.shrink_to_fit();
  share_samples_.push_back(std::move(smp));
  while (!share_samples_.empty() && now - share_samples_.front().t_ms > kShareWindowMs) share_samples_.pop_front();
}

// One record's answer share per endpoint between samples (null where it
// answered nothing), and the journal's events on it as markers: on the
// record, on one of its endpoints, or on a region one of them is in (a
// region's drain, undrain and end).
Json Control::share_chart(const zones::Zone& z, const zones::SteeredRecord& r, const zones::RegionMap& regions,
                          const std::vector<Json>& journal, uint64_t now) const {
  const auto& info = z.info(r);
  std::string id = zones::record_key(info.name, r.type);
  Json t = Json::array(), shares = Json::object(), markers = Json::array();
  auto eps = z.endpoints(r);
  for (const auto& name : info.endpoints) shares[name] = Json::array();
  for (const auto& smp : share_samples_) {
    t.push_back(int64_t(smp.t_ms) - int64_t(now));
    for (size_t i = 0; i < eps.size(); ++i) {
      uint8_t v = eps[i].state < smp.share.size() ? smp.share[eps[i].state] : kNoShare;
      shares[info.endpoints[i]].push_back(v == kNoShare ? Json(nullptr) : Json(double(v) / kShareScale));
    }
  }
  auto in_region = [&](const Json& e) {
    auto region = e.find("region");
    if (region == e.end() || !region->is_string()) return false;
    if (e.contains("zone") && e["zone"] != dns::canonical_text(z.origin_text())) return false;
    uint16_t want = regions.find(region->get<std::string>());
    return want != zones::kNoRegion &&
           std::any_of(eps.begin(), eps.end(), [&](const auto& x) { return x.region == want; });
  };
  for (const auto& e : journal) {
    uint64_t at = e.value("at_ms", uint64_t{0});
    if (at + kShareWindowMs < now) continue;
    std::string ep = e.value("endpoint", ""), rec = e.value("record", ""), label;
    if (rec == id || ep.rfind(id + "/", 0) == 0)
      label = ep.empty() ? rec : ep.substr(id.size() + 1);
    else if (in_region(e))
      label = "region " + e["region"].get<std::string>();
    else
      continue;
    markers.push_back({{"t", int64_t(at) - int64_t(now)},
                       {"action", e.value("action", "")},
                       {"endpoint", label},
                       {"to", e.contains("to") ? e["to"] : Json(nullptr)}});
  }
  return {{"t", t}, {"shares", shares}, {"markers", markers}, {"window_s", kShareWindowMs / 1000}};
}

Json Control::page_status(const std::string& filter) {
  // The snapshot `listed` points into (published on this loop alone, so
  // the one status() reads), kept alive while they are used.
  auto snap = srv_.snapshot();
  std::vector<Listed> listed;
  Json s = status(filter, kPageRecords, &listed);
  if (!s.value("ok", false)) return s;
  s["history"] = store_.history(20);
  auto journal = store_.history(500);
  s["now"] = admin::format_time(admin::now_ms());
  // Share of answers over the last 10-20 s (the baseline moves every 10 s,
  // however many pages poll), per endpoint of each record listed.
  uint64_t now = admin::now_ms();
  bool rebase = now - last_hits_ms_ >= 10000;
  std::vector<uint64_t> count, delta;
  for (size_t ri = 0; ri < listed.size(); ++ri) {
    const auto& [z, r] = listed[ri];
    auto eps = z->endpoints(*r);
    uint64_t total = answers_since(eps, last_hits_, false, count, delta);
    Json& rec = s["records"][ri];
    for (size_t i = 0; i < eps.size(); ++i) {
      rec["endpoints"][i]["answers"] = count[i];
      rec["endpoints"][i]["share"] = total ? double(delta[i]) / double(total) : 0.0;
    }
    rec["chart"] = share_chart(*z, *r, snap->regions, journal, now);
  }
  // Every endpoint's baseline moves, listed or not: a record listed later
  // shows the same 10-20 s.
  if (rebase) {
    uint32_t slots = srv_.states().size();
    if (last_hits_.size() < slots) grow_to(last_hits_, slots - 1);
    for (uint32_t slot = 0; slot < slots; ++slot) last_hits_[slot] = hits(slot);
    last_hits_ms_ = now;
  }
  return s;
}

// Worth an operator's eye: an endpoint down, overridden, weighted by hand,
// ramping, or on a verdict of this node's own; a record held on a lower tier.
bool Control::needs_attention(const zones::StateTable& states, const zones::Zone& z,
                              const zones::SteeredRecord& r) const {
  for (const auto& e : z.endpoints(r)) {
    const auto& s = states.at(e.state);
    if (!zones::endpoint_up(s) || s.override_state.load(std::memory_order_relaxed) != 0 ||
        s.admin_weight.load(std::memory_order_relaxed) >= 0)
      return true;
  }
  if (local_verdicts_.empty() && plans_.empty() && holding_since_.empty()) return false;
  const auto& info = z.info(r);
  if (holding_since_.count(zones::record_key(info.name, r.type))) return true;
  for (const auto& name : info.endpoints) {
    std::string key = zones::endpoint_key(info.name, r.type, name);
    if (local_verdicts_.count(key) || plans_.count("ramp/" + key)) return true;
  }
  return false;
}

Json Control::status(const std::string& filter, size_t most, std::vector<Listed>* listed) {
  auto snap = srv_.snapshot();
  uint64_t now = admin::now_ms();
  Json zones = Json::array(), records = Json::array();
  // A filter names a zone (it and its records) or a record (that alone),
  // with or without the final dot; none: everything.
  std::string want = filter;
  std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!want.empty() && want.back() != '.') want += '.';
  bool zone_filter = false;
  for (const auto& z : snap->zones()) zone_filter |= z->origin_text() == want;
  std::vector<Listed> wanted;
  for (const auto& z : snap->zones()) {
    bool zone_wanted = want.empty() || (zone_filter && z->origin_text() == want);
    if (zone_filter && !zone_wanted) continue;
    Json zone{{"name", z->origin_text()},
              {"serial", z->serial()},
              {"records", z->record_count()},
              {"names", z->node_count()},
              {"file", z->file()}};
    if (Json t = transfer_status(*z); !t.is_null()) {
      zone["serial"] = t["serial"];  // what answers and transfers carry
      zone["transfer"] = std::move(t);
    }
    if (Json s = secondary_status(*z); !s.is_null()) {
      zone["serial"] = s["serial"];
      zone["secondary"] = std::move(s);
    }
    if (zone_wanted) zones.push_back(std::move(zone));
    for (const auto& r : z->steered_records())
      if (zone_wanted || z->info(r).name == want) wanted.push_back({z.get(), &r});
  }
  // Bounded (the status page): the records that need attention first,
  // then the rest, listed in zone order.
  size_t total_records = wanted.size();
  if (wanted.size() > most) {
    std::vector<bool> attention(wanted.size());
    size_t needing = 0;
    for (size_t i = 0; i < wanted.size(); ++i)
      needing += attention[i] = needs_attention(*snap->states, *wanted[i].first, *wanted[i].second);
    size_t first = std::min(needing, most), rest = most - first;
    std::vector<Listed> kept;
    kept.reserve(most);
    for (size_t i = 0; i < wanted.size(); ++i)
      if (size_t& room = attention[i] ? first : rest; room) {
        --room;
        kept.push_back(wanted[i]);
      }
    wanted.swap(kept);
  }
  for (const auto& [z, rp] : wanted) {
    const auto& r = *rp;
    const auto& info = z->info(r);
    auto eps = z->endpoints(r);
    Json endpoints = Json::array();
    for (size_t i = 0; i < eps.size(); ++i) {
      const auto& s = snap->states->at(eps[i].state);
      int16_t aw = s.admin_weight.load(std::memory_order_relaxed);
      auto ov = static_cast<Override>(s.override_state.load(std::memory_order_relaxed));
      Json e{{"name", info.endpoints[i]},
             {"address", z->answer_text(r, eps[i])},
             {"up", zones::endpoint_up(s)},
             {"health", s.health.load() == static_cast<uint8_t>(zones::Health::kUp) ? "up" : "down"},
             {"override", override_name(ov)},
             {"config_weight", eps[i].weight},
             {"weight", zones::effective_weight(s, eps[i])},
             {"admin_weight", aw >= 0 ? Json(aw) : Json(nullptr)},
             {"priority", eps[i].priority}};
      if (eps[i].region != zones::kNoRegion) e["region"] = snap->regions.name(eps[i].region);
      std::string key = zones::endpoint_key(info.name, r.type, info.endpoints[i]);
      // A verdict this node applied on its own, which etcd does not hold yet.
      if (auto lv = local_verdicts_.find(key); lv != local_verdicts_.end()) e["health_local"] = true;
      for (const auto& [vantage, vf] : agg_.views(eps[i].state, now))
        e["vantages"][vantage] = {{"up", vf.first.up},
                                  {"fresh", vf.second},
                                  {"detail", vf.first.detail},
                                  {"rtt_ms", vf.first.rtt_ms},
                                  {"age_s", admin::elapsed_ms(now, vf.first.at_ms) / 1000}};
      if (ov != Override::kAuto)
        if (auto o = store_.override_of(key)) {
          if (o->until_ms) e["override_until"] = admin::format_time(o->until_ms);
          if (!o->reason.empty()) e["override_reason"] = o->reason;
        }
      if (Json ramp = ramp_view(key, now); !ramp.is_null()) e["ramp"] = ramp;
      if (const auto& damping = info.damping_of(i); damping.flips) {
        auto f = flip_times_.find(key);
        e["damping"] = {{"flips", damping.flips},
                        {"window", admin::format_duration(damping.window_ms)},
                        {"hold", admin::format_duration(damping.hold_ms)},
                        {"recent_flips", f == flip_times_.end() ? 0 : f->second.size()}};
      }
      endpoints.push_back(std::move(e));
    }
    Json rec{
        {"name", info.name}, {"type", zones::steered_type_name(r.type)},       {"policy", zones::policy_name(r.policy)},
        {"ttl", r.ttl},      {"ttl_now", zones::answer_ttl(r, *snap->states)}, {"endpoints", std::move(endpoints)}};
    if (info.ttl_unsteady) rec["ttl_unsteady"] = info.ttl_unsteady;
    if (r.policy == zones::Policy::kFailover) rec.update(failback_status(*z, r, now));
    records.push_back(std::move(rec));
  }
  if (listed) *listed = std::move(wanted);
  if (!want.empty() && zones.empty() && records.empty())
    return admin::error_reply("status: no zone or steered record named '" + filter + "'", "not_found");
  Json out{{"ok", true},
           {"version", VANE_VERSION},
           {"pid", getpid()},
           {"uptime_s", std::lround(srv_.uptime_s())},
           {"workers", srv_.threads()},
           {"generation", snap->generation},
           {"listen", srv_.listen()},
           {"config", srv_.config_path()},
           {"zones", std::move(zones)},
           {"records", std::move(records)},
           {"records_total", total_records},
           {"drills", drills_view(now)},
           {"orphans", orphans()}};
  if (cluster_) out["cluster"] = cluster_->status();
  if (Json silent = silent_primaries(); !silent.empty()) out["primaries_not_answering"] = std::move(silent);
  if (const auto& d = snap->dnstap) {
    auto workers = srv_.workers();
    uint64_t queued = total(workers, &QueryCounters::dnstap_sent), dropped = total(workers, &QueryCounters::dnstap_dropped);
    out["dnstap"] = Json{{"sink", d->spec().sink()},
                         {"identity", d->spec().identity},
                         {"sample", d->spec().sample},
                         {"queries", d->spec().log_queries},
                         {"responses", d->spec().log_responses},
                         {"state", dropped && d->dropped_recently() ? "dropping (the reader is slow, gone or not reading)"
                                                                     : "writing"},
                         {"queued", queued},
                         {"dropped", dropped}};
  }
  if (const auto& g = snap->regions.geo) {
    out["geo"] = Json{{"database", g->db->path()},
                      {"type", g->db->type()},
                      {"build_epoch", g->db->build_epoch()},
                      {"built", admin::format_time(g->db->build_epoch() * 1000)},
                      {"age_s", int64_t(now / 1000) - int64_t(g->db->build_epoch())},
                      {"ip_version", g->db->ip_version()},
                      {"nodes", g->db->node_count()},
                      {"ranges", {{"geo", g->geo.size()}, {"proximity", g->proximity.size()}}},
                      {"table_bytes", g->geo.bytes() + g->proximity.bytes()},
                      {"build_ms", std::lround(g->build_ms)},
                      {"errors", srv_.geo_errors()}};
    if (!srv_.geo_last_error().empty()) out["geo"]["last_error"] = srv_.geo_last_error();
  }
  return out;
}

}  // namespace vane::server
