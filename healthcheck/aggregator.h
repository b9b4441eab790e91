// Vantage aggregation: each vantage (this process, and `vaned agent`s on
// other hosts) reports its own fall/rise verdict per endpoint; the endpoint
// is down when at least `quorum` of the *fresh* vantages say so. A vantage is
// fresh when it reported within 3 check intervals (this process is always
// fresh while it runs). With fewer than `min_vantages` fresh, the last
// verdict stands: a partitioned checker never flips the world.
// Not thread-safe; lives on the daemon's main loop.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vane::healthcheck {

struct VantageView {
  bool up = true;
  uint64_t at_ms = 0;
  double rtt_ms = 0;
  std::string detail;
  bool self = false;     // this process: always fresh
  bool relayed = false;  // read from etcd (put_view), not reported to this process
};

// One vantage's verdict on one endpoint, as reported.
struct Observation {
  std::string vantage;
  std::string key;  // "www.example.com./A/use1"
  bool up = true;
  double rtt_ms = 0;
  std::string detail;
  bool self = false;
};

struct Decision {
  bool up;
  std::string why;  // the vantages' views, in words
};

class Aggregator {
 public:
  struct Params {
    uint32_t interval_ms = 10000;
    double quorum = 0.5;
    uint32_t min_vantages = 1;
  };
  // Endpoints to aggregate, with their check's parameters and the verdict
  // to start from. Views of endpoints no longer listed are dropped.
  void set_endpoint(const std::string& key, const Params& p, bool current_up);
  void retain(const std::vector<std::string>& keys);
  bool known(const std::string& key) const { return endpoints_.count(key) != 0; }
  // The endpoint's check interval, or `otherwise` when it is not listed.
  uint32_t interval_ms(const std::string& key, uint32_t otherwise) const {
    auto it = endpoints_.find(key);
    return it == endpoints_.end() ? otherwise : it->second.params.interval_ms;
  }

  // A vantage's view; returns a decision when the verdict changes.
  std::optional<Decision> observe(const std::string& key, const std::string& vantage, const VantageView& view,
                                  uint64_t now_ms);
  // Re-evaluates every endpoint (vantages going stale); changed verdicts.
  std::vector<std::pair<std::string, Decision>> tick(uint64_t now_ms);

  // Cluster (DESIGN.md "Cluster"): views other nodes stored in etcd. They
  // are put without deciding (call tick() after a batch), forgotten when
  // their lease ends, and kept fresh while this node is connected: a view
  // in etcd is current until its vantage's lease expires.
  void put_view(const std::string& key, const std::string& vantage, const VantageView& view);
  void forget(const std::string& key, const std::string& vantage);
  // Drops every view of other processes that `keep` does not hold ((key, vantage) pairs).
  void retain_views(const std::set<std::pair<std::string, std::string>>& keep);
  void refresh_remote(uint64_t now_ms);
  // Cut off from etcd: the views read from it are of unknown age — not
  // counted until etcd answers again (refresh_remote). Views reported to
  // this process directly (its own, its agents') still count.
  void distrust_remote();
  // The verdict the cluster recorded: later decisions start from it.
  void set_verdict(const std::string& key, bool up);

  bool verdict(const std::string& key) const;
  // Per vantage: {up, fresh, detail, rtt}; for status.
  std::map<std::string, std::pair<VantageView, bool>> views(const std::string& key, uint64_t now_ms) const;

 private:
  struct Endpoint {
    Params params;
    bool up = true;
    // By vantage name: most endpoints have one or a few, tens of thousands
    // of endpoints — a sorted vector, not a map.
    std::vector<std::pair<std::string, VantageView>> views;
    VantageView& view(const std::string& vantage);  // added when new
  };
  std::optional<Decision> decide(Endpoint& e, uint64_t now_ms);
  bool counts(const VantageView& v, uint32_t interval_ms, uint64_t now_ms) const;
  std::map<std::string, Endpoint> endpoints_;
  bool remote_trusted_ = true;
};

}  // namespace vane::healthcheck
