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
#include <unordered_map>
#include <vector>

namespace vane::healthcheck {

// Where a report stands among its agent's: `boot` is drawn at random when
// the agent starts, `seq` counts its reports from 1. Only two reports of one
// agent process are ordered: between processes (a restarted agent), or with
// no order at all (0: this process's own views, a report written by hand),
// the later to arrive stands.
struct ReportOrder {
  uint32_t boot = 0;
  uint32_t seq = 0;
  // Known to be older than `other`.
  bool before(const ReportOrder& other) const { return boot != 0 && boot == other.boot && seq < other.seq; }
};

struct VantageView {
  bool up = true;
  uint64_t at_ms = 0;
  double rtt_ms = 0;
  std::string detail;
  bool self = false;     // this process: always fresh
  bool relayed = false;  // read from etcd (put_view), not reported to this process
  ReportOrder order{};   // of the agent's report that made it
};

// One vantage's verdict on one endpoint, as reported.
struct Observation {
  std::string vantage;
  std::string key;  // "www.example.com./A/use1"
  bool up = true;
  double rtt_ms = 0;
  std::string detail;
  bool self = false;
  ReportOrder order{};
};

struct Decision {
  bool up;
  std::string why;  // the vantages' views, in words
};

class Aggregator {
 public:
  // Endpoints are numbered by the caller (vaned: their state table slots),
  // so that tens of thousands of them cost no key string here.
  using Id = uint32_t;
  struct Params {
    uint32_t interval_ms = 10000;
    double quorum = 0.5;
    uint32_t min_vantages = 1;
  };
  struct Spec {
    Id id;
    Params params;
    bool up;  // the verdict to start from, when new
  };
  // The endpoints to aggregate, with their check's parameters: listed ones
  // are added (starting from their `up`) or keep their views and verdict;
  // the others are dropped. Returns the ids that are new.
  std::vector<Id> set_endpoints(std::vector<Spec> specs);
  bool known(Id id) const { return find(id) != nullptr; }
  // The endpoint's check interval, or `otherwise` when it is not listed.
  uint32_t interval_ms(Id id, uint32_t otherwise) const {
    const Endpoint* e = find(id);
    return e ? e->interval_ms : otherwise;
  }

  // A vantage's view; returns a decision when the verdict changes.
  std::optional<Decision> observe(Id id, const std::string& vantage, const VantageView& view, uint64_t now_ms);
  // Re-evaluates every endpoint (vantages going stale); changed verdicts.
  std::vector<std::pair<Id, Decision>> tick(uint64_t now_ms);

  // Cluster (DESIGN.md "Cluster"): views other nodes stored in etcd. They
  // are put without deciding (call tick() after a batch), forgotten when
  // their lease ends, and kept fresh while this node is connected: a view
  // in etcd is current until its vantage's lease expires.
  void put_view(Id id, const std::string& vantage, const VantageView& view);
  void forget(Id id, const std::string& vantage);
  // Drops every view of other processes that `keep` does not hold ((id, vantage) pairs).
  void retain_views(const std::set<std::pair<Id, std::string>>& keep);
  void refresh_remote(uint64_t now_ms);
  // Cut off from etcd: the views read from it are of unknown age — not
  // counted until etcd answers again (refresh_remote). Views reported to
  // this process directly (its own, its agents') still count.
  void distrust_remote();
  bool remote_trusted() const { return remote_trusted_; }
  // The verdict the cluster recorded: later decisions start from it.
  void set_verdict(Id id, bool up);

  bool verdict(Id id) const;
  // One vantage's view of the endpoint, if it has one.
  std::optional<VantageView> view(Id id, const std::string& vantage) const;
  // The order of the report behind that view ({} when none): a cheaper view().
  ReportOrder order(Id id, const std::string& vantage) const;
  // Per vantage: {view, fresh}; for status.
  std::map<std::string, std::pair<VantageView, bool>> views(Id id, uint64_t now_ms) const;

 private:
  // One vantage's view, in 24 bytes (a checked endpoint's one view is a
  // 32-byte malloc chunk): its vantage and detail are numbers into
  // vantages_ and details_ (a few distinct texts among tens of thousands
  // of endpoints), packed beside the time and the flags.
  struct View {
    uint64_t at_ms : 48 = 0;  // ms since the epoch: 48 bits last 8 900 years
    uint64_t vantage : 16 = 0;
    ReportOrder order;
    float rtt_ms = 0;
    uint16_t detail : 13 = 0;  // < kMaxDetails (4 096)
    bool up : 1 = true;
    bool self : 1 = false;
    bool relayed : 1 = false;
  };
  static_assert(sizeof(View) == 24);
  struct Endpoint {
    Id id;
    uint32_t interval_ms;
    float quorum;
    uint16_t min_vantages;
    bool up;
    // By vantage number: most endpoints have one or a few.
    std::vector<View> views;
  };
  Endpoint* find(Id id);
  const Endpoint* find(Id id) const;
  View& view(Endpoint& e, const std::string& vantage);  // added when new
  const View* find_view(Id id, const std::string& vantage) const;
  std::optional<uint16_t> vantage_number(const std::string& vantage) const;  // into vantages_, if known
  void put(View& v, const VantageView& from);
  VantageView expand(const View& v) const;
  std::optional<Decision> decide(Endpoint& e, uint64_t now_ms);
  bool counts(const View& v, uint32_t interval_ms, uint64_t now_ms) const;
  std::vector<Endpoint> endpoints_;  // by id
  std::vector<std::string> vantages_;
  std::vector<std::string> details_{""};
  std::unordered_map<std::string, uint32_t> detail_ids_{{"", 0}};
  bool remote_trusted_ = true;
};

}  // namespace vane::healthcheck
