// The compiled, immutable form of one zone: a few contiguous vectors (names,
// nodes, RRsets, rdata) and an open-addressing index, freed as a whole.
// Built once by zone_loader; read concurrently by every DNS worker, lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "dns/name.h"
#include "dnssec.h"
#include "steering.h"

namespace vane::server {
class DnstapSink;
}

namespace vane::zones {

inline constexpr uint32_t kNone = UINT32_MAX;

// How an RRset's rdata may contain names the encoder can compress
// (RFC 3597 §4: only the RFC 1035 types; SRV, DNAME and newer types never).
enum class RdataNames : uint8_t { kNone, kOne /*NS CNAME PTR*/, kMx, kSoa };

struct RRset {
  uint16_t type;
  uint16_t count;
  uint32_t ttl;
  uint32_t rdata_off;   // into Zone::rdata: count × ([u16 len][len bytes])
  uint32_t rdata_size;
  uint32_t extra_off;   // into Zone::extra: node ids whose A/AAAA go in additional
  uint16_t extra_count;
  RdataNames names;
  bool steered;         // computed per query: rdata_off is the SteeredRecord index, count is 1
};

enum NodeFlags : uint8_t {
  kNodeApex = 1,
  kNodeDelegation = 2,    // NS below the apex: a zone cut
  kNodeWildcardChild = 4, // "*.<this>" exists
  kNodeEmpty = 8,         // empty non-terminal (RFC 4592 §2.2.2)
  kNodeAddress = 16,      // has A or AAAA (candidate for additional)
  kNodeDnameScope = 32,   // a DNAME at this node or above it (RFC 6672)
};

struct Node {
  uint32_t name_off;     // into Zone::names (lowercase wire)
  uint8_t name_len;
  uint8_t flags;
  uint16_t rrset_count;
  uint32_t rrset_begin;  // into Zone::rrsets, sorted by type
  uint32_t cut;          // topmost zone cut at or above this node, or kNone
};

// Result of walking a name down a zone.
struct Lookup {
  uint32_t node = kNone;      // exact match
  uint32_t encloser = kNone;  // closest encloser when no exact match
  uint32_t cut = kNone;       // zone cut governing the name (referral)
};

class Zone {
 public:
  std::span<const uint8_t> origin() const { return name_of(apex_); }
  const std::string& origin_text() const { return origin_text_; }
  // The master file it was loaded from (for status; not used to answer).
  const std::string& file() const { return file_; }
  void set_file(std::string f) { file_ = std::move(f); }
  // Every file it was read from, as the read found it: the master file
  // first, then what it $INCLUDEs in the order read (a reload reads a zone
  // again when one of them changed). `id`: device, inode, size, mtime (s,
  // ns) when opened. `racy`: written within kRacySeconds of the open (a
  // write in the same tick of the file system's clock, of the same size,
  // would not show in `id`); then `contents` is a hash of the very bytes
  // parsed when the file was read into memory, and nothing when it was
  // mapped (what was parsed is not known: read again at the next reload).
  // A fingerprint taken from these describes exactly what was read,
  // whatever is written to the files meanwhile.
  using FileId = std::array<uint64_t, 5>;
  static FileId file_id(const struct stat& st) {
    return {uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size), uint64_t(st.st_mtim.tv_sec),
            uint64_t(st.st_mtim.tv_nsec)};
  }
  static constexpr int64_t kRacySeconds = 2;  // git's "racily clean" margin
  struct Source {
    std::string path;
    FileId id{};
    bool racy = false;
    std::optional<uint64_t> contents;
  };
  const std::vector<Source>& sources() const { return sources_; }
  void set_sources(std::vector<Source> s) { sources_ = std::move(s); }
  // Online signing: the zone's keys, or nullptr when it is not signed.
  const KeySet* keys() const { return keys_.get(); }
  const std::shared_ptr<const KeySet>& key_set() const { return keys_; }
  void set_keys(std::shared_ptr<const KeySet> k) { keys_ = std::move(k); }
  uint32_t serial() const { return serial_; }  // the file's
  // The serial answers carry when the zone is transferred (nullptr: the
  // file's): see StateTable::zone_serial.
  const std::atomic<uint32_t>* served_serial() const { return served_serial_; }
  void set_served_serial(const std::atomic<uint32_t>* s) { served_serial_ = s; }
  // A secondary zone (primary: in the config): who may NOTIFY it, and
  // whether its copy is current (StateTable::zone_expired).
  bool secondary() const { return expired_ != nullptr; }
  bool expired() const { return expired_ && expired_->load(std::memory_order_relaxed); }
  void set_secondary(const std::atomic<bool>* expired, std::vector<Client> notify_from) {
    expired_ = expired;
    notify_from_ = std::move(notify_from);
  }
  std::span<const Client> notify_from() const { return notify_from_; }
  uint32_t apex() const { return apex_; }
  const RRset* soa() const { return find_rrset(apex_, dns::kTypeSOA); }
  uint32_t negative_ttl() const { return negative_ttl_; }
  size_t node_count() const { return nodes_.size(); }
  size_t record_count() const { return record_count_; }
  size_t memory_bytes() const;

  const Node& node(uint32_t id) const { return nodes_[id]; }
  std::span<const uint8_t> name_of(uint32_t id) const {
    return {names_.data() + nodes_[id].name_off, nodes_[id].name_len};
  }
  std::span<const RRset> rrsets(uint32_t id) const {
    return {rrsets_.data() + nodes_[id].rrset_begin, nodes_[id].rrset_count};
  }
  const RRset* find_rrset(uint32_t id, uint16_t type) const;
  const uint8_t* rdata(const RRset& rs) const { return rdata_.data() + rs.rdata_off; }
  std::span<const uint32_t> extra(const RRset& rs) const {
    return {extra_.data() + rs.extra_off, rs.extra_count};
  }

  // Steered records (see steering.h), referenced by RRset::rdata_off.
  const SteeredRecord& steered(const RRset& rs) const { return steered_[rs.rdata_off]; }
  std::span<const SteeredEndpoint> endpoints(const SteeredRecord& r) const {
    return {steered_eps_.data() + r.ep_begin, r.ep_count};
  }
  const uint8_t* steered_rdata(const SteeredEndpoint& ep) const { return steered_rdata_.data() + ep.rdata_off; }
  // What an endpoint answers, in text: its address, or its CNAME target.
  std::string answer_text(const SteeredRecord& r, const SteeredEndpoint& ep) const;
  const SteeredInfo& info(const SteeredRecord& r) const { return steered_info_[r.info]; }
  std::span<const SteeredRecord> steered_records() const { return steered_; }

  // Exact node for a lowercase wire name, or kNone.
  uint32_t find(std::span<const uint8_t> wire) const { return find(wire, dns::hash_name(wire)); }
  uint32_t find(std::span<const uint8_t> wire, uint64_t hash) const;

  // Walks `qname` (which must be at or below the origin) per RFC 1034 §4.3.2.
  Lookup lookup(const dns::NameBuf& qname) const;

  // The topmost node strictly above `qname` that owns a DNAME, or kNone
  // (RFC 6672 §3.2: substitution happens where the descent first meets one).
  // `near` is the node lookup() found (exact or closest encloser).
  uint32_t dname_above(const dns::NameBuf& qname, uint32_t near) const;

  // Node of "*.<encloser>" when the encloser has a wildcard child.
  uint32_t wildcard_of(uint32_t encloser) const;

 private:
  friend class ZoneBuilder;
  std::vector<uint8_t> names_;
  std::vector<Node> nodes_;
  std::vector<RRset> rrsets_;
  std::vector<uint8_t> rdata_;
  std::vector<uint32_t> extra_;
  std::vector<SteeredRecord> steered_;
  std::vector<SteeredEndpoint> steered_eps_;
  std::vector<uint8_t> steered_rdata_;
  std::vector<SteeredInfo> steered_info_;
  std::vector<uint32_t> index_;  // open addressing: node id or kNone
  std::vector<uint32_t> index_hash_;  // high 32 bits of each slot's hash
  uint32_t index_mask_ = 0;
  uint32_t apex_ = kNone;
  uint32_t serial_ = 0;
  uint32_t negative_ttl_ = 0;
  size_t record_count_ = 0;
  uint8_t origin_labels_ = 0;
  std::string origin_text_;
  std::string file_;
  std::vector<Source> sources_;
  std::shared_ptr<const KeySet> keys_;
  const std::atomic<uint32_t>* served_serial_ = nullptr;
  const std::atomic<bool>* expired_ = nullptr;
  std::vector<Client> notify_from_;
};

// Every served zone, immutable once published. Workers hold a reference and
// swap it only between batches; a reload builds a new one off the hot path.
class ZoneSet {
 public:
  // Zones are shared between snapshots: a reload of one zone builds a new
  // set around the others, untouched.
  explicit ZoneSet(std::vector<std::shared_ptr<const Zone>> zones);
  explicit ZoneSet(std::vector<std::unique_ptr<Zone>> zones);
  // Most specific zone containing `qname` minus its first `skip` labels, or
  // nullptr (→ REFUSED).
  const Zone* find_zone(const dns::NameBuf& qname, size_t skip = 0) const;
  std::span<const std::shared_ptr<const Zone>> zones() const { return zones_; }
  uint64_t generation = 0;
  // Steering context shared by every zone: live endpoint state (owned by
  // the server, outlives snapshots) and the client-network -> region map.
  const StateTable* states = nullptr;
  RegionMap regions;
  RrlParams rrl;
  // The query log sink (server/dnstap.h), or none: a reload swaps it with the zones.
  std::shared_ptr<server::DnstapSink> dnstap;

 private:
  std::vector<std::shared_ptr<const Zone>> zones_;
  std::vector<uint32_t> index_;   // open addressing over origins
  std::vector<uint64_t> index_hash_;
  uint32_t index_mask_ = 0;
  uint8_t min_labels_ = 0, max_labels_ = 0;
};

}  // namespace vane::zones
