// Zone transfers in: vane as a secondary of an existing primary (DESIGN.md
// "Zone transfers", In). One refresh asks the primaries for their SOA and,
// when theirs is newer, pulls the zone by IXFR (RFC 1995) from the copy's
// serial, or by AXFR (RFC 5936) when there is no copy, the primary has no
// history for it, or the operator asked. The new copy is checked whole —
// every record inside the zone, at most max_zone_size records, TSIG on
// every message, and it must load as a zone — before it replaces the old
// one on disk; anything wrong leaves the old copy as it was. Blocking: runs
// on one of XfrInPool's threads, never a worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "transfer.h"
#include "tsig.h"

struct ldns_struct_rdf;
struct ldns_struct_rr;
typedef struct ldns_struct_rdf ldns_rdf;
typedef struct ldns_struct_rr ldns_rr;

namespace vane::server {

// A copy of a zone: its records as master-file lines ("owner ttl IN type
// rdata"), keyed by the line without its TTL (what IXFR deletes by).
using ZoneCopy = std::map<std::string, std::string>;

struct XfrInRequest {
  std::string zone;  // "corp.example.org."
  zones::SecondarySpec spec;
  std::optional<zones::TsigKey> key;
  std::optional<uint32_t> have_serial;  // the copy's serial; none: no copy
  std::shared_ptr<const ZoneCopy> have;
  bool force_axfr = false;  // vanectl zone retransfer
  std::string file;         // where the copy is kept
  int timeout_ms = 5000;    // per server and step (connect, each message)
  int cancel_fd = -1;       // readable (an eventfd written once): vaned is stopping; give up at once
};

struct XfrInResult {
  bool ok = false;       // a primary answered and the copy is current
  bool updated = false;  // a new copy was written to the file
  std::string server;    // the primary that answered
  std::string kind;      // "AXFR", "IXFR", "IXFR as AXFR", "up to date"
  std::string error;     // what went wrong, per primary tried
  uint32_t serial = 0;
  uint32_t refresh = 0, retry = 0, expire = 0;  // seconds, from the primary's SOA
  std::shared_ptr<const ZoneCopy> copy;         // the new copy (when updated)
  size_t messages = 0, records = 0;
  std::vector<std::string> silent;  // primaries tried that did not answer (no connection, timed out)
};

XfrInResult refresh_zone(const XfrInRequest& req);

// The threads refreshes run on: their own, not libuv's shared work queue,
// where four slow primaries would hold up every reload behind them. At most
// `threads` transfers at once (BIND's transfers-in default is 10); more wait
// their turn in order. Results are taken on the control plane's loop, which
// `wake` (called from a pool thread) tells.
//
// A primary that did not answer is tried after the zone's other primaries
// for the next `silent_ms` (or until it answers): with one primary of two
// hung, each refresh would otherwise wait out its timeout first — 20 000
// zones, 10 at a time, 5 s each: hours before the last is served.
//
// A refresh counts against the primary it tries first; at most
// `per_primary` of them run at once (BIND's transfers-per-ns), and a queued
// refresh whose primary is at its limit lets the ones behind it pass. So a
// primary that holds every refresh (feeding a byte at a time, up to its
// max_transfer_time) never takes all the threads: the zones of the other
// primaries go on being refreshed beside it.
class XfrInPool {
 public:
  XfrInPool(size_t threads, size_t per_primary, uint32_t silent_ms, std::function<void()> wake);
  // Joins the threads: each ends with the refresh it runs (which gives up
  // at once when its cancel_fd fires); the ones still waiting are dropped.
  ~XfrInPool();
  void submit(std::string zone, XfrInRequest req);
  std::vector<std::pair<std::string, XfrInResult>> take_done();
  // At stop: no new refresh starts, `wake` is never called again.
  void close();
  // The primaries tried last now, and how long ago each last did not answer.
  std::vector<std::pair<std::string, std::chrono::milliseconds>> silent() const;

 private:
  using Queue = std::deque<std::pair<std::string, XfrInRequest>>;
  void run();
  Queue::iterator next();  // the first queued refresh whose primary is below its limit
  const std::string& first_tried(const std::vector<std::string>& servers) const;
  void silent_last(std::vector<std::string>& servers);
  bool heard(const XfrInResult& res);  // true: a primary newly found silent
  const size_t max_threads_, per_primary_;
  const uint32_t silent_ms_;
  std::map<std::string, size_t> running_;                                // primary tried first -> refreshes running
  std::map<std::string, std::chrono::steady_clock::time_point> silent_;  // primary -> when it last did not answer
  std::function<void()> wake_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Queue queue_;
  std::vector<std::pair<std::string, XfrInResult>> done_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool closed_ = false;
};

struct Soa {
  uint32_t serial = 0, refresh = 0, retry = 0, expire = 0;
};

// The answer stream of one AXFR or IXFR request, fed message by message as
// it arrives (also by the fuzzer): every message checked (id, rcode, TSIG),
// every record inside the zone, the records applied to a copy — the whole
// zone for AXFR, the steps over `have` for IXFR.
class XfrInParser {
 public:
  enum Status { kMore, kDone, kError };
  // `have_serial`/`have` set: an IXFR from that copy; unset: an AXFR.
  XfrInParser(const std::string& zone, std::optional<uint32_t> have_serial, std::shared_ptr<const ZoneCopy> have,
              uint64_t max_records, zones::TsigClient* tsig, uint16_t id);
  ~XfrInParser();
  Status feed(std::span<const uint8_t> msg);
  Status status() const { return status_; }
  const std::string& error() const { return error_; }
  const std::string& kind() const { return kind_; }  // AXFR, IXFR, IXFR as AXFR, up to date
  const Soa& soa() const { return first_; }         // the new copy's
  size_t messages() const { return messages_; }
  std::shared_ptr<ZoneCopy> take_copy() { return std::move(copy_); }

 private:
  Status take(const ldns_rr* rr);
  int add(const std::string& line);
  void finish();

  std::unique_ptr<ldns_rdf, void (*)(ldns_rdf*)> apex_;
  std::optional<uint32_t> have_serial_;
  bool ixfr_;
  uint64_t max_records_;
  zones::TsigClient* tsig_;
  uint16_t id_;
  std::shared_ptr<ZoneCopy> copy_;
  enum State { kStart, kSecond, kFull, kDeleting, kAdding } state_ = kStart;
  Status status_ = kMore;
  Soa first_;
  std::string first_line_, kind_, error_;
  uint32_t step_to_ = 0;
  size_t messages_ = 0;
};

// Reads a copy written by refresh_zone back (at start): its records and its
// SOA's serial and timers. False when the file is missing or unreadable.
bool read_copy(const std::string& file, ZoneCopy& copy, uint32_t& serial, uint32_t& refresh, uint32_t& retry,
               uint32_t& expire);

}  // namespace vane::server
