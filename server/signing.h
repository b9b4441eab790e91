// The DNSSEC half of answering: RRSIGs for the RRsets answer.cpp writes
// (from the thread's cache, signed on a miss) and the NSEC records of
// compact denial of existence (RFC 9824) and of wildcard answers.
// Hot path: a cache hit hashes the RRset and copies a signature.
#pragma once

#include <cstdint>

#include "answer.h"
#include "dns/packet.h"
#include "zone.h"

namespace vane::server {

// Whether this answer from `z` is signed: DO set and the zone signs.
inline bool signs(const QueryContext& ctx, const zones::Zone& z) {
  return ctx.dnssec && z.keys();
}

// What an RRSIG covers: one of a static RRset, the endpoints just picked
// for a steered one (ctx.pick), or one explicit rdata (an NSEC).
struct Signed {
  uint16_t type;
  uint32_t original_ttl;
  const uint8_t* name;  // the owner signed under, lowercase wire ("*.x" for a wildcard expansion)
  const zones::RRset* rrset = nullptr;
  const uint8_t* rdata = nullptr;  // explicit: [len] bytes
  uint16_t rdlen = 0;
};

// Writes the RRSIG for `s` with owner `owner_ptr` (a compression pointer to
// the RRset's owner as written) and TTL `ttl`. False when it does not fit.
// No key for the type, or a failed signing: nothing written, true.
bool put_rrsig(dns::Writer& w, const zones::Zone& z, const Signed& s, uint16_t owner_ptr, const uint8_t* owner_name,
               uint32_t ttl, uint16_t& count, QueryContext& ctx);

// The NSEC (and its RRSIG) that says `name` exists with the types of `node`
// minus `qtype` (kNone: no types; `nxname`: RFC 9824's NXNAME marker).
// Next name "\0.<name>" covers nothing else (RFC 9824 §3).
bool put_compact_nsec(dns::Writer& w, const zones::Zone& z, const uint8_t* name, uint16_t name_ptr, uint32_t node,
                      uint16_t qtype, bool nxname, uint16_t& count, QueryContext& ctx);

// Remembers that `qname` was answered from the wildcard under `encloser`
// (nothing when the answer is not signed).
void note_wildcard(const zones::Zone& z, const dns::NameBuf& qname, uint32_t encloser, QueryContext& ctx);

// The NSECs proving, for each wildcard answer, that the next closer name
// does not exist: owner just before it, next just after it and its
// descendants (RFC 4470's minimally covering NSEC). In authority.
bool put_wildcard_proofs(dns::Writer& w, uint16_t& count, QueryContext& ctx);

}  // namespace vane::server
