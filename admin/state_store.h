// vaned's durable state in RocksDB (state_dir): admin weights, overrides
// (with expiry), last health verdicts, and an append-only journal of every
// admin change and health flip. Every change is one synced WriteBatch (state
// + journal entry) that lands before the change is acknowledged or applied.
//
// Keys (endpoint = "<record name>/<TYPE>/<endpoint name>", e.g.
// "www.example.com./A/use1"):
//   meta/schema          schema version ("1")
//   w/<endpoint>         admin weight, "0".."255"
//   o/<endpoint>         override JSON {"state","until_ms","reason","uid","at_ms"}
//   h/<endpoint>         last health verdict, "up" | "down"
//   p/<plan>             a plan that runs over time, JSON: "drill/<id>" (a
//                        scheduled drill), "ramp/<endpoint>" (a weight ramp)
//   j/<20-digit seq>     journal entry JSON (in a cluster: seq = the etcd
//                        revision that wrote it)
//   meta/cluster         in a cluster: "<etcd cluster id> <prefix>" whose
//   meta/revision        state this cache holds, and the last applied revision
//   x/<zone>             zone transfers: "<revision> <digest>", the zone's state
//                        revision (its served serial is the file's + this) and
//                        a digest of what transfers carried at it (node-local,
//                        kept by a cluster resync)
//   s/<zone>             a secondary zone: JSON {serial, last_ok_ms, refresh,
//                        retry, expire} of its last good refresh
#pragma once

#include <atomic>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace rocksdb {
class DB;
class WriteBatch;
struct Options;
}

namespace vane::admin {

inline constexpr int kSchemaVersion = 1;
// Free space below which the state store refuses changes (before RocksDB
// itself runs out and refuses every write until restarted).
inline constexpr uint64_t kMinFreeBytes = 16ULL << 20;
inline constexpr uint64_t kJournalKeep = 10000;  // newest entries kept (up to 1000 more between trims)

struct Override {
  std::string state;      // "up" | "down" | "drain"
  uint64_t until_ms = 0;  // wall clock (ms since epoch); 0 = until cleared
  std::string reason;
  uint32_t uid = 0;
  uint64_t at_ms = 0;
  std::string by;      // the API token's name, when set through the API
  std::string region;  // set by `drain --region`: the region it drained
};

nlohmann::json to_json(const Override& o);
Override override_from_json(const nlohmann::json& j);

class StateStore {
 public:
  ~StateStore();
  // Opens (creating when missing) the store in `dir`. A corrupt store, or one
  // written by a newer vaned, is an error that says how to get out; it is
  // never silently reset.
  static Result<std::unique_ptr<StateStore>> open(const std::string& dir);

  // Everything stored, for the overlay at start-up and for status.
  std::map<std::string, int> weights() const;
  std::map<std::string, Override> overrides() const;
  std::map<std::string, std::string> health() const;
  // One endpoint's override, and the keys of all (status: no parse of every one).
  std::optional<Override> override_of(const std::string& endpoint) const;
  std::vector<std::string> override_keys() const;

  // A change and its journal entry, written together with sync. `journal`
  // gets "seq" and "at_ms" filled in. nullopt weight/override = delete.
  struct Change {
    std::string endpoint;
    std::optional<std::optional<int>> weight;               // set when the weight changes
    std::optional<std::optional<Override>> override_state;  // set when the override changes
    std::optional<std::string> health;
    // A plan: `endpoint` is then the plan's name ("drill/3"); nullopt = delete.
    std::optional<std::optional<nlohmann::json>> plan = std::nullopt;
  };
  std::map<std::string, nlohmann::json> plans() const;
  std::optional<Error> commit(const std::vector<Change>& changes, nlohmann::json journal);
  // Several changes, each with its journal entry, in one synced write (a
  // burst of health verdicts: one fsync, not one each); the i-th entry's
  // seq is last_seq() - entries.size() + 1 + i.
  using Entry = std::pair<std::vector<Change>, nlohmann::json>;
  std::optional<Error> commit_all(std::vector<Entry> entries);

  // Cluster mode (DESIGN.md "Cluster"): this store is the node's durable
  // cache of the last applied cluster state. Changes seen on the watch and
  // their journal entries (each with its "seq" = revision) land in one
  // synced batch with the revision they bring the cache up to.
  std::optional<Error> apply_cluster(const std::vector<Change>& changes, const std::vector<nlohmann::json>& journal,
                                     uint64_t revision);
  // A full resync: everything stored is replaced by the cluster's state.
  std::optional<Error> replace_cluster(const std::map<std::string, int>& weights,
                                       const std::map<std::string, Override>& overrides,
                                       const std::map<std::string, std::string>& health,
                                       const std::map<std::string, nlohmann::json>& plans,
                                       const std::vector<nlohmann::json>& journal, uint64_t revision,
                                       const std::string& cluster);
  uint64_t cluster_revision() const;
  std::string cluster_id() const;

  // Zone transfers, per zone: 'x' (out: the state revision and transfer
  // digest), 's' (in: a secondary's serial, last refresh and SOA timers).
  std::optional<std::string> zone_meta(char kind, const std::string& zone) const;
  // Many zones' values (zone -> value) in one synced write: a tick that
  // moves 20 000 zones' serials, or ends 500 refreshes, is one fsync.
  std::optional<Error> put_zone_metas(char kind, const std::vector<std::pair<std::string, std::string>>& values);

  // Newest `limit` journal entries, oldest first.
  std::vector<nlohmann::json> history(size_t limit) const;
  uint64_t last_seq() const { return seq_; }
  // Synced writes that failed (each refused a change whole); vane_state_store_write_errors_total.
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  StateStore() = default;
  std::optional<Error> write_synced(rocksdb::WriteBatch& batch);
  static rocksdb::Options db_options();
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
  uint64_t seq_ = 0;
  std::atomic<uint64_t> write_errors_{0};
};

// The wall clock, ms since the epoch — the cluster's: this host's clock
// plus the offset a cluster measures to the median of its nodes' clocks
// (0 alone). Every time the control plane keeps (override ends, drills,
// ramps, the journal) is on it, so a node with a skewed clock ends them when
// the others do.
uint64_t now_ms();
// Time from `then` to `now`, 0 when `then` is later: a time taken after
// `now` was (later in the same round), or before the cluster's clock
// stepped back, must not read as 584 million years ago.
inline uint64_t elapsed_ms(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }
uint64_t host_ms();                   // this host's clock, as it is
void set_clock_offset_ms(int64_t ms);  // the cluster (main loop)
int64_t clock_offset_ms();
std::string format_time(uint64_t ms);  // "2026-11-25T17:06:32Z"
std::string format_duration(uint64_t ms);  // "15m", "90s", "1500ms": as a config would say it

}  // namespace vane::admin
