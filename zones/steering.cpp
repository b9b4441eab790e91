#include "steering.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dns/wire.h"

namespace vane::zones {

const char* override_name(Override o) {
  switch (o) {
    case Override::kUp:
      return "up";
    case Override::kDown:
      return "down";
    case Override::kDrain:
      return "drain";
    case Override::kHeld:
      return "held";
    case Override::kDamped:
      return "damped";
    case Override::kAuto:
      break;
  }
  return "auto";
}

Override override_from(const std::string& s) {
  return s == "up"       ? Override::kUp
         : s == "down"   ? Override::kDown
         : s == "drain"  ? Override::kDrain
         : s == "held"   ? Override::kHeld
         : s == "damped" ? Override::kDamped
                         : Override::kAuto;
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::kWeighted:
      return "weighted";
    case Policy::kFailover:
      return "failover";
    case Policy::kLatency:
      return "latency";
    case Policy::kMultivalue:
      return "multivalue";
    case Policy::kGeo:
      return "geo";
    case Policy::kProximity:
      return "proximity";
  }
  return "?";
}

const char* steered_type_name(uint16_t type) {
  return type == dns::kTypeA ? "A" : type == dns::kTypeAAAA ? "AAAA" : "CNAME";
}

std::string record_key(const std::string& record, uint16_t type) { return record + "/" + steered_type_name(type); }

std::string endpoint_key(const std::string& record, uint16_t type, const std::string& endpoint) {
  return record_key(record, type) + "/" + endpoint;
}

// ---------------------------------------------------------------------------
// StateTable

StateTable::StateTable()
    : chunks_(new std::atomic<EndpointState*>[kChunks]), rtt_chunks_(new std::atomic<std::atomic<uint32_t>*>[kChunks]) {
  for (uint32_t i = 0; i < kChunks; ++i) {
    chunks_[i].store(nullptr, std::memory_order_relaxed);
    rtt_chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
}

StateTable::~StateTable() {
  for (uint32_t i = 0; i < kChunks; ++i) {
    delete[] chunks_[i].load(std::memory_order_relaxed);
    delete[] rtt_chunks_[i].load(std::memory_order_relaxed);
  }
}

void StateTable::set_rtt_us(uint32_t slot, uint8_t vantage, uint32_t us) {
  if (slot >= kChunk * kChunks || vantage >= kMaxRttVantages) return;
  std::lock_guard lock(mu_);
  std::atomic<uint32_t>* c = rtt_chunks_[slot / kChunk].load(std::memory_order_relaxed);
  if (!c) {
    c = new std::atomic<uint32_t>[kChunk * kMaxRttVantages];
    for (uint32_t i = 0; i < kChunk * kMaxRttVantages; ++i) c[i].store(0, std::memory_order_relaxed);
    rtt_chunks_[slot / kChunk].store(c, std::memory_order_release);
  }
  c[(slot % kChunk) * kMaxRttVantages + vantage].store(us, std::memory_order_relaxed);
}

size_t StateTable::position(std::string_view key) const {
  size_t mask = index_.size() - 1;
  size_t i = std::hash<std::string_view>{}(key) & mask;
  while (index_[i] && key_of(index_[i] - 1) != key) i = (i + 1) & mask;
  return i;
}

uint32_t StateTable::slot(const std::string& key) {
  std::lock_guard lock(mu_);
  if (index_.empty()) index_.assign(1024, 0);
  size_t pos = position(key);
  if (index_[pos]) return index_[pos] - 1;
  if (next_ == kChunk * kChunks) return UINT32_MAX;
  uint32_t id = next_++;
  if (!chunks_[id / kChunk].load(std::memory_order_relaxed))
    chunks_[id / kChunk].store(new EndpointState[kChunk], std::memory_order_release);
  key_bytes_ += key;
  key_off_.push_back(static_cast<uint32_t>(key_bytes_.size()));
  index_[pos] = id + 1;
  if (size_t(next_) * 2 > index_.size()) {  // more than half full: twice the size
    index_.assign(index_.size() * 2, 0);
    for (uint32_t s = 0; s < next_; ++s) index_[position(key_of(s))] = s + 1;
  }
  return id;
}

std::atomic<uint32_t>* StateTable::zone_serial(const std::string& origin, uint32_t initial) {
  std::lock_guard lock(mu_);
  auto& p = serials_[origin];
  if (!p) p = std::make_unique<std::atomic<uint32_t>>(initial);
  return p.get();
}

std::atomic<bool>* StateTable::zone_expired(const std::string& origin, bool initial) {
  std::lock_guard lock(mu_);
  auto& p = expired_[origin];
  if (!p) p = std::make_unique<std::atomic<bool>>(initial);
  return p.get();
}

uint8_t StateTable::vantage_slot(const std::string& vantage) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < vantages_.size(); ++i)
    if (vantages_[i] == vantage) return static_cast<uint8_t>(i);
  if (vantages_.size() == kMaxRttVantages) return kNoVantage;
  vantages_.push_back(vantage);
  return static_cast<uint8_t>(vantages_.size() - 1);
}

uint8_t StateTable::find_vantage(const std::string& vantage) const {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < vantages_.size(); ++i)
    if (vantages_[i] == vantage) return static_cast<uint8_t>(i);
  return kNoVantage;
}

uint32_t StateTable::find(const std::string& key) const {
  std::lock_guard lock(mu_);
  if (index_.empty()) return UINT32_MAX;
  uint32_t v = index_[position(key)];
  return v ? v - 1 : UINT32_MAX;
}

std::string StateTable::key(uint32_t slot) const {
  std::lock_guard lock(mu_);
  return slot < next_ ? std::string(key_of(slot)) : std::string();
}

void StateEdit::weight(const std::string& endpoint_key, uint32_t slot, int16_t weight) {
  stage(endpoint_key, slot, Field::kWeight, weight);
}

void StateEdit::override_state(const std::string& endpoint_key, uint32_t slot, Override o) {
  stage(endpoint_key, slot, Field::kOverride, int16_t(o));
}

void StateEdit::health(const std::string& endpoint_key, uint32_t slot, Health h) {
  stage(endpoint_key, slot, Field::kHealth, int16_t(h));
}

void StateEdit::stage(const std::string& endpoint_key, uint32_t slot, Field field, int16_t value) {
  stores_.push_back({slot, field, value});
  size_t cut = endpoint_key.rfind('/');
  uint32_t record = cut == std::string::npos ? UINT32_MAX : states_.find(endpoint_key.substr(0, cut));
  if (record != UINT32_MAX && touched_.insert(record).second) records_.push_back(record);
}

void StateEdit::publish() {
  for (uint32_t record : records_) states_.at(record).edits.fetch_add(1, std::memory_order_relaxed);
  // Orders the opening before the stores: a pick that saw one of them sees
  // its record open, or changed, when it looks again.
  std::atomic_thread_fence(std::memory_order_release);
  for (const Store& s : stores_) {
    EndpointState& e = states_.at(s.slot);
    switch (s.field) {
      case Field::kWeight:
        e.admin_weight.store(s.value, std::memory_order_relaxed);
        break;
      case Field::kOverride:
        e.override_state.store(uint8_t(s.value), std::memory_order_relaxed);
        break;
      case Field::kHealth:
        e.health.store(uint8_t(s.value), std::memory_order_relaxed);
        break;
    }
  }
  for (uint32_t record : records_) states_.at(record).edits.fetch_add(kEditsOpen, std::memory_order_release);
  stores_.clear();
  records_.clear();
  touched_.clear();
}

EndpointHits::EndpointHits() : chunks_(new std::atomic<std::atomic<uint64_t>*>[StateTable::kChunks]) {
  for (uint32_t i = 0; i < StateTable::kChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
}

EndpointHits::~EndpointHits() {
  for (uint32_t i = 0; i < StateTable::kChunks; ++i) delete[] chunks_[i].load(std::memory_order_relaxed);
}

void EndpointHits::ensure(uint32_t n) {
  for (uint32_t c = 0; c * StateTable::kChunk < n && c < StateTable::kChunks; ++c)
    if (!chunks_[c].load(std::memory_order_relaxed)) {
      auto* chunk = new std::atomic<uint64_t>[StateTable::kChunk];
      for (uint32_t i = 0; i < StateTable::kChunk; ++i) chunk[i].store(0, std::memory_order_relaxed);
      chunks_[c].store(chunk, std::memory_order_release);
    }
}

// ---------------------------------------------------------------------------
// RegionMap

uint16_t RegionMap::intern(const std::string& region) {
  uint16_t id = find(region);
  if (id != kNoRegion) return id;
  names_.push_back(region);
  return static_cast<uint16_t>(names_.size() - 1);
}

uint16_t RegionMap::find(const std::string& region) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == region) return static_cast<uint16_t>(i);
  return kNoRegion;
}

void RegionMap::add_rule(uint8_t family, uint8_t prefix, const uint8_t* addr, const std::vector<uint16_t>& order,
                         uint8_t vantage) {
  Rule r{family, prefix, {}, static_cast<uint32_t>(orders_.size()), static_cast<uint16_t>(order.size()), vantage};
  std::memcpy(r.addr, addr, family == 4 ? 4 : 16);
  rules_.push_back(r);
  orders_.insert(orders_.end(), order.begin(), order.end());
}

void RegionMap::finish() {
  std::stable_sort(rules_.begin(), rules_.end(), [](const Rule& a, const Rule& b) { return a.prefix > b.prefix; });
}

namespace {

// Number of leading bits `a` and `b` share, up to `limit`.
uint8_t common_bits(const uint8_t* a, const uint8_t* b, uint8_t limit) {
  uint8_t n = 0;
  for (size_t i = 0; n < limit; ++i) {
    uint8_t x = a[i] ^ b[i];
    if (x == 0) {
      n = static_cast<uint8_t>(n + 8);
      continue;
    }
    n = static_cast<uint8_t>(n + __builtin_clz(static_cast<unsigned>(x)) - 24);
    break;
  }
  return std::min(n, limit);
}

}  // namespace

const RegionMap::Rule* RegionMap::match(uint8_t family, const uint8_t* addr) const {
  for (const Rule& r : rules_)
    if (r.family == family && common_bits(r.addr, addr, r.prefix) >= r.prefix) return &r;
  return nullptr;
}

uint8_t RegionMap::scope(const Rule& matched, const uint8_t* addr, uint8_t limit) const {
  uint8_t len = matched.prefix;
  for (const Rule& r : rules_) {
    if (r.family != matched.family || r.prefix <= matched.prefix) continue;
    if (common_bits(r.addr, matched.addr, matched.prefix) < matched.prefix) continue;  // not inside
    // The client is outside r (else r would have matched): the scope must
    // be long enough to leave r's network out.
    len = std::max<uint8_t>(len, static_cast<uint8_t>(common_bits(addr, r.addr, r.prefix) + 1));
  }
  return std::min(len, limit);
}

uint8_t RegionMap::scope_within(uint8_t family, const uint8_t* addr, uint8_t prefix, uint8_t limit) const {
  uint8_t len = prefix;
  for (const Rule& r : rules_) {
    if (r.family != family || r.prefix <= prefix) continue;
    if (common_bits(r.addr, addr, prefix) < prefix) continue;  // not inside
    len = std::max<uint8_t>(len, static_cast<uint8_t>(common_bits(addr, r.addr, r.prefix) + 1));
  }
  return std::min(len, limit);
}

std::span<const uint16_t> RegionMap::geo_order(bool proximity, uint8_t family, const uint8_t* addr, uint8_t limit,
                                               uint8_t& scope) const {
  scope = 0;
  if (!family) return {};
  // An IPv4 address written as IPv6 (::ffff:a.b.c.d, ::a.b.c.d) is that
  // IPv4 client, for network rules and the database alike (as gdnsd).
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == 6 && (std::memcmp(addr, kMapped, 12) == 0 || std::memcmp(addr, kMapped, 10) == 0) &&
      (addr[10] == addr[11]) && (addr[12] | addr[13] | addr[14] | addr[15]) && (limit == 0 || limit >= 96)) {
    uint8_t s4 = 0;
    auto order = geo_order(proximity, 4, addr + 12, limit ? uint8_t(limit - 96) : 0, s4);
    if (limit) scope = s4 ? uint8_t(96 + s4) : 96;
    return order;
  }
  const Rule* rule = match(family, addr);
  if (rule && rule->prefix > 0) {
    if (limit) scope = this->scope(*rule, addr, limit);
    return order(*rule);
  }
  if (geo) {
    GeoTable::Hit hit = (proximity ? geo->proximity : geo->geo).find(family, addr);
    if (limit) scope = scope_within(family, addr, hit.prefix, limit);
    if (hit.result < geo->orders.size()) return geo->orders[hit.result];
    return rule ? order(*rule) : std::span<const uint16_t>{};
  }
  if (rule && limit) scope = this->scope(*rule, addr, limit);
  return rule ? order(*rule) : std::span<const uint16_t>{};
}

std::span<const uint16_t> RegionMap::default_order() const {
  if (geo)
    for (const auto& r : geo->plan.rules)
      if (r.continent.empty()) return r.order;
  static const uint8_t kAnywhere[16] = {};
  const Rule* rule = match(4, kAnywhere);
  return rule && rule->prefix == 0 ? order(*rule) : std::span<const uint16_t>{};
}

// ---------------------------------------------------------------------------
// Selection

bool endpoint_up(const EndpointState& s) {
  switch (static_cast<Override>(s.override_state.load(std::memory_order_relaxed))) {
    case Override::kUp:
      return true;
    case Override::kDown:
    case Override::kDrain:
    case Override::kDamped:
      return false;
    case Override::kAuto:
    case Override::kHeld:
      break;
  }
  return s.health.load(std::memory_order_relaxed) == static_cast<uint8_t>(Health::kUp);
}

uint8_t effective_weight(const EndpointState& s, const SteeredEndpoint& ep) {
  int16_t w = s.admin_weight.load(std::memory_order_relaxed);
  return w >= 0 ? static_cast<uint8_t>(w) : ep.weight;
}

namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Which candidate names to print in a trace.
std::string names(const uint16_t* cand, size_t n, const SteeredInfo* info) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (i ? " " : "") + (info ? info->endpoints[cand[i]] : std::to_string(cand[i]));
  return s.empty() ? "(none)" : s;
}

// vanectl explain: what the database says of the client and why.
void explain_geo(const RegionMap& regions, bool proximity, const Client& client, std::span<const uint16_t> order,
                 uint8_t scope, Trace& trace) {
  auto list = [&](std::span<const uint16_t> o) {
    std::string s;
    for (uint16_t r : o) s += (s.empty() ? "" : ", ") + regions.name(r);
    return "[" + s + "]";
  };
  if (!client.family) {
    trace.steps.push_back("no client address: no geo rule applies");
    return;
  }
  const RegionMap::Rule* rule = regions.match(client.family, client.addr);
  if (rule && rule->prefix > 0) {
    if (!client.ecs) regions.geo_order(proximity, client.family, client.addr, client.prefix, scope);
    trace.steps.push_back("a regions: network rule matches the client (it wins over the database): order " +
                          list(order) + ", ECS scope /" + std::to_string(scope));
    return;
  }
  if (!regions.geo) {
    trace.steps.push_back("no geo database: the default rule's order " + list(order));
    return;
  }
  std::string network;
  GeoLocation loc;
  bool found = regions.geo->db->lookup(client.family, client.addr, network, loc);
  std::string where = "database network " + network + ": ";
  if (!found) {
    where += "no location";
  } else {
    where += loc.continent + "/" + loc.country;
    for (const auto& sd : loc.subdivisions) where += "/" + sd;
    if (loc.has_coords) {
      char c[64];
      snprintf(c, sizeof c, " at %.4f, %.4f", loc.lat, loc.lon);
      where += c;
    }
  }
  trace.steps.push_back(where);
  const GeoPlan& plan = regions.geo->plan;
  if (proximity && found && loc.has_coords && !plan.coords.empty()) {
    std::string d;
    for (const auto& c : plan.coords) {
      char km[96];
      snprintf(km, sizeof km, "%s%s %.0f km%s", d.empty() ? "" : ", ", regions.name(c.region).c_str(),
               distance_km(loc.lat, loc.lon, c.lat, c.lon), c.bias_km ? " (bias applied)" : "");
      d += km;
    }
    trace.steps.push_back("distances: " + d + " -> order " + list(order));
  } else {
    int r = match_geo_rule(plan, found ? &loc : nullptr);
    trace.steps.push_back(r < 0 ? std::string("no geo rule matches") + (rule ? ": the /0 rule's order " + list(order) : "")
                                : "rule geo: " + plan.rules[size_t(r)].text + " (line " +
                                      std::to_string(plan.rules[size_t(r)].line) + ") -> order " + list(order));
  }
  // The scope an ECS query from this client would carry, asked or not.
  if (!client.ecs) regions.geo_order(proximity, client.family, client.addr, client.prefix, scope);
  trace.steps.push_back("ECS scope /" + std::to_string(scope) +
                        ": the largest network around the client that gets this same order");
}

}  // namespace

namespace {

void select_once(const SteeredRecord& rec, std::span<const SteeredEndpoint> eps, const StateTable& states,
                 const RegionMap& regions, const Client& client, uint64_t& rng, Pick& out, Trace* trace,
                 const SteeredInfo* info) {
  uint16_t cand[kMaxEndpoints];
  size_t n = 0;
  out.count = 0;
  out.scope = 0;

  // up: drop endpoints that are down or drained.
  for (uint16_t i = 0; i < rec.ep_count; ++i)
    if (endpoint_up(states.at(eps[i].state))) cand[n++] = i;
  if (trace) trace->steps.push_back("up: " + names(cand, n, info));
  if (n == 0) {
    if (rec.fail_closed) {
      if (trace) trace->steps.push_back("every endpoint is down and fail_closed is set: no records (NODATA)");
      return;
    }
    for (uint16_t i = 0; i < rec.ep_count; ++i) cand[n++] = i;
    if (trace) trace->steps.push_back("every endpoint is down: failing open, all are candidates");
  }

  // Narrows the candidates to the first region of `order` that has one.
  auto first_region = [&](std::span<const uint16_t> order) {
    for (uint16_t region : order) {
      size_t k = 0;
      for (size_t i = 0; i < n; ++i)
        if (eps[cand[i]].region == region) cand[k++] = cand[i];
      if (k == 0) continue;
      n = k;
      if (trace)
        trace->steps.push_back("nearest region with a candidate: " + regions.name(region) + ": " + names(cand, n, info));
      return;
    }
    if (trace) trace->steps.push_back("no candidate in the client's regions: all candidates stay");
  };

  switch (rec.policy) {
    case Policy::kFailover: {
      // Endpoints held back by the record's failback policy count only when
      // no other candidate is left.
      uint32_t tier = UINT32_MAX, held = UINT32_MAX;
      for (size_t i = 0; i < n; ++i) {
        auto ov = static_cast<Override>(states.at(eps[cand[i]].state).override_state.load(std::memory_order_relaxed));
        uint32_t& t = ov == Override::kHeld ? held : tier;
        t = std::min(t, eps[cand[i]].priority);
      }
      if (trace && held < tier && tier != UINT32_MAX)
        trace->steps.push_back("tier " + std::to_string(held) +
                               " is held back by the failback policy (vanectl failback releases it)");
      if (tier == UINT32_MAX) tier = held;
      size_t k = 0;
      for (size_t i = 0; i < n; ++i)
        if (eps[cand[i]].priority == tier) cand[k++] = cand[i];
      n = k;
      if (trace) trace->steps.push_back("lowest priority tier " + std::to_string(tier) + ": " + names(cand, n, info));
      break;
    }
    case Policy::kLatency: {
      const RegionMap::Rule* rule = client.family ? regions.match(client.family, client.addr) : nullptr;
      if (!rule) {
        if (trace) trace->steps.push_back("no regions: rule matches the client: all candidates stay");
        break;
      }
      if (client.ecs) out.scope = regions.scope(*rule, client.addr, client.prefix);
      if (rec.measured && rule->vantage != kNoVantage) {
        // Nearest by measured RTT from the vantage that speaks for this
        // client network; endpoints it has no RTT for come after.
        uint32_t best = UINT32_MAX;
        for (size_t i = 0; i < n; ++i) {
          uint32_t rtt = states.rtt_us(eps[cand[i]].state, rule->vantage);
          if (rtt && rtt < best) best = rtt;
        }
        if (best != UINT32_MAX) {
          size_t k = 0;
          for (size_t i = 0; i < n; ++i)
            if (states.rtt_us(eps[cand[i]].state, rule->vantage) == best)
              cand[k++] = cand[i];
          n = k;
          if (trace)
            trace->steps.push_back("lowest measured RTT (" + std::to_string(best / 1000.0).substr(0, 6) +
                                   " ms) from the client network's vantage: " + names(cand, n, info));
          break;
        }
        if (trace) trace->steps.push_back("no RTT measured yet from the client network's vantage: region order");
      }
      first_region(regions.order(*rule));
      break;
    }
    case Policy::kGeo:
    case Policy::kProximity: {
      uint8_t scope = 0;
      auto order = regions.geo_order(rec.policy == Policy::kProximity, client.family, client.addr,
                                     client.ecs ? client.prefix : 0, scope);
      out.scope = scope;
      if (trace) explain_geo(regions, rec.policy == Policy::kProximity, client, order, scope, *trace);
      if (order.empty()) {
        if (trace) trace->steps.push_back("no rule for the client: all candidates stay");
        break;
      }
      first_region(order);
      break;
    }
    case Policy::kMultivalue: {
      size_t take = std::min<size_t>(n, rec.max_answers);
      for (size_t i = 0; i < take; ++i) {  // partial Fisher-Yates
        size_t j = i + next_random(rng) % (n - i);
        std::swap(cand[i], cand[j]);
      }
      for (size_t i = 0; i < take; ++i) out.index[out.count++] = cand[i];
      if (trace)
        trace->steps.push_back("shuffle, first " + std::to_string(rec.max_answers) + ": " +
                               names(out.index, out.count, info));
      return;
    }
    case Policy::kWeighted:
      break;
  }
  if (rec.pick_all) {  // pick: all (gdnsd's geoip + multifo): the region's up endpoints
    for (size_t i = 0; i < n && out.count < rec.max_answers; ++i) out.index[out.count++] = cand[i];
    if (trace) trace->steps.push_back("pick: all, up to " + std::to_string(rec.max_answers) + ": " + names(out.index, out.count, info));
    return;
  }

  // weighted(1): weight 0 gets nothing while any positive weight exists;
  // all zero means equal (Route 53).
  uint8_t w[kMaxEndpoints];
  size_t positive = 0;
  for (size_t i = 0; i < n; ++i) {
    w[i] = effective_weight(states.at(eps[cand[i]].state), eps[cand[i]]);
    positive += w[i] > 0;
  }
  if (positive == 0)
    for (size_t i = 0; i < n; ++i) w[i] = 1;
  size_t pick = 0;
  if (rec.sticky && client.family) {
    // Rendezvous hashing on the client's /24 (/56): highest w / -ln(u) wins,
    // so a weight change moves only the share of clients it must.
    uint8_t bits = client.family == 4 ? 24 : 56;
    uint64_t h = 0;
    for (size_t i = 0; i < bits / 8; ++i) h = mix(h ^ client.addr[i] ^ (uint64_t(i) << 8));
    double best = -1;
    for (size_t i = 0; i < n; ++i) {
      if (w[i] == 0) continue;
      uint64_t x = mix(h ^ eps[cand[i]].key);
      double u = (double(x >> 11) + 0.5) * 0x1p-53;  // (0, 1)
      double score = -double(w[i]) / std::log(u);
      if (score > best) best = score, pick = i;
    }
    if (client.ecs) out.scope = std::min(bits, client.prefix);
  } else {
    uint32_t total = 0;
    for (size_t i = 0; i < n; ++i) total += w[i];
    uint32_t r = static_cast<uint32_t>(next_random(rng) % total);
    for (pick = 0; pick + 1 < n && r >= w[pick]; ++pick) r -= w[pick];
  }
  out.index[out.count++] = cand[pick];
  if (trace) {
    std::string ws;
    for (size_t i = 0; i < n; ++i)
      ws += (i ? " " : "") + (info ? info->endpoints[cand[i]] : std::to_string(cand[i])) + "=" + std::to_string(w[i]);
    trace->steps.push_back(std::string(rec.sticky ? "sticky weighted pick (client /24 or /56)" : "weighted pick") +
                           " among " + ws + (positive == 0 ? " (all zero: equal)" : "") + ": " +
                           (info ? info->endpoints[cand[pick]] : std::to_string(cand[pick])));
  }
}

}  // namespace

void select(const SteeredRecord& rec, std::span<const SteeredEndpoint> eps, const StateTable& states,
            const RegionMap& regions, const Client& client, uint64_t& rng, Pick& out, Trace* trace,
            const SteeredInfo* info) {
  // A seqlock read: picked while no edit stored into the record, or picked
  // again. An edit stores for nanoseconds; one whose thread stalls mid-way
  // is waited for up to ~1 ms, then picked from as it is (counted).
  constexpr uint32_t kTries = 1u << 20;
  const std::atomic<uint32_t>& edits = states.at(rec.state).edits;
  size_t steps = trace ? trace->steps.size() : 0;
  for (uint32_t tries = 1;; ++tries) {
    uint32_t before = edits.load(std::memory_order_acquire);
    if ((before & kEditsOpen) && tries < kTries) continue;
    select_once(rec, eps, states, regions, client, rng, out, trace, info);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (edits.load(std::memory_order_relaxed) == before && !(before & kEditsOpen)) return;
    if (tries >= kTries) return states.count_torn_pick();
    if (trace) trace->steps.resize(steps);
  }
}

void transfer_set(const SteeredRecord& rec, std::span<const SteeredEndpoint> eps, const StateTable& states,
                  const RegionMap& regions, Pick& out) {
  out.count = 0;
  out.scope = 0;
  uint16_t cand[kMaxEndpoints];
  size_t n = 0;
  for (uint16_t i = 0; i < rec.ep_count; ++i)
    if (endpoint_up(states.at(eps[i].state))) cand[n++] = i;
  if (n == 0) {
    if (rec.fail_closed) return;
    for (uint16_t i = 0; i < rec.ep_count; ++i) cand[n++] = i;
  }
  auto keep = [&](auto pred) {
    size_t k = 0;
    for (size_t i = 0; i < n; ++i)
      if (pred(eps[cand[i]])) cand[k++] = cand[i];
    if (k) n = k;
  };
  switch (rec.policy) {
    case Policy::kFailover: {  // the tier answers would come from (held tiers only when nothing else is up)
      uint32_t tier = UINT32_MAX, held = UINT32_MAX;
      for (size_t i = 0; i < n; ++i) {
        auto ov = static_cast<Override>(states.at(eps[cand[i]].state).override_state.load(std::memory_order_relaxed));
        uint32_t& t = ov == Override::kHeld ? held : tier;
        t = std::min(t, eps[cand[i]].priority);
      }
      if (tier == UINT32_MAX) tier = held;
      keep([&](const SteeredEndpoint& ep) { return ep.priority == tier; });
      break;
    }
    case Policy::kLatency:
    case Policy::kGeo:
    case Policy::kProximity: {
      // No default order: every candidate stays.
      for (uint16_t region : regions.default_order()) {
        bool any = false;
        for (size_t i = 0; i < n && !any; ++i) any = eps[cand[i]].region == region;
        if (!any) continue;
        keep([&](const SteeredEndpoint& ep) { return ep.region == region; });
        break;
      }
      break;
    }
    case Policy::kMultivalue:
      for (size_t i = 0; i < n && out.count < rec.max_answers; ++i) out.index[out.count++] = cand[i];
      return;
    case Policy::kWeighted:
      break;
  }
  bool positive = false;
  for (size_t i = 0; i < n && !positive; ++i) positive = effective_weight(states.at(eps[cand[i]].state), eps[cand[i]]);
  for (size_t i = 0; i < n; ++i)
    if (!positive || effective_weight(states.at(eps[cand[i]].state), eps[cand[i]]))
      out.index[out.count++] = cand[i];
}

}  // namespace vane::zones
