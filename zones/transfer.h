// Zone transfers out (DESIGN.md "Zone transfers"): who may transfer a zone
// (transfer.allow), whom to NOTIFY, and the immutable view an AXFR or IXFR
// is served from — the serial, the steered RRsets as a client with no
// location would be answered, and the incremental history. The control
// plane builds a new view whenever one of those changes and publishes it;
// TCP workers read it per transfer request, never per query.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tsig.h"
#include "zone.h"

namespace vane::zones {

// One transfer.allow entry: a network, a key, or both (both must match).
struct TransferAllow {
  uint8_t family = 0;  // 0: any address
  uint8_t prefix = 0;
  uint8_t addr[16] = {};
  std::string key;     // tsig: key name; empty: no key needed
};

struct TransferSpec {
  std::vector<TransferAllow> allow;
  std::vector<std::string> notify;  // "192.0.2.53:53", "[2001:db8::53]:53"
  bool unsigned_ok = false;         // transfer: { unsigned: true } on a zone signed online
  int line = 0;
  bool enabled() const { return !allow.empty() || !notify.empty(); }
};

// primary: (DESIGN.md "Zone transfers", In): vane as a secondary of an
// existing primary. The zone's copy lives in <state_dir>/secondary/.
struct SecondarySpec {
  std::vector<std::string> servers;  // "10.0.0.5:53", tried in order
  std::string key;                   // tsig: key name; empty: unsigned
  uint64_t max_records = 5000000;    // a transfer larger than this is refused whole
  uint32_t max_transfer_ms = 1800000;  // one primary's SOA check and transfer, given up past this (30m)
  int line = 0;
  bool enabled() const { return !servers.empty(); }
};

// Does a request from `family`/`addr`, verified with `key` (empty: not
// signed), pass one of the zone's allow entries?
bool transfer_allowed(const TransferSpec& spec, uint8_t family, const uint8_t* addr, const std::string& key);

// RFC 1982 serial arithmetic: is `a` after `b`?
inline bool serial_gt(uint32_t a, uint32_t b) { return a != b && uint32_t(a - b) < 0x80000000u; }

// RRs in wire form, owners uncompressed and lowercase: [name][type][class][ttl][rdlen][rdata]...
struct RrList {
  std::vector<uint8_t> wire;
  uint32_t count = 0;
  void add(std::span<const uint8_t> owner, uint16_t type, uint32_t ttl, const uint8_t* rdata, uint16_t rdlen);
};

// One IXFR step (RFC 1995 §4): from `from` to `to`, these RRs went and came.
struct IxfrStep {
  uint32_t from = 0, to = 0;
  RrList removed, added;
};

// What one zone is transferred as, now.
struct ZoneTransfer {
  const Zone* zone = nullptr;  // in TransferView::snapshot
  TransferSpec spec;
  uint32_t serial = 0;         // served: the file's serial + the zone's state revision
  // Per steered record (Zone::steered_records() order): the endpoint
  // indices a transfer carries.
  std::vector<std::vector<uint16_t>> steered;
  std::vector<IxfrStep> history;  // oldest first; consecutive (step i's `to` is step i+1's `from`)
  bool skip_dnssec = false;       // signed online, transferred unsigned: leave out DNSKEY, CDS, CDNSKEY
};

struct TransferView {
  std::shared_ptr<const ZoneSet> snapshot;
  std::map<const Zone*, ZoneTransfer> zones;  // zones with transfer: only
  TsigKeys keys;
};

// Transfer counters, shared by the workers and read by /metrics.
struct TransferCounters {
  enum Kind { kAxfr, kIxfr, kKinds };
  enum Outcome { kOk, kRefused, kNotAuth, kOutcomes };
  std::atomic<uint64_t> out[kKinds][kOutcomes] = {};
};

// Hands the current TransferView to workers (one lock per transfer request).
class TransferPublisher {
 public:
  void publish(std::shared_ptr<const TransferView> v) {
    std::lock_guard lock(mu_);
    current_ = std::move(v);
  }
  std::shared_ptr<const TransferView> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  TransferCounters counters;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TransferView> current_;
};

}  // namespace vane::zones
