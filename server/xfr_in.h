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
  std::optional<uint32_t> have_serial;  // the copy's serial (the copy: `file`, read for an IXFR); none: no copy
  bool force_axfr = false;  // vanectl zone retransfer
  std::string file;         // where the copy is kept
  int timeout_ms = 5000;    // per server and step (connect, each message)
  int cancel_fd = -1;       // readable (an eventfd written once): vaned is stopping; give up at once
  // Called (on the refresh's thread) with a primary that sent a message:
  // it is there, whatever it said.
  std::function<void(const std::string& server)> answered;
};

struct XfrInResult {
  bool ok = false;       // a primary answered and the copy is current
  bool updated = false;  // a new copy was written to the file
  std::string server;    // the primary that answered
  std::string kind;      // "AXFR", "IXFR", "IXFR as AXFR", "up to date"
  std::string error;     // what went wrong, per primary tried
  uint32_t serial = 0;
  uint32_t refresh = 0, retry = 0, expire = 0;  // seconds, from the primary's SOA
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
// A primary not heard from yet (since vaned started, or since it was last
// silent) is asked by one refresh at a time. The refreshes queued behind
// it wait for its first message; once it has kept them waiting
// `kFirstAnswer`, they go to their zone's next primary. So a hung first
// primary costs one refresh its timeout, not every thread's, and the zones
// are pulled from the second meanwhile.
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
  using Clock = std::chrono::steady_clock;
  struct Job {
    uint64_t seq;  // the order refreshes were asked in
    std::string zone;
    XfrInRequest req;
  };
  // Refreshes waiting, by their zones' primaries as configured: those of
  // one list wait on the same limits, so finding the next is a look at each
  // list's oldest, however many zones wait (the whole queue, with 20 000
  // zones asked at a start, each time one was asked for or ended).
  using Queue = std::map<std::vector<std::string>, std::deque<Job>>;
  static constexpr std::chrono::milliseconds kFirstAnswer{500};
  // What the pool knows of one primary.
  struct Primary {
    size_t running = 0;                       // refreshes trying it first
    bool answered = false;                    // a message since vaned started, or since it was last silent
    Clock::time_point asked;                  // when the refresh asking it, not heard from yet, started
    std::optional<Clock::time_point> silent;  // when it last did not answer
  };
  // Where a primary comes in a refresh's order now: the ones to ask, those
  // keeping their first answer waiting past kFirstAnswer, the silent ones.
  enum class Rank { kAsk, kSlow, kSilent };
  Rank rank(const std::string& server, Clock::time_point now) const;
  bool is_silent(const Primary& p, Clock::time_point now) const;
  void run();
  // The list whose oldest refresh is the oldest of those whose first primary
  // is below its limit; else end(), and `until` when a limit may lift
  // without a refresh ending.
  Queue::iterator next(Clock::time_point now, Clock::time_point& until);
  const std::string& first_tried(const std::vector<std::string>& servers, Clock::time_point now) const;
  void answered(const std::string& server);
  bool heard(const XfrInResult& res);  // true: a primary newly found silent
  const size_t max_threads_, per_primary_;
  const std::chrono::milliseconds silent_for_;
  std::map<std::string, Primary> primaries_;
  std::function<void()> wake_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Queue queue_;
  size_t queued_ = 0;
  uint64_t seq_ = 0;
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
  // `have_serial`/`have` set: an IXFR from that copy, which the parser
  // takes and edits in place (it is the copy it returns); unset: an AXFR.
  XfrInParser(const std::string& zone, std::optional<uint32_t> have_serial, std::shared_ptr<ZoneCopy> have,
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

// Reads a copy written by refresh_zone back: its records (the base of an
// IXFR) and its SOA's serial and timers. False when the file is missing or
// unreadable. read_copy_soa stops at the SOA (written first): what a start
// needs of each copy, without holding its records.
bool read_copy(const std::string& file, ZoneCopy& copy, uint32_t& serial, uint32_t& refresh, uint32_t& retry,
               uint32_t& expire);
bool read_copy_soa(const std::string& file, uint32_t& serial, uint32_t& refresh, uint32_t& retry, uint32_t& expire);

}  // namespace vane::server
