// The cluster state layer (DESIGN.md "Cluster"): every admin change is one
// etcd transaction (state + journal entry, guarded by the mod revisions this
// node last applied), acknowledged after quorum commit and after this node
// applied it; a watch on the prefix brings every other node's changes; the
// node's RocksDB store is the durable cache of what it applied. Observations
// are leased (a node's own on its membership lease, an agent's on a lease of
// its own), so a silent vantage disappears from every node at once.
//
// Threads: watch, writer, keepalive (each with its own etcd client). All
// state the control plane reads is applied on the main loop; DNS workers
// never wait on anything here.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "config.h"
#include "etcd_client.h"
#include "state_writer.h"

namespace vane::admin {

// One key's change under the prefix, as the main loop applies it.
struct ClusterEvent {
  // kAnswer: a record's answer state changed ("a/<record>", written with
  // every weight, override or verdict change; its revision is what the
  // record's zone serial follows).
  enum class Kind { kWeight, kOverride, kHealth, kPlan, kObservation, kNode, kJournal, kAnswer, kOther };
  Kind kind = Kind::kOther;
  std::string key;      // endpoint key ("www.example.com./A/use1"), node name, journal id
  std::string vantage;  // kObservation
  bool deleted = false;
  std::string value;
  int64_t revision = 0;
};

class ClusterStore final : public StateWriter {
 public:
  static constexpr size_t kMaxTxnOps = 100;  // per etcd transaction; etcd's --max-txn-ops defaults to 128
  // `apply` runs on the main loop with each batch of changes; `full` when
  // the batch is the whole cluster state (a (re)connect): keys absent from
  // it are gone.
  using Apply = std::function<void(const std::vector<ClusterEvent>& events, bool full)>;
  ClusterStore(const ClusterSpec& spec, StateStore& cache, uv_loop_t* loop, Apply apply);
  ~ClusterStore() override;

  void start(const std::string& digest);
  void stop();
  void set_digest(const std::string& digest);

  void commit(std::vector<StateStore::Change> changes, nlohmann::json journal, Done done) override;

  // A vantage's view of an endpoint, written (coalesced, asynchronously)
  // under obs/<vantage>/<key>: `own` on this node's lease, else on a lease
  // of the vantage's own that lives `ttl_s` after its last report.
  void put_observation(const std::string& vantage, const std::string& key, const Json& view, bool own,
                       uint32_t ttl_s);
  // A report from an agent arrived here: the lease of its views that this
  // node holds lives on, whether or not any view changed.
  void heard_from_agent(const std::string& vantage);

  bool connected() const { return connected_.load(); }
  // Milliseconds since etcd last answered this node (its keepalives run
  // every 500 ms): a hung etcd shows here long before connected() drops.
  uint64_t contact_age_ms() const;
  // The etcd revision this node's state is at (0: none applied yet).
  int64_t applied_revision() const { return applied_rev_.load(); }
  // The node that writes health verdicts for the cluster: the live member
  // (by membership lease) whose name sorts first. Main loop.
  bool writes_health() const;
  Json status() const;  // main loop
  const ClusterSpec& spec() const { return spec_; }

 private:
  struct Pending;
  struct Write;
  void watch_loop();
  void writer_loop();
  void keepalive_loop();
  bool sync_and_watch(EtcdClient& etcd);
  std::optional<std::string> seed(EtcdClient& etcd);
  void deliver(Pending p);
  void drain();  // main loop
  void run_commit(EtcdClient& etcd, Write& w);
  std::string full(const std::string& suffix) const { return spec_.prefix + "/" + suffix; }
  ClusterEvent translate(const KeyValue& kv, bool deleted) const;
  void set_connected(bool up, const std::string& why);

  ClusterSpec spec_;
  StateStore& cache_;
  uv_loop_t* loop_;
  Apply apply_;
  uv_async_t async_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> watch_abort_{false};
  std::atomic<bool> watch_live_{false};  // the state applied here is the watch's: current
  std::atomic<uint64_t> watch_seen_ms_{0};  // the watch's last message (steady clock)
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> applied_rev_{0};
  std::atomic<int64_t> cluster_rev_{0};
  std::atomic<int64_t> lease_{0};
  std::atomic<uint64_t> contact_ms_{0};       // last successful exchange with etcd
  std::atomic<uint64_t> disconnected_ms_{0};  // when it was lost (0: connected)
  std::thread watch_thread_, writer_thread_, keepalive_thread_;

  mutable std::mutex mu_;  // everything below, between threads
  std::condition_variable cv_;
  std::deque<Pending> pending_;  // to the main loop
  std::deque<std::unique_ptr<Write>> writes_;
  std::map<std::string, std::pair<Json, int64_t>> obs_out_;  // etcd key -> (view, lease id or -ttl for agents)
  struct AgentLease {
    int64_t id = 0;
    uint32_t ttl_s = 0;
    uint64_t touched_ms = 0;
  };
  std::map<std::string, AgentLease> agent_leases_;
  std::string digest_;
  std::string last_error_;
  std::string cluster_id_;

  // Main loop only.
  std::map<std::string, int64_t> key_rev_;  // key suffix -> mod revision applied here
  std::map<std::string, Json> nodes_;       // membership, as last seen
  std::map<std::string, int64_t> clock_samples_;  // node -> its clock minus ours, at its last heartbeat
  void follow_cluster_clock();
};

}  // namespace vane::admin
