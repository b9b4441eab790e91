// vaned's control plane: what each admin-socket request does to the running
// server (control.cpp: the verbs), the state behind it — overlay at start,
// override expiry, health verdicts, changes from the cluster
// (control_state.cpp) — and the operator view: status, /metrics, the status
// page's JSON (control_view.cpp). Writes go through one StateWriter: the
// node's RocksDB, or the etcd cluster. Runs on the main loop; part of the
// vaned executable, so that the server library never depends on admin/.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "admin_socket.h"
#include "aggregator.h"
#include "checker.h"
#include "cluster_store.h"
#include "server.h"
#include "state_store.h"
#include "state_writer.h"
#include "xfr_in.h"

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
  // The zone a write request changes ("example.com."), as served now: the
  // zone of its record, of the drill it cancels, or the zone it names; none
  // when it names nothing that exists (the verb then answers why). The HTTP
  // API checks write:ZONE scopes with it.
  std::optional<std::string> zone_of(const admin::Json& request) const;

  // Operator view (main loop): Prometheus text, and the status page's JSON.
  std::string metrics();
  // status for the page (/api/status): at most kPageRecords records, those
  // needing attention first, with answer shares and charts.
  admin::Json page_status(const std::string& filter = "");
  static constexpr size_t kPageRecords = 200;

  // A health verdict change, from the checker thread, or agents' reports
  // from the HTTP thread: aggregated over vantages on the main loop; an
  // endpoint verdict change is recorded (synced, journaled), then applied.
  void post_verdict(const healthcheck::Verdict& v);
  void post_observations(std::vector<healthcheck::Observation> obs);
  // This process's median RTT to an endpoint (checker thread).
  void post_rtt(const std::string& key, double median_ms);
  // An endpoint's probes started or stopped disagreeing with its verdict (checker thread).
  void post_waver(const std::string& key, bool wavering);
  // Checker targets for the current config, starting from the current verdicts.
  std::vector<healthcheck::Target> health_targets(const Config& cfg);
  // GET /v1/targets: those targets for agents, built from the current
  // config when asked (main loop), with checks written out in each target or
  // listed once (shared_checks), and the current verdicts.
  std::string targets_document(bool shared_checks) const;
  // Its version: changes when the probes to run do (any thread).
  std::string targets_version() const {
    std::lock_guard lock(targets_mu_);
    return targets_version_;
  }

  // Zone transfers out (control_transfer.cpp): recomputes what each
  // transferred zone carries; on a change the serial rises, IXFR keeps the
  // difference, the view is republished and NOTIFYs go out. Every tick and
  // after every reload.
  void review_transfers();

  // Changes other nodes made (and the whole state on a (re)connect).
  void on_cluster(const std::vector<admin::ClusterEvent>& events, bool full);

  struct Target;  // a resolved RECORD ENDPOINT
  // RECORD: an owner name, with /TYPE when it has several steered types.
  static Result<std::pair<const zones::Zone*, const zones::SteeredRecord*>> find_record(const zones::ZoneSet& zs,
                                                                                        std::string record);

  // A failover record's tiers as answers see them now (lower = preferred).
  struct Tiers {
    uint32_t top = UINT32_MAX;     // the preferred tier, as configured
    uint32_t best = UINT32_MAX;    // lowest tier with an endpoint up, holds ignored
    uint32_t served = UINT32_MAX;  // lowest tier with an endpoint up and not held back
    uint32_t up = 0;               // endpoints up
    bool held = false;             // some endpoint is held back by the failback policy
  };
  // A failover record's place: the tier it answers from and, while held,
  // since when (0: unknown / not healthy).
  struct FailbackView {
    Tiers tiers;
    uint32_t answering = UINT32_MAX;
    bool failed_over = false;
    uint64_t held_since_ms = 0, healthy_since_ms = 0;
  };

 private:
  // A zone or a record, or everything; at most `most` records (needing
  // attention first; "records_total" counts them all), `listed` getting
  // which, in the order of "records" (pointers into the current snapshot:
  // the caller holds it).
  using Listed = std::pair<const zones::Zone*, const zones::SteeredRecord*>;
  admin::Json status(const std::string& filter = "", size_t most = SIZE_MAX, std::vector<Listed>* listed = nullptr);
  void change(const admin::Json& req, const admin::Peer& peer, admin::Reply reply);
  // drain|undrain with "region": every endpoint of that region, one change.
  void change_region(const admin::Json& req, const admin::Peer& peer, admin::Reply reply);
  admin::Json explain(const admin::Json& req);
  admin::Json history(const admin::Json& req);
  void dnssec(const admin::Json& req, const admin::Peer& peer, admin::Reply reply);
  void expire();
  void apply_verdicts();
  void apply_override(uint32_t slot, const std::string& state);
  std::vector<std::string> orphans();

  // Failback discipline and flap damping (control_failback.cpp).
  Tiers tiers(std::span<const zones::SteeredEndpoint> eps, const std::string& skip_key, const zones::SteeredInfo& info,
              uint16_t type) const;
  bool decides() const;  // this node writes verdicts, holds and damping
  void review_failback(uint64_t now);
  bool place_hold(const std::string& id, const zones::Zone& z, const zones::SteeredRecord& r, uint32_t from,
                  uint32_t to, uint64_t now);
  void release(const std::string& id, const zones::Zone& z, const zones::SteeredRecord& r, const std::string& why,
               const std::string& by, std::function<void(admin::Json)> reply, const admin::Peer* peer = nullptr);
  void failback(const admin::Json& req, const admin::Peer& peer, admin::Reply reply);
  void note_flip(const std::string& key, uint32_t slot, uint64_t now);
  const zones::SteeredInfo::Damping* damping_of(uint32_t slot);  // null: not damped
  std::weak_ptr<const zones::ZoneSet> damping_snap_;               // what damping_by_slot_ was built from
  std::unordered_map<uint32_t, zones::SteeredInfo::Damping> damping_by_slot_;
  std::optional<admin::Override> after_damping(const std::string& key);
  FailbackView failback_view(const zones::Zone& z, const zones::SteeredRecord& r) const;
  admin::Json failback_status(const zones::Zone& z, const zones::SteeredRecord& r, uint64_t now) const;
  // The failover records with a failback discipline in failback_snap_:
  // what review_failback walks every tick, skipping each one whose
  // endpoints are as they were when it last found nothing to do.
  struct FailbackRecord {
    const zones::Zone* zone;
    const zones::SteeredRecord* record;
    std::string id;   // "name/TYPE"
    uint64_t steady;  // endpoint_states() then; kNotSteady: review it
  };
  void take_failback_records(const std::shared_ptr<const zones::ZoneSet>& snap);
  std::weak_ptr<const zones::ZoneSet> failback_snap_;
  std::vector<FailbackRecord> failback_records_;
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> failback_by_slot_;  // endpoint slot -> record, endpoint
  bool failback_decided_ = false;                             // decides() at the last review
  bool failback_review_all_ = false;                          // a hold or release was written: review all once
  std::map<std::string, uint32_t> best_tier_;                 // "name/TYPE" -> tier answering at the last review
  std::map<std::string, uint64_t> holding_since_;             // held record -> when its hold began
  std::map<std::string, uint64_t> preferred_healthy_since_;   // held record -> since when a held-back tier is up
  std::set<std::string> failback_writing_;                    // records whose hold or release is being written
  std::set<std::string> damping_writing_;                     // endpoints whose damping is being written
  std::map<std::string, std::vector<uint64_t>> flip_times_;   // endpoint key -> recent verdict changes

  // Drills, ramps and TTL caps (control_plans.cpp).
  void run_plans(uint64_t now);
  void update_caps(uint64_t now);
  struct DrilledRecord {
    uint32_t ttl;   // its own
    uint32_t slot;  // its state
  };
  const std::map<std::string, DrilledRecord>& drill_ttls();
  std::weak_ptr<const zones::ZoneSet> drill_ttls_snap_;  // what drill_ttls_ is of
  std::set<std::string> drilled_;                        // the records drills name ("name/TYPE")
  std::map<std::string, DrilledRecord> drill_ttls_;      // those of them in the snapshot
  std::weak_ptr<const zones::ZoneSet> caps_snap_;        // what caps_unsteady_ is of
  std::vector<std::pair<const zones::Zone*, const zones::SteeredRecord*>> caps_unsteady_;  // records with ttl_unsteady
  std::vector<uint32_t> capped_;  // record state slots the last pass capped
  void commit_plan(const std::string& id, std::vector<admin::StateStore::Change> changes, admin::Json journal,
                   std::optional<admin::Override> forced, admin::Reply reply = {});
  void apply_plan_changes(const std::vector<admin::StateStore::Change>& changes);
  void drill(const admin::Json& req, const admin::Peer& peer, admin::Reply reply);
  admin::Json drills_view(uint64_t now) const;
  void ramp(const std::string& key, int from, int to, uint64_t over, const std::string& reason, const admin::Peer& peer,
            admin::Reply reply);
  admin::Json ramp_view(const std::string& key, uint64_t now) const;
  void note_plan_events(const std::vector<admin::ClusterEvent>& events, bool full);
  std::map<std::string, admin::Json> plans_;                // "drill/3", "ramp/<endpoint>" -> the plan, as stored
  std::set<std::string> plan_writing_;                      // plans whose next step is being written
  // By endpoint slot: when its verdict last changed or a probe wavered (0:
  // not yet), and whether its probes disagree with its verdict now.
  struct Unsteady {  // 8 bytes a slot
    uint64_t last_flip_ms : 63 = 0;
    uint64_t wavering : 1 = 0;
  };
  std::vector<Unsteady> unsteady_;
  Unsteady& unsteady(uint32_t slot) {
    if (slot >= unsteady_.size()) grow_to(unsteady_, slot);
    return unsteady_[slot];
  }
  // A vector by endpoint slot grown to hold `slot`, with room for every slot
  // there is and no more: grown once for a reload that adds endpoints,
  // never to twice the table.
  template <class T>
  void grow_to(std::vector<T>& v, uint32_t slot) const {
    v.reserve(std::max<size_t>(slot + 1, srv_.states().size()));
    v.resize(slot + 1);
  }
  std::vector<std::pair<std::string, bool>> wavers_;        // from the checker thread, under verdict_mu_

  // Zone transfers out (control_transfer.cpp).
  struct XfrZone {
    const zones::Zone* zone = nullptr;  // in xfr_snapshot_
    zones::TransferSpec spec;
    bool skip_dnssec = false;
    uint64_t static_digest = 0, digest = 0;
    uint64_t revision = 0;  // the zone's state revision: served serial = file serial + this
    uint64_t answer_rev = 0, answer_seen = 0;  // the cluster's, and record_rev_changes_ when computed
    uint32_t serial = 0;
    std::atomic<uint32_t>* serial_slot = nullptr;  // the serial answers carry (StateTable::zone_serial)
    uint64_t reviewed = 0;                         // the last whole review that found it (xfr_reviews_)
    std::vector<std::vector<uint16_t>> steered;
    std::vector<zones::IxfrStep> history;
    bool notify_due = false;
    struct Notify {
      sockaddr_storage addr{};
      socklen_t len = 0;
      uint32_t serial = 0;
      uint16_t id = 0;
      uint32_t attempts = 0;
      uint64_t next_ms = 0;
      bool answered = false;
    };
    std::vector<Notify> notifies;
  };
  std::map<std::string, XfrZone> xfr_;  // origin text -> its transfer state
  std::shared_ptr<const zones::ZoneSet> xfr_snapshot_;  // the snapshot the published view holds
  uint64_t xfr_store_errors_ = 0;
  uint64_t xfr_reviews_ = 0;
  static std::string zones_named(const std::vector<std::pair<std::string, std::string>>& values);
  std::vector<std::string> xfr_steered_;      // the zones with steered records: all a review between snapshots looks at
  bool xfr_review_all_ = false;               // a store write failed: the next review looks at every zone again
  uint64_t xfr_next_notify_ms_ = UINT64_MAX;  // the earliest NOTIFY due (send_notifies)
  // In a cluster: the etcd revision of each record's last answer-state
  // change, as applied here (record key -> revision), and a count of moves.
  std::map<std::string, uint64_t> record_rev_;
  uint64_t record_rev_changes_ = 0;
  uint64_t answer_revision(XfrZone& x, const zones::Zone& z);
  void start_notify(XfrZone& x, uint64_t now);
  void send_notifies(uint64_t now);
  bool open_notify_socket(int family);
  void on_notify_answer(uv_poll_t* h);
  void stop_transfers();
  admin::Json transfer_status(const zones::Zone& z) const;
  int notify_fd4_ = -1, notify_fd6_ = -1;
  int xfr_cancel_fd_ = -1;  // an eventfd, written at stop(): refreshes under way give up (XfrInRequest::cancel_fd)
  std::unique_ptr<XfrInPool> xfr_pool_;  // started with the first refresh
  uv_async_t xfr_done_async_{};          // a refresh ended (XfrInPool's wake)
  uv_poll_t notify_poll4_{}, notify_poll6_{};
  std::map<std::string, uint64_t> notify_counts_;  // "sent", "answered", "error"
  uv_loop_t* loop_ = nullptr;
  uv_check_t xfr_check_{};
  uv_timer_t xfr_soon_{};
  uint64_t xfr_checked_ms_ = 0;

  // Secondary zones (control_secondary.cpp).
  struct SecZone {
    zones::SecondarySpec spec;
    std::string file;
    std::optional<uint32_t> serial;  // the copy's (none: no copy; the copy itself stays in `file`)
    uint32_t refresh = 3600, retry = 600, expire = 604800;  // the copy's SOA timers
    uint64_t last_ok_ms = 0, next_check_ms = 0, last_error_ms = 0;
    std::string last_error, last_kind, last_server;
    bool in_flight = false, force_axfr = false, again = false, expired = false;
    bool removed = false;  // gone from the config: kept only until the refresh under way ends
    std::vector<admin::Reply> waiting;  // vanectl zone refresh|retransfer, answered when the refresh ends
    std::vector<admin::Reply> waiting_next;  // asked while one was under way: answered by the next
  };
  std::map<std::string, SecZone> sec_;  // origin text -> its state
  // Refreshes by kind (soa: the check alone, axfr, ixfr) and result (updated, current, failed).
  std::map<std::pair<std::string, std::string>, uint64_t> xfr_in_counts_;
  uint64_t notify_in_ = 0;  // NOTIFYs from primaries acted on
  uv_async_t notify_async_{};
  void review_secondaries();
  void take_secondaries(uint64_t now);
  uint64_t sec_config_ = 0;  // the config generation sec_ was taken from
  void start_refresh(const std::string& name, SecZone& s);
  void finish_refresh(const std::string& name, XfrInResult res);
  std::vector<std::pair<std::string, std::string>> sec_stores_;  // refresh times to store (store_refreshes)
  std::vector<std::function<void()>> sec_stored_;                // answers to give once they are
  void store_refreshes();
  void on_notifies();
  void zone_verb(const admin::Json& req, admin::Reply reply);
  admin::Json secondary_status(const zones::Zone& z) const;
  std::vector<std::pair<std::string, double>> secondary_expiries() const;
  admin::Json silent_primaries() const;

  void share_view(const std::string& vantage, const std::string& key, const healthcheck::VantageView& v, bool own);
  uint32_t view_lease_s(uint32_t slot) const;
  bool keep_heard_view(const std::string& vantage, const std::string& key, uint32_t slot, uint64_t now);
  void end_overrides(uint64_t now);

  Server& srv_;
  admin::StateStore& store_;
  admin::StateWriter& writer_;
  admin::ClusterStore* cluster_;
  std::set<std::string> ending_;                         // overrides whose end is being written
  std::map<std::string, std::string> shared_views_;      // "vantage/key" -> what etcd holds ("up|detail")
  std::map<std::string, healthcheck::VantageView> own_;  // this process's views, to restore a lost lease's
  std::map<std::string, uint64_t> agents_heard_ms_;      // agent vantage -> when its last report arrived here
  std::map<std::string, admin::Override> expiries_;  // endpoint key -> the timed override, as stored
  uv_timer_t timer_{};
  bool timer_live_ = false;
  uv_async_t verdict_async_{};
  std::mutex verdict_mu_;
  std::vector<healthcheck::Observation> observations_;
  healthcheck::Aggregator agg_;
  void record_decision(uint32_t slot, const healthcheck::Decision& d);
  // Verdicts this node applied that the cluster does not hold yet: decided
  // here while another node writes verdicts, or while cut off from etcd, or
  // a write that failed. Failover never waits on etcd: they apply at once,
  // stand until the cluster's verdict agrees, and give way to a different
  // one only after a grace (so reconnecting never flaps an answer).
  struct Flip {
    bool up;
    uint64_t at_ms;  // decided
    std::string why;
    bool late;  // decided when etcd did not answer, or its write was refused
  };
  // A write refused `failures` times waits until `retry_ms` (refused()).
  struct Backoff {
    uint32_t failures = 0;
    uint64_t retry_ms = 0;
  };
  struct LocalVerdict : Backoff {
    bool up = true;
    uint64_t since_ms = 0;  // decided, or last seen cut off
    bool writing = false;   // this node writes verdicts, and is writing it
    // A write for this endpoint is out (of `up`, of a flip `up` replaced, or
    // of the oldest of `earlier`): the next waits for its answer, so the
    // journal has them in the order they were decided.
    bool out = false;
    bool late = false;       // as Flip::late
    bool owes_last = false;  // flips before `up` were journaled: `up` is too, also where etcd holds it
    // etcd's verdict changed, or a verdict was journaled, after this node's
    // first flip here that etcd has not taken (etcd's revision then:
    // `since_revision`): another node journaled that time.
    bool moved = false;
    int64_t since_revision = 0;
    uint64_t decided_ms = 0;
    std::string why;
    // The revision of the verdict etcd held when this node's first flip
    // that etcd has not taken was decided; the flips decided here before
    // `up` that etcd never took (oldest first, at most kMaxUnwritten): the
    // node that writes verdicts journals them when etcd answers again —
    // unless etcd's verdict has changed since, when another node did.
    int64_t base_revision = 0;
    std::vector<Flip> earlier;
    Flip flip() const { return {up, decided_ms, why, late}; }
    bool all_journaled() const { return earlier.empty() && !owes_last; }  // but `up`, unless etcd holds it
  };
  static admin::Json flip_entry(const std::string& key, const Flip& f);
  static constexpr size_t kMaxUnwritten = 16;
  static void keep_unwritten(std::vector<Flip>& earlier, Flip f);
  std::map<std::string, LocalVerdict> local_verdicts_;
  struct HeldVerdict {
    bool up;
    int64_t revision;
  };
  std::map<std::string, HeldVerdict> cluster_health_;  // endpoint key -> the verdict etcd holds
  LocalVerdict& note_local_verdict(const std::string& key, bool up, const std::string& why, uint64_t now);
  void refused(const std::string& key, const Error& err, Backoff* b);
  // A node that does not write verdicts journals the flips it made alone
  // while etcd did not answer, that etcd's verdict never followed, as
  // `health-local`: one write at a time per endpoint, oldest first.
  struct AloneFlips : Backoff {
    bool out = false;
    std::deque<admin::Json> entries;
  };
  std::map<std::string, AloneFlips> alone_flips_;
  void journal_alone(const std::string& key, const LocalVerdict& lv, const HeldVerdict* held);
  void write_alone_flips(uint64_t now);
  // `store`: false when etcd holds the verdict already and only the journal
  // lacks it. `entry`: the journal entry, when not the plain verdict's.
  void write_verdict(const std::string& key, bool up, const std::string& why, bool was_up, bool store = true,
                     admin::Json entry = {});
  bool write_late_verdict(const std::string& key, LocalVerdict& lv);
  std::vector<admin::StateWriter::Entry> verdict_writes_;  // this round's, until flush_verdicts
  void flush_verdicts();
  void review_local_verdicts(uint64_t now);
  void store_rtt(const std::string& vantage, const std::string& key, double ms);
  std::vector<std::pair<std::string, double>> rtts_;  // (key, ms) from this process, under verdict_mu_
  std::string vantage_ = "local";
  std::vector<healthcheck::Target> current_targets(const Config& cfg) const;
  mutable std::mutex targets_mu_;
  std::string targets_version_;  // under targets_mu_
  // Counters for /metrics (main loop only).
  std::map<std::string, uint64_t> admin_changes_;                   // by action
  std::map<std::string, uint64_t> flips_;                           // by "up"/"down"
  std::map<std::pair<std::string, std::string>, uint64_t> checks_;  // (vantage, "up"/"down") observations
  std::map<std::string, std::vector<uint64_t>> rtt_hist_;           // vantage -> bucket counts (+ sum, count at end)
  std::vector<uint64_t> last_hits_;                                 // by endpoint slot: answers at the last page poll
  uint64_t last_hits_ms_ = 0;
  uint64_t in_touch_since_ms_ = 0;  // etcd answering this node (expire()), since; 0: not
  // Each endpoint's share of its record's answers every kShareSampleMs over
  // the last 15 minutes (the status page's chart), by endpoint slot.
  struct ShareSample {
    uint64_t t_ms;
    std::vector<uint8_t> share;  // 0..kShareScale, or kNoShare
  };
  std::deque<ShareSample> share_samples_;
  std::vector<uint64_t> share_last_;  // by endpoint slot: answers at the last sample
  uint64_t share_last_ms_ = 0;
  void sample_shares(uint64_t now);
  admin::Json share_chart(const zones::Zone& z, const zones::SteeredRecord& r, const zones::RegionMap& regions,
                          const std::vector<admin::Json>& journal, uint64_t now) const;
  bool needs_attention(const zones::StateTable& states, const zones::Zone& z, const zones::SteeredRecord& r) const;
  void note_rtt(const std::string& vantage, double ms);
  uint64_t hits(uint32_t slot) const;
  // Each endpoint's answers (`count`) and those since `last` (`delta`, by
  // endpoint slot, grown as needed); their total. `advance`: `last` takes
  // the current counts.
  uint64_t answers_since(std::span<const zones::SteeredEndpoint> eps, std::vector<uint64_t>& last, bool advance,
                         std::vector<uint64_t>& count, std::vector<uint64_t>& delta) const;
};

}  // namespace vane::server
