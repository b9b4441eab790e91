// vaned's control plane: what each admin-socket request does to the running
// server, the durable state behind it (RocksDB), override expiry, and the
// overlay of stored state at start-up. Runs on the main loop; part of the
// vaned executable, so that the server library never depends on admin/.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "admin_socket.h"
#include "aggregator.h"
#include "checker.h"
#include "server.h"
#include "state_store.h"

namespace vane::server {

class Control {
 public:
  Control(Server& srv, admin::StateStore& store);
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

  struct Target;  // a resolved RECORD ENDPOINT

 private:
  admin::Json status();
  admin::Json change(const admin::Json& req, const admin::Peer& peer);
  admin::Json explain(const admin::Json& req);
  admin::Json history(const admin::Json& req);
  void expire();
  void apply_verdicts();
  void apply_override(uint32_t slot, const std::string& state);
  std::vector<std::string> orphans();

  Server& srv_;
  admin::StateStore& store_;
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
