// DNSSEC online signing (RFC 4033-4035, RFC 6605 ECDSA P-256, RFC 8080
// Ed25519): keys in BIND private-key format (ldns reads and writes them),
// RRSIGs made over the canonical RRset (RFC 4034 §6), and the per-worker
// signature cache that makes a repeated answer cost no crypto.
//
// Keys are loaded at start and reload, never on a DNS worker. Signing runs
// on the worker only on a cache miss.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "error.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace vane::zones {

inline constexpr uint8_t kAlgEcdsaP256 = 13;
inline constexpr uint8_t kAlgEd25519 = 15;
inline constexpr size_t kSigLen = 64;  // both algorithms: r||s, or the Ed25519 signature

// A zone's `dnssec:` block.
struct DnssecConfig {
  bool online = false;
  uint8_t algorithm = kAlgEcdsaP256;
  std::string key_dir;  // resolved at config time (default <state_dir>/keys/<zone>)
  bool cds = true;      // publish CDS and CDNSKEY for the keys the parent's DS should name (RFC 7344)
};

// csk: flags 257, signs everything. ksk: 257, signs the DNSKEY RRset.
// zsk: 256, signs the rest.
enum class KeyRole : uint8_t { kCsk, kKsk, kZsk };
// active: in the DNSKEY RRset and signing. published: in the DNSKEY RRset
// only (a rollover's new key before the switch, or the old one after it).
// retired: neither (kept on disk, out of the zone).
enum class KeyState : uint8_t { kActive, kPublished, kRetired };

const char* role_name(KeyRole r);
const char* state_name(KeyState s);
const char* algorithm_name(uint8_t alg);  // "ecdsap256sha256", "ed25519"
bool algorithm_from_name(const std::string& name, uint8_t& alg);

struct DnssecKey {
  uint16_t tag = 0;
  uint8_t algorithm = 0;
  uint16_t flags = 0;
  KeyRole role = KeyRole::kCsk;
  KeyState state = KeyState::kActive;
  int64_t created = 0;   // unix seconds
  std::string base;      // "<dir>/K<zone>.+013+12345" (.key, .private, .state)
  std::vector<uint8_t> dnskey;  // DNSKEY rdata
  EVP_PKEY* pkey = nullptr;     // owned by the KeySet
};

// One zone's keys, immutable once loaded; shared by the Zone and the admin
// verbs. `id` differs for every load, so signatures cached under an old key
// set are never served under a new one.
class KeySet {
 public:
  KeySet() = default;
  KeySet(const KeySet&) = delete;
  KeySet& operator=(const KeySet&) = delete;
  ~KeySet();

  std::vector<DnssecKey> keys;
  std::vector<uint8_t> signer;  // the zone's origin, lowercase wire
  uint64_t id = 0;
  uint32_t dnskey_ttl = 3600;

  // The key that signs RRsets of `type`: for DNSKEY/CDS/CDNSKEY the active
  // SEP key (257), else the active ZSK, falling back to any active key.
  const DnssecKey* signer_for(uint16_t type) const;
  bool has_active() const;
};

// Reads every K<zone>.+NNN+TTTTT.private/.key pair in `dir`. With
// `create` and no usable key, makes a CSK of `algorithm` (and the dir).
// Errors name the file.
Result<std::shared_ptr<const KeySet>> load_keys(const std::string& origin_text, const DnssecConfig& cfg, bool create,
                                                std::string* made = nullptr);

// Writes a new key's .key, .private and .state (fsynced) and returns it.
Result<DnssecKey> generate_key(const std::string& origin_text, const std::string& dir, uint8_t algorithm, KeyRole role,
                               KeyState state);

// Rewrites a key's .state file (the rollover verbs).
std::optional<Error> write_key_state(const DnssecKey& k);

// DS (SHA-256, RFC 4509) of a key as rdata (key tag, algorithm, digest type
// 2, digest) — the CDS — and in presentation format (`vanectl dnssec ds`).
// `owner` is the zone's lowercase wire name. Empty if the digest fails.
std::vector<uint8_t> ds_rdata(std::span<const uint8_t> owner, const DnssecKey& k);
std::string ds_text(const std::string& origin_text, const DnssecKey& k, uint32_t ttl);
// A key the parent's DS set should name: KSK or CSK, not retired — during a
// rollover the published new one as well as the active old one.
inline bool names_in_ds(const DnssecKey& k) { return k.role != KeyRole::kZsk && k.state != KeyState::kRetired; }
std::string dnskey_text(const std::string& origin_text, const DnssecKey& k, uint32_t ttl);

// One RR's rdata, as stored (uncompressed wire).
struct RdataRef {
  const uint8_t* data;
  uint16_t len;
};

// The fields of an RRSIG before its signature (RFC 4034 §3.1).
struct SigHeader {
  uint16_t type;
  uint8_t algorithm;
  uint8_t labels;
  uint32_t original_ttl;
  uint32_t expiration;
  uint32_t inception;
  uint16_t key_tag;
};

// Signs the RRset (owner: lowercase wire, a wildcard's "*.x" when expanded)
// over its canonical form; writes kSigLen bytes. Thread-safe; reuses a
// thread-local buffer. False when OpenSSL fails.
bool sign_rrset(const DnssecKey& key, std::span<const uint8_t> signer, const SigHeader& h,
                std::span<const uint8_t> owner, std::span<const RdataRef> rdatas, uint8_t* sig);

// Per-thread signature cache: a fixed table allocated on first use, two
// slots per bucket, keyed by a 64-bit hash of the RRset's content (owner,
// type, TTL, rdata) and the key set. Bounded: a flood of distinct names
// evicts, never grows it.
class SigCache {
 public:
  struct Entry {
    uint64_t key;
    uint32_t inception;
    uint32_t expiration;
    uint32_t used;  // last hit (seconds), for eviction
    uint16_t tag;
    uint8_t algorithm;
    uint8_t sig[kSigLen];
  };
  static constexpr size_t kDefaultSlots = 1 << 16;
  // Slots (rounded up to a power of two); before the first insert only.
  void set_capacity(size_t n) {
    slots_n_ = 2;
    while (slots_n_ < n) slots_n_ <<= 1;
  }
  size_t capacity() const { return slots_n_; }
  // Signatures are valid from an hour before they are made until 14 days
  // after, and are made anew once 7 days old.
  static constexpr uint32_t kBackdate = 3600, kValidity = 14 * 86400, kRefresh = 7 * 86400;

  // The live entry for `key` at `now`, or nullptr.
  const Entry* find(uint64_t key, uint32_t now);
  // A slot to fill for `key` (the bucket's other or oldest slot).
  Entry& insert(uint64_t key, uint32_t now);
  // Empties a slot whose signing failed.
  void drop(Entry& e) {
    e.key = 0;
    --live_;
  }
  size_t size() const { return live_; }

 private:
  std::unique_ptr<Entry[]> slots_;
  size_t slots_n_ = kDefaultSlots;
  size_t live_ = 0;
};

// Content hashing for cache keys: cheap, not cryptographic.
inline uint64_t hash_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  h *= 0xFF51AFD7ED558CCDULL;
  return h ^ (h >> 32);
}
uint64_t hash_bytes(uint64_t h, const uint8_t* p, size_t n);

}  // namespace vane::zones
