// Builds the authoritative response to one query from the current ZoneSet.
// Hot path: no allocation, no locks, no syscalls; returns an rcode in the
// packet, never throws.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/packet.h"
#include "zone.h"

namespace vane::server {

enum class Transport : uint8_t { kUdp, kTcp };
inline constexpr uint8_t kOpcodeNotify = 4;

struct AnswerOptions {
  uint16_t edns_udp_size = 1232;  // our advertised and enforced UDP payload limit (DNS flag day 2020)
  uint32_t sig_cache_entries = 65536;  // per thread, allocated on its first signed answer
};

// Per-worker query counters: one writer (the worker), plain load+store;
// summed over workers when /metrics is scraped.
struct QueryCounters {
  static constexpr int kQtypes = 16;                   // see qtype_bucket()
  std::atomic<uint64_t> answers[2][kQtypes][17] = {};  // [udp, tcp][qtype bucket][rcode, 16 = BADVERS]
  std::atomic<uint64_t> truncated[2] = {};
  std::atomic<uint64_t> rrl_dropped{0}, rrl_slipped{0};  // UDP answers rate limiting held back
  // DNSSEC: RRSIGs served from the cache, made on a miss (and the ns spent
  // making them), and signings that failed (the RRset went out unsigned).
  std::atomic<uint64_t> sig_hits{0}, sig_misses{0}, sig_ns{0}, sig_failures{0};
  // UDP receive loop: recvmmsg batches with a query in them, and coalescing waits.
  std::atomic<uint64_t> udp_batches{0}, udp_waits{0};
  // dnstap: messages queued for the writer, and dropped (its queue full).
  std::atomic<uint64_t> dnstap_sent{0}, dnstap_dropped{0};
  zones::EndpointHits steered;  // steered answers per endpoint slot

  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};
int qtype_bucket(uint16_t qtype);
const char* qtype_bucket_name(int bucket);

// Per-worker scratch reused for every query (reset, never reallocated).
struct QueryContext {
  dns::Query query;
  dns::NameBuf chain;                     // current name while following a CNAME chain
  zones::Client source;                   // the packet's source address (set per packet by the worker)
  zones::Client client;                   // who steering answers for: ECS subnet, else source
  zones::Pick pick;                       // scratch for steered RRsets
  const uint8_t* cname_target = nullptr;  // target of the last steered CNAME written
  uint8_t ecs_scope = 0;                  // RFC 7871 scope of this answer
  const zones::Zone* zone = nullptr;      // the zone that answered (rate limiting classes NXDOMAIN by it)
  uint64_t rng = 0x9E3779B97F4A7C15ULL;   // xorshift state; seed per worker
  QueryCounters* counters = nullptr;      // the worker's; none in unit tests
  // DNSSEC: the thread's signature cache and the wall clock (unix seconds,
  // set per batch: RRSIG validity). `dnssec` is per query: DO was set.
  zones::SigCache sigs;
  uint32_t wall = 0;
  bool dnssec = false;
  // A NOTIFY from a secondary zone's primary was accepted (the worker tells the control plane).
  const zones::Zone* notified = nullptr;
  // Wildcard expansions answered so far: each needs an NSEC, in authority,
  // proving the next closer name does not exist (RFC 4035 §3.1.3.3).
  struct WildcardProof {
    const zones::Zone* zone;
    uint8_t next_closer[dns::kMaxNameLen + 1];
  };
  static constexpr int kMaxWildcardProofs = 4;
  WildcardProof wildcard_proofs[kMaxWildcardProofs];
  int wildcard_proof_count = 0;
  // dnstap: set by the worker for a query it logs; the answer path then
  // keeps the (first) steering decision for the message's `extra`.
  bool keep_decision = false;
  struct Decision {
    const zones::Zone* zone = nullptr;
    const zones::SteeredRecord* rec = nullptr;
    zones::Pick pick;
  } decision;
};
// The steering decision of `ctx` as dnstap's `extra` ("" when none): the
// record, policy, endpoints answered (region, tier), the endpoints down or
// drained, and the ECS scope. Writes at most `cap` bytes into `buf`.
size_t format_decision(const QueryContext& ctx, const zones::ZoneSet& zs, char* buf, size_t cap);

// One RR's rdata from a zone (uncompressed, lowercase names), with the
// names RFC 1035 lets us compress compressed.
bool put_rdata(dns::Writer& w, zones::RdataNames names, const uint8_t* data, uint16_t len);

// A socket address as steering sees a client (v4, v6, v4-mapped v6 as v4).
zones::Client client_of(const sockaddr_storage& peer);
// Fills ctx.source from a socket address.
void set_source(QueryContext& ctx, const sockaddr_storage& peer);

// Writes the response to `req` into `out` (at most `cap` bytes) and returns
// its length; 0 means drop silently (not a query, or hopelessly short).
size_t answer(const zones::ZoneSet& zones, std::span<const uint8_t> req, std::span<uint8_t> out, Transport transport,
              const AnswerOptions& opts, QueryContext& ctx);

}  // namespace vane::server
