// The running daemon: config, zone snapshots, sockets and DNS workers.
// Owns reload: a new ZoneSet is built off the hot path and swapped in; a
// failed build leaves the old one serving.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "worker.h"

namespace vane::server {

// What a zone was built from: its files by inode, size and modification
// time with its part of the config, and, while one of the files was written
// in the last 2 s (git's "racily clean" files: two writes of one size within
// a tick of the file system's clock look alike), their contents too. A later
// fingerprint compares the contents only while the earlier one was racy, so
// a file ageing past the 2 s does not make its zone look changed. Taken
// after a read, it holds the contents that read parsed; a racy file too
// large to read into memory (mapped) makes its zone read again at the next
// reload instead.
struct ZoneFingerprint {
  uint64_t files = 0;     // stat identities and the config
  uint64_t contents = 0;  // every file's bytes; taken when racy now or then
  bool racy = false;      // a file was written within 2 s of taking it
  bool unknown = false;   // a racy file was read by mapping it: what was parsed is not known
  // Whether `now` (taken knowing this one) shows nothing changed since.
  bool same_as_before(const ZoneFingerprint& now) const {
    return files == now.files && !unknown && (!racy || contents == now.contents);
  }
};

// Loads every zone of `cfg`; logs one line per zone. Any error names file:line.
// Steered records get their endpoint state slots from `states`. A signed
// zone without keys gets a CSK made when `create_keys` (not for `vaned check`).
// With `previous` (the last build's), a zone whose files and config are
// unchanged is taken from it instead of read again; `next` gets this
// build's (see ZoneCache).
struct CachedZone {
  ZoneFingerprint fingerprint;
  std::shared_ptr<const zones::Zone> zone;
};
using ZoneCache = std::unordered_map<std::string, CachedZone>;  // origin text -> what it was built from

// Zones read while vane.yaml is still being parsed, at start: the parse
// hands over each `{ name, file }` entry of `zones:` as it reads it
// (load_config's hook), and once there are kMinZones of them the other
// cores read them while the parse goes on. build_zone_set takes a zone read
// so when nothing in the final config adds to its { name, file } (no record
// steers in it, no transfer, no signing) and the read succeeded, with the
// fingerprint of the file as that read opened it: a file changed since is
// read again at the next reload. Anything else is read there as usual. A
// config that turns out bad throws them all away.
class ZonePreload {
 public:
  static constexpr size_t kMinZones = 64;
  struct Item {
    zones::ZoneSource src;
    ZoneFingerprint fingerprint;
    std::optional<Result<std::unique_ptr<zones::Zone>>> result;
    std::string line;  // "loaded", logged when taken
  };

  ZonePreload();
  ~ZonePreload();
  std::function<void(const std::string& origin, const std::string& file)> hook();
  // No more reads: waits for those begun. Then find() may be called.
  void finish();
  Item* find(const std::string& name);  // "example.com."
  size_t read() const { return read_.load(); }    // zones read ahead so far
  size_t taken() const { return taken_.load(); }  // of them, taken by build_zone_set
  void took() { ++taken_; }

 private:
  void add(const std::string& origin, const std::string& file);
  void run();

  const size_t helpers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  size_t next_ = 0;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
  std::unordered_map<std::string, Item*> by_name_;
  std::atomic<size_t> read_{0}, taken_{0};
};

Result<std::shared_ptr<zones::ZoneSet>> build_zone_set(const Config& cfg, zones::StateTable& states,
                                                       bool quiet = false, bool create_keys = true,
                                                       const ZoneCache* previous = nullptr, ZoneCache* next = nullptr,
                                                       size_t* reread = nullptr, ZonePreload* preload = nullptr);

struct ReloadOutcome {
  bool ok = false;
  std::string message;  // error (file:line) or summary
};

class Server {
 public:
  // `reload_source` re-reads the config (nullptr: reuse the current one, e.g. the embedded demo).
  using ConfigSource = std::function<Result<Config>()>;
  Server(Config cfg, ConfigSource reload_source);
  ~Server();

  // Binds, loads zones, starts workers. Returns an error if any of it fails.
  std::optional<Error> start(uv_loop_t* main_loop, ZonePreload* preload = nullptr);
  // Reload from the main loop (SIGHUP, admin socket): built on a pool
  // thread, committed on the main loop; serialised with zone reloads.
  // `done` runs on the main loop with the outcome.
  using ReloadDone = std::function<void(const ReloadOutcome&)>;
  void reload_async(ReloadDone done = {});
  // One zone only (vanectl reload ZONE, a secondary's new copy): its files
  // are read again with the current config; every other zone of the
  // snapshot is kept as it is (shared, not copied). Same rules: a bad file
  // is refused with file:line and the old copy keeps serving. Zone reloads
  // queued while another reload runs are built and published together,
  // each answered with its own outcome.
  void reload_zone_async(const std::string& zone, ReloadDone done);
  // Runs on the main loop after every successful reload (SIGHUP or admin).
  void set_on_reloaded(std::function<void()> f) { on_reloaded_ = std::move(f); }
  // Stops the workers. A reload still being read when this runs is
  // abandoned: nothing of it is applied and its callers are not answered.
  void stop();
  // Before start() or on the main loop (reloads commit there).
  const Config& config() const { return cfg_; }
  uint64_t config_generation() const { return config_generation_; }  // moves each time config() is replaced

  // Safe from the main loop at any time (reload does not touch these).
  std::shared_ptr<const zones::ZoneSet> snapshot() const { return publisher_.current(); }
  // Live endpoint state (health, overrides, admin weights); outlives snapshots.
  zones::StateTable& states() { return *states_; }
  // What zone transfers are served from (the control plane publishes, TCP workers read).
  zones::TransferPublisher& transfers() { return transfers_; }
  // NOTIFYs the workers accepted for secondary zones (the control plane takes them).
  NotifyInbox& notifies() { return notifies_; }
  const std::string& config_path() const { return config_path_; }
  const std::vector<std::string>& listen() const { return listen_; }  // bound addresses
  unsigned threads() const { return threads_; }
  // For /metrics (main loop): every worker's counters, and reload outcomes.
  std::vector<const Worker*> workers() const {
    std::vector<const Worker*> out;
    for (const auto& w : workers_) out.push_back(w.get());
    return out;
  }
  // The geo database file (geo: database): watched once a second; a new
  // file (inode, size or mtime) triggers a reload, and a file that cannot
  // be used is logged and counted while the old tables keep serving.
  uint64_t geo_errors() const { return geo_errors_; }
  const std::string& geo_last_error() const { return geo_last_error_; }
  uint64_t reloads_ok() const { return reloads_ok_.load(); }
  uint64_t reloads_failed() const { return reloads_failed_.load(); }
  double uptime_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(); }

 private:
  static Result<UdpOptions> udp_receive(const Config& cfg);  // udp.receive with `auto` decided
  struct Staged;
  struct ReloadRequest {
    std::string zone;  // empty: the whole config
    std::vector<ReloadDone> done;
  };
  std::unique_ptr<Staged> stage_reload() const;                         // pool thread
  std::unique_ptr<Staged> stage_zone_reload(const std::vector<std::string>& zones) const;  // pool thread
  // One outcome for a full reload; for zones, one per zone staged, in order.
  std::vector<ReloadOutcome> commit(Staged& st);  // main loop
  void run_next_reload();
  void check_geo_file();
  void every_second(uv_timer_t& t, bool& live, uv_timer_cb cb);
  // The query log sink for `cfg` on `set`: the current one when unchanged.
  std::optional<Error> attach_dnstap(const Config& cfg, const zones::ZoneSet* current, zones::ZoneSet& set) const;
  void publish(std::shared_ptr<zones::ZoneSet> z);
  void collect_retired();

  Config cfg_;
  ConfigSource reload_source_;
  uv_loop_t* loop_ = nullptr;
  std::unique_ptr<zones::StateTable> states_ = std::make_unique<zones::StateTable>();
  SnapshotPublisher publisher_;
  zones::TransferPublisher transfers_;
  NotifyInbox notifies_;
  std::unique_ptr<TcpAdmission> admission_;
  std::vector<std::unique_ptr<Worker>> workers_;
  ZoneCache zone_cache_;  // what the served zones were built from (written on the main loop)
  std::mutex retired_mu_;
  std::vector<std::shared_ptr<const zones::ZoneSet>> retired_;
  uv_timer_t retire_timer_, geo_timer_;
  bool geo_timer_live_ = false;
  std::string geo_seen_;  // the file's identity last looked at
  uint64_t geo_errors_ = 0;
  std::string geo_last_error_;
  bool retire_timer_live_ = false;
  uv_work_t reload_work_;
  bool reload_running_ = false;
  bool stopped_ = false;  // stop() ran: no reload starts or commits
  std::deque<ReloadRequest> reload_queue_;
  std::vector<ReloadRequest> reload_current_;  // a full reload, or the zone reloads batched
  std::unique_ptr<Staged> staged_;
  uint64_t generation_ = 0;
  std::function<void()> on_reloaded_;
  uint64_t config_generation_ = 1;
  std::atomic<uint64_t> reloads_ok_{0}, reloads_failed_{0};
  const std::string config_path_;
  std::vector<std::string> listen_;
  const unsigned threads_;
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace vane::server
