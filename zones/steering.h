// Steering: records whose RRset is computed per query from endpoints, their
// live state and the client. A policy is a chain of filters over the
// endpoint list (DESIGN.md "Steering records"):
//
//   weighted    up -> weighted(1)
//   failover    up -> lowest healthy priority tier -> weighted(1)
//   latency     up -> nearest region for the client -> weighted(1)
//   geo         up -> first region of the client's geo rule -> weighted(1)
//   proximity   up -> nearest region by distance -> weighted(1)
//   multivalue  up -> shuffle -> first N
//
// select() runs on the DNS hot path: fixed-size scratch, no allocation, no
// locks; endpoint state is read from atomics. The same code, given a Trace,
// explains itself (vanectl explain).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "geo.h"

namespace vane::zones {

enum class Policy : uint8_t { kWeighted, kFailover, kLatency, kMultivalue, kGeo, kProximity };
const char* policy_name(Policy p);

// "A", "AAAA" or "CNAME": the types a steered record can have.
const char* steered_type_name(uint16_t type);
// What a steered record is named by in status, plans and per-record state:
// "www.example.com./A".
std::string record_key(const std::string& record, uint16_t type);
// What an endpoint's state, stored state, journal entries and agent reports
// are keyed by: "www.example.com./A/use1".
std::string endpoint_key(const std::string& record, uint16_t type, const std::string& endpoint);

// Admin override; kAuto follows the health verdict. Two are set by vaned
// itself (DESIGN.md "Failback and damping"): kHeld keeps a failover
// endpoint out of answers while a lower tier is healthy (it follows its
// health otherwise), kDamped holds a flapping endpoint down for a while.
enum class Override : uint8_t { kAuto = 0, kUp, kDown, kDrain, kHeld, kDamped };
const char* override_name(Override o);            // "up", "down", "drain", "held", "damped", "auto"
Override override_from(const std::string& name);  // the inverse; anything else is kAuto

enum class Health : uint8_t { kUp = 0, kDown };

inline constexpr size_t kMaxEndpoints = 64;  // per steered record (config limit)
inline constexpr uint16_t kNoRegion = UINT16_MAX;
inline constexpr uint8_t kMaxRttVantages = 8;  // vantages whose RTTs latency_source: measured can use
inline constexpr uint8_t kNoVantage = UINT8_MAX;

// Live state of one endpoint: written by the health checker and the admin
// socket, read by every DNS worker with relaxed loads. A change to several
// fields or endpoints of a record at once goes through a StateEdit.
struct EndpointState {
  std::atomic<uint8_t> health{static_cast<uint8_t>(Health::kUp)};
  std::atomic<uint8_t> override_state{static_cast<uint8_t>(Override::kAuto)};
  std::atomic<int16_t> admin_weight{-1};  // 0..255, or -1: the config's weight
  // (Measured RTTs: StateTable::rtt_us, apart — few endpoints have them.)
  // In a record's own slot: a lower TTL for its answers (drills, ttl_unsteady)
  // plus one; 0 = none (a drill's countdown goes down to TTL 0).
  std::atomic<uint32_t> ttl_cap{0};
  // In a record's own slot: the changes of several of its endpoints made
  // (<< 8) and those open now (low 8 bits), so that select() never answers
  // from half of one (StateEdit).
  std::atomic<uint32_t> edits{0};
};
inline constexpr uint32_t kEditsOpen = 0xff;

// Every endpoint's state, at a slot that stays the same for the same key
// ("www.example.com./A/use1") across reloads, so state outlives snapshots.
// Slots never move: chunks are allocated once and never freed.
class StateTable {
 public:
  static constexpr uint32_t kChunk = 1024, kChunks = 1024;  // up to 1M endpoints
  StateTable();
  ~StateTable();
  StateTable(const StateTable&) = delete;
  StateTable& operator=(const StateTable&) = delete;

  // Slot for `key`, created when new. Control plane only (locks); returns
  // UINT32_MAX when the table is full.
  uint32_t slot(const std::string& key);
  // Existing slot or UINT32_MAX.
  uint32_t find(const std::string& key) const;
  // The key of an existing slot (empty for one that is not).
  std::string key(uint32_t slot) const;
  // A small stable number for a vantage whose RTTs steering may read
  // (control plane); kNoVantage when all kMaxRttVantages are taken.
  uint8_t vantage_slot(const std::string& vantage);
  uint8_t find_vantage(const std::string& vantage) const;

  uint32_t size() const {
    std::lock_guard lock(mu_);
    return next_;
  }
  // The SOA serial answers carry for a zone that is transferred: it rises
  // with the state that transfers carry (control plane writes, DNS reads).
  // Stable for the process's life, like slots; `initial` when new.
  std::atomic<uint32_t>* zone_serial(const std::string& origin, uint32_t initial);
  // A secondary zone with no current copy (none yet, or past its SOA
  // expire): answered SERVFAIL. Stable like zone_serial.
  std::atomic<bool>* zone_expired(const std::string& origin, bool initial);
  EndpointState& at(uint32_t slot) const {
    return chunks_[slot / kChunk].load(std::memory_order_acquire)[slot % kChunk];
  }
  // The median probe RTT to an endpoint from a vantage slot, in µs; 0:
  // unknown. Kept apart from EndpointState, in chunks allocated on the first
  // RTT stored in them: RTTs are kept only from vantages that a regions:
  // rule names (latency_source: measured), and 32 bytes for every endpoint
  // of a GSLB with tens of thousands was most of the table.
  uint32_t rtt_us(uint32_t slot, uint8_t vantage) const {
    const std::atomic<uint32_t>* c = rtt_chunks_[slot / kChunk].load(std::memory_order_acquire);
    return c ? c[(slot % kChunk) * kMaxRttVantages + vantage].load(std::memory_order_relaxed) : 0;
  }
  // Control plane.
  void set_rtt_us(uint32_t slot, uint8_t vantage, uint32_t us);
  // Picks made from a record while a StateEdit was storing into it, which
  // gave up waiting for it (its thread stalled mid-way): maybe from half of
  // a change. Counted by select(), off its usual path.
  uint64_t torn_picks() const { return torn_picks_.load(std::memory_order_relaxed); }
  void count_torn_pick() const { torn_picks_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // Where `key`'s slot number is, or would go, in index_ (under mu_).
  size_t position(std::string_view key) const;
  std::string_view key_of(uint32_t slot) const {
    return std::string_view(key_bytes_).substr(key_off_[slot], key_off_[slot + 1] - key_off_[slot]);
  }

  mutable std::mutex mu_;
  // Slots by key: every key once, one after another in key_bytes_ (slot i's
  // from key_off_[i] to key_off_[i + 1]), found through index_, an open-
  // addressing table of slot + 1 (0: empty), a power of two at most half
  // full. About 35 bytes a slot, where a hash map of strings took 100.
  std::string key_bytes_;
  std::vector<uint32_t> key_off_{0};
  std::vector<uint32_t> index_;
  std::unordered_map<std::string, std::unique_ptr<std::atomic<uint32_t>>> serials_;
  std::unordered_map<std::string, std::unique_ptr<std::atomic<bool>>> expired_;
  std::vector<std::string> vantages_;
  std::unique_ptr<std::atomic<EndpointState*>[]> chunks_;
  std::unique_ptr<std::atomic<std::atomic<uint32_t>*>[]> rtt_chunks_;
  uint32_t next_ = 0;
  mutable std::atomic<uint64_t> torn_picks_{0};
};

// Changes to several endpoints of records, which answers see whole or not
// at all: halfway through a 255/0 flip, all-zero weights would be answered
// as equal, from an endpoint at weight 0 before and after. Stores are
// staged, then made together (publish(), or the end of the edit) while
// each record they touch is marked open; select() picks again when that
// overlapped its pick. Reads see a staged store only once it is made.
// Control plane; edits may nest.
class StateEdit {
 public:
  explicit StateEdit(const StateTable& states) : states_(states) {}
  ~StateEdit() { publish(); }
  StateEdit(const StateEdit&) = delete;
  StateEdit& operator=(const StateEdit&) = delete;
  // `endpoint_key` ("www.example.com./A/use1") names the endpoint at `slot`.
  void weight(const std::string& endpoint_key, uint32_t slot, int16_t weight);  // -1: the config's
  void override_state(const std::string& endpoint_key, uint32_t slot, Override o);
  void health(const std::string& endpoint_key, uint32_t slot, Health h);
  void publish();

 private:
  enum class Field : uint8_t { kWeight, kOverride, kHealth };
  struct Store {
    uint32_t slot;
    Field field;
    int16_t value;
  };
  void stage(const std::string& endpoint_key, uint32_t slot, Field field, int16_t value);

  const StateTable& states_;
  std::vector<Store> stores_;
  std::vector<uint32_t> records_;  // their own slots
  std::unordered_set<uint32_t> touched_;
};

// Per-worker answer counts per endpoint slot (same numbering as
// StateTable). One writer (its worker) with plain load+store — no locked
// instruction, nothing shared per query; read by the metrics scrape.
class EndpointHits {
 public:
  EndpointHits();
  ~EndpointHits();
  EndpointHits(const EndpointHits&) = delete;
  EndpointHits& operator=(const EndpointHits&) = delete;
  // Makes room for slots below `n` (off the hot path: on snapshot refresh).
  void ensure(uint32_t n);
  void add(uint32_t slot) {
    std::atomic<uint64_t>* c = chunks_[slot / StateTable::kChunk].load(std::memory_order_acquire);
    if (!c) return;
    auto& x = c[slot % StateTable::kChunk];
    x.store(x.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  uint64_t get(uint32_t slot) const {
    std::atomic<uint64_t>* c = chunks_[slot / StateTable::kChunk].load(std::memory_order_acquire);
    return c ? c[slot % StateTable::kChunk].load(std::memory_order_relaxed) : 0;
  }

 private:
  std::unique_ptr<std::atomic<std::atomic<uint64_t>*>[]> chunks_;
};

// Client networks -> regions in order of preference, longest prefix first.
class RegionMap {
 public:
  struct Rule {
    uint8_t family;  // 4 or 6
    uint8_t prefix;
    uint8_t addr[16];
    uint32_t order_begin;
    uint16_t order_count;
    uint8_t vantage;  // StateTable vantage slot measuring for these clients, or kNoVantage
  };
  // Region id for a name, added when new (config time).
  uint16_t intern(const std::string& region);
  uint16_t find(const std::string& region) const;
  void add_rule(uint8_t family, uint8_t prefix, const uint8_t* addr, const std::vector<uint16_t>& order,
                uint8_t vantage = kNoVantage);
  void finish();  // sorts rules, longest prefix first

  const Rule* match(uint8_t family, const uint8_t* addr) const;
  // ECS scope of an answer decided by `matched` (RFC 7871 §7.2.1): long
  // enough that no more specific rule inside it shares the client's
  // network, at most `limit` (the client's source prefix).
  uint8_t scope(const Rule& matched, const uint8_t* addr, uint8_t limit) const;
  // The same for an answer decided by the network `addr`/`prefix` (a geo
  // table's): no network rule inside it may share the scope.
  uint8_t scope_within(uint8_t family, const uint8_t* addr, uint8_t prefix, uint8_t limit) const;
  // The region order a geo or proximity record answers `addr` from, and
  // the ECS scope (when `limit` > 0): a network rule (cidr, not /0) wins,
  // then the database's tables, then a /0 rule. Empty: no rule.
  std::span<const uint16_t> geo_order(bool proximity, uint8_t family, const uint8_t* addr, uint8_t limit,
                                      uint8_t& scope) const;
  // The order a client with no location gets (geo: default, else a /0 rule).
  std::span<const uint16_t> default_order() const;
  // The database and its tables (geo: configured); shared by snapshots.
  std::shared_ptr<const GeoState> geo;
  std::span<const uint16_t> order(const Rule& r) const { return {orders_.data() + r.order_begin, r.order_count}; }
  const std::string& name(uint16_t id) const { return names_[id]; }
  size_t size() const { return names_.size(); }
  bool empty() const { return rules_.empty(); }

 private:
  std::vector<Rule> rules_;
  std::vector<uint16_t> orders_;
  std::vector<std::string> names_;
};

struct SteeredEndpoint {
  uint32_t state;      // StateTable slot
  uint32_t priority;   // failover tier, lower first
  uint64_t key;        // hash of the endpoint name (sticky picks)
  uint32_t rdata_off;  // into Steering rdata: A (4), AAAA (16) or a CNAME target (wire name)
  uint16_t region;     // RegionMap id or kNoRegion
  uint8_t rdlen;
  uint8_t weight;  // config weight 0..255
};

struct SteeredRecord {
  uint16_t type;
  Policy policy;
  bool fail_closed;
  bool sticky;
  bool measured;        // latency: nearest by measured RTT from the client network's vantage
  uint8_t max_answers;  // multivalue N
  uint32_t ttl;
  uint32_t ep_begin;
  uint16_t ep_count;
  uint32_t info;  // index of its SteeredInfo (names, for explain and status)
  uint32_t state;  // StateTable slot of the record itself ("name/TYPE"): its ttl_cap
  bool pick_all = false;  // latency/geo/proximity `pick: all`: every up endpoint of the region, up to max_answers
};

// The TTL steered answers carry: the record's, or lower while a drill or an
// unsteady endpoint caps it.
inline uint32_t answer_ttl(const SteeredRecord& rec, const StateTable& states);

// Names of a steered record and its endpoints, off the hot path.
struct SteeredInfo {
  std::string name;  // owner, presentation form
  std::vector<std::string> endpoints;  // (their addresses: Zone::answer_text)
  // Failback discipline of a failover record: kFailbackAuto, kFailbackManual,
  // or how long (ms) its preferred tier must stay healthy before traffic returns.
  int64_t failback = 0;
  uint32_t ttl_unsteady = 0;  // seconds; 0: off
  struct Damping {
    uint32_t flips = 0;  // 0: no damping
    uint64_t window_ms = 0, hold_ms = 0;
  };
  std::vector<Damping> damping;  // per endpoint, from its check; empty when none is damped
  const Damping& damping_of(size_t endpoint) const {
    static const Damping kNone;
    return endpoint < damping.size() ? damping[endpoint] : kNone;
  }
};
inline constexpr int64_t kFailbackAuto = 0, kFailbackManual = -1;

// The client as steering sees it: the ECS subnet when present, else the
// source address.
struct Client {
  uint8_t family = 0;  // 4, 6, or 0 (unknown)
  uint8_t prefix = 0;  // significant bits of addr (ECS source prefix, or 32/128)
  bool ecs = false;
  uint8_t addr[16] = {};
};

// Response rate limiting (DESIGN.md "Response rate limiting"), as the
// snapshot carries it to the workers; rate 0 = off.
struct RrlParams {
  uint32_t rate = 0;      // responses per second per client prefix and answer class
  uint32_t slip = 2;      // every Nth limited answer goes out truncated (0: drop them all)
  uint8_t v4_prefix = 24, v6_prefix = 56;
  std::vector<Client> exempt;  // networks never limited
};

// The outcome of one selection: endpoint indices (into the record's
// endpoints) to answer with, and the ECS scope the answer depends on.
struct Pick {
  uint16_t index[kMaxEndpoints];
  uint8_t count = 0;
  uint8_t scope = 0;
};

// Steps of a selection in words (explain); nullptr on the hot path.
struct Trace {
  std::vector<std::string> steps;
};

// Runs the record's chain. `rng` is the caller's xorshift state.
void select(const SteeredRecord& rec, std::span<const SteeredEndpoint> eps, const StateTable& states,
            const RegionMap& regions, const Client& client, uint64_t& rng, Pick& out, Trace* trace = nullptr,
            const SteeredInfo* info = nullptr);

// What a zone transfer carries for a steered record (DESIGN.md "Zone
// transfers"): what a client with no location could be answered now — the
// up endpoints (every one when all are down and the record fails open) of
// the best failover tier, for latency the first region of the default
// (0.0.0.0/0) rule's order with one, then every one of positive weight (all
// when every weight is 0); multivalue: the first max_answers up. Endpoint
// indices in record order into `out`; none when every endpoint is down and
// fail_closed is set. Control plane (reads the same atomics as select()).
void transfer_set(const SteeredRecord& rec, std::span<const SteeredEndpoint> eps, const StateTable& states,
                  const RegionMap& regions, Pick& out);

// Effective state of one endpoint (admin override, else health verdict).
bool endpoint_up(const EndpointState& s);
uint8_t effective_weight(const EndpointState& s, const SteeredEndpoint& ep);

inline uint32_t answer_ttl(const SteeredRecord& rec, const StateTable& states) {
  uint32_t cap = states.at(rec.state).ttl_cap.load(std::memory_order_relaxed);
  return cap && cap - 1 < rec.ttl ? cap - 1 : rec.ttl;
}

inline uint64_t next_random(uint64_t& s) {  // xorshift64*
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1DULL;
}

}  // namespace vane::zones
