// vaned's control plane: what each admin-socket request does to the running
// server (control.cpp: the verbs), the state behind it — overlay at start,
// override expiry, health verdicts, changes from the cluster
// (control_state.cpp) — and the operator view: status, /metrics, the status
// page's JSON (control_view.cpp). Writes go through one StateWriter: the
// node's RocksDB, or the etcd cluster. Runs on the main loop; part of the
// vaned executable, so that the server library never depends on admin/.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "admin_socket.h"
#include "aggregator.h"
#include "checker.h"
#include "cluster_store.h"
#include "server.h"
#include "state_store.h"
#include "state_writer.h"

namespace vane::server {

class Control {
 public:
  // `cluster` is null without cluster: (then `writer` is the local store).
  Control(Server& srv, admin::StateStore& store, admin::StateWriter& writer, admin::ClusterStore* cluster);
  ~Control();

  // Before the server starts answering: stored weights and overrides go into
  // the endpoint state table (overrides that expired while vaned was down
  // are ended, with a journal entry). Returns an error if the store fails.
  std::optional<Error> overlay();
  // After start: logs stored state for records/endpoints the config no
  // longer has (kept, reported by status), and starts the expiry timer.
  void start(uv_loop_t* loop);
  void stop();

  void handle(const admin::Json& request, const admin::Peer& peer, admin::Reply reply);

  // Operator view (main loop): Prometheus text, and the status page's JSON.
  std::string metrics();
  admin::Json page_status();

  // A health verdict change, from the checker thread, or agents' reports
  // from the HTTP thread: aggregated over vantages on the main loop; an
  // endpoint verdict change is recorded (synced, journaled), then applied.
  void post_verdict(const healthcheck::Verdict& v);
  void post_observations(std::vector<healthcheck::Observation> obs);
  // This process's median RTT to an endpoint (checker thread).
  void post_rtt(const std::string& key, double median_ms);
  // Checker targets for the current config, starting from the current verdicts.
  std::vector<healthcheck::Target> health_targets(const Config& cfg);

  // Changes other nodes made (and the whole state on a (re)connect).
  void on_cluster(const std::vector<admin::ClusterEvent>& events, bool full);

  struct Target;  // a resolved RECORD ENDPOINT

 private:
  admin::Json status();
  void change(const admin::Json& req, const admin::Peer& peer, admin::Reply reply);
  admin::Json explain(const admin::Json& req);
  admin::Json history(const admin::Json& req);
  void expire();
  void apply_verdicts();
  void apply_override(uint32_t slot, const std::string& state);
  std::vector<std::string> orphans();

  void share_view(const std::string& vantage, const std::string& key, const healthcheck::VantageView& v, bool own);
  void end_override(const std::string& key, const admin::Override& o);

  Server& srv_;
  admin::StateStore& store_;
  admin::StateWriter& writer_;
  admin::ClusterStore* cluster_;
  std::set<std::string> ending_;                         // overrides whose end is being written
  std::map<std::string, std::string> shared_views_;      // "vantage/key" -> what etcd holds ("up|detail")
  std::map<std::string, healthcheck::VantageView> own_;  // this process's views, to restore a lost lease's
  std::map<std::string, uint32_t> intervals_;            // endpoint key -> its check's interval
  std::map<std::string, admin::Override> expiries_;  // endpoint key -> the timed override, as stored
  uv_timer_t timer_{};
  bool timer_live_ = false;
  uv_async_t verdict_async_{};
  std::mutex verdict_mu_;
  std::vector<healthcheck::Observation> observations_;
  healthcheck::Aggregator agg_;
  void record_decision(const std::string& key, const healthcheck::Decision& d);
  void store_rtt(const std::string& vantage, const std::string& key, double ms);
  std::vector<std::pair<std::string, double>> rtts_;  // (key, ms) from this process, under verdict_mu_
  std::string vantage_ = "local";
  // Counters for /metrics (main loop only).
  std::map<std::string, uint64_t> admin_changes_;                   // by action
  std::map<std::string, uint64_t> flips_;                           // by "up"/"down"
  std::map<std::pair<std::string, std::string>, uint64_t> checks_;  // (vantage, "up"/"down") observations
  std::map<std::string, std::vector<uint64_t>> rtt_hist_;           // vantage -> bucket counts (+ sum, count at end)
  std::map<std::string, uint64_t> last_hits_;                       // endpoint key -> answers at the last page poll
  uint64_t last_hits_ms_ = 0;
  void note_rtt(const std::string& vantage, double ms);
  uint64_t hits(uint32_t slot) const;
};

}  // namespace vane::server
