// Answering for class IN (RFC 1034 §4.3.2 with RFC 2308 negative answers,
// RFC 6672 DNAME, RFC 4592 wildcards, RFC 6891 EDNS, RFC 8482 ANY, RFC 2181 §9 truncation).
// Hot path: per-query state lives in the worker's QueryContext; nothing here
// allocates, locks or blocks.
#include "answer.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>

#include "signing.h"

namespace vane::server {

namespace {

using dns::Writer;
using zones::kNone;
using zones::RRset;
using zones::Zone;

constexpr int kMaxChain = 16;  // CNAME hops followed inside our zones; also ends loops

// Where an RR owner comes from: a pointer to a name already written, or a name.
struct Owner {
  uint16_t pointer;     // non-zero: compression pointer target
  const uint8_t* name;  // lowercase wire name otherwise
};

struct Counts {
  uint16_t an = 0, ns = 0, ar = 0;
};

bool put_owner(Writer& w, Owner owner, uint16_t& owner_ptr) {
  if (owner_ptr) return w.put_pointer(owner_ptr);
  size_t at = w.size();
  if (!w.put_name(owner.name)) return false;
  if (at < 0x4000) owner_ptr = static_cast<uint16_t>(at);
  return true;
}

// A steered RRset: the chain picks endpoints now. No pick (every endpoint
// down and fail_closed) writes nothing and leaves `count` alone.
bool put_steered(Writer& w, const zones::ZoneSet& zs, const Zone& z, const RRset& rs, Owner owner, uint16_t& count,
                 QueryContext& ctx) {
  const zones::SteeredRecord& rec = z.steered(rs);
  auto eps = z.endpoints(rec);
  zones::select(rec, eps, *zs.states, zs.regions, ctx.client, ctx.rng, ctx.pick);
  ctx.ecs_scope = std::max(ctx.ecs_scope, ctx.pick.scope);
  if (ctx.keep_decision && !ctx.decision.rec) [[unlikely]]
    ctx.decision = {&z, &rec, ctx.pick};
  uint16_t owner_ptr = owner.pointer;
  uint32_t ttl = zones::answer_ttl(rec, *zs.states);
  for (uint8_t i = 0; i < ctx.pick.count; ++i) {
    const zones::SteeredEndpoint& ep = eps[ctx.pick.index[i]];
    if (ctx.counters) ctx.counters->steered.add(ep.state);
    if (!put_owner(w, owner, owner_ptr)) return false;
    uint8_t fixed[10];
    dns::put16(fixed, rec.type);
    dns::put16(fixed + 2, dns::kClassIN);
    dns::put32(fixed + 4, ttl);
    if (!w.put_bytes(fixed, 10)) return false;
    size_t rdlen_at = w.size() - 2;
    const uint8_t* rd = z.steered_rdata(ep);
    if (rec.type == dns::kTypeCNAME) {
      if (!w.put_name(rd)) return false;
      ctx.cname_target = rd;
    } else if (!w.put_bytes(rd, ep.rdlen)) {
      return false;
    }
    dns::put16(w.data() + rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
    ++count;
  }
  return true;
}

}  // namespace

bool put_rdata(Writer& w, zones::RdataNames names, const uint8_t* data, uint16_t len) {
  switch (names) {
    case zones::RdataNames::kNone:
      return w.put_bytes(data, len);
    case zones::RdataNames::kOne:
      return w.put_name(data);
    case zones::RdataNames::kMx:
      return w.put_bytes(data, 2) && w.put_name(data + 2);
    case zones::RdataNames::kSoa: {
      const uint8_t* rname = data + dns::wire_name_len({data, len});
      const uint8_t* tail = rname + dns::wire_name_len({rname, size_t(data + len - rname)});
      return w.put_name(data) && w.put_name(rname) && w.put_bytes(tail, 20);
    }
  }
  return false;
}

namespace {

bool put_rrset(Writer& w, const zones::ZoneSet& zs, const Zone& z, const RRset& rs, Owner owner, uint32_t ttl,
               uint16_t& count, QueryContext& ctx) {
  if (rs.steered) return put_steered(w, zs, z, rs, owner, count, ctx);
  const uint8_t* rd = z.rdata(rs);
  uint16_t owner_ptr = owner.pointer;
  for (uint16_t i = 0; i < rs.count; ++i) {
    if (!put_owner(w, owner, owner_ptr)) return false;
    uint8_t fixed[10];
    dns::put16(fixed, rs.type);
    dns::put16(fixed + 2, dns::kClassIN);
    dns::put32(fixed + 4, ttl);
    if (!w.put_bytes(fixed, 10)) return false;
    size_t rdlen_at = w.size() - 2;
    uint16_t len = dns::get16(rd);
    if (!put_rdata(w, rs.names, rd + 2, len)) return false;
    // A transferred zone's serial rises with its steered state (zones/
    // transfer.h); a signed answer keeps the file's, which its RRSIG covers.
    if (rs.names == zones::RdataNames::kSoa && z.served_serial() && !signs(ctx, z))
      dns::put32(w.data() + w.size() - 20, z.served_serial()->load(std::memory_order_relaxed));
    dns::put16(w.data() + rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
    rd += 2 + len;
    ++count;
  }
  return true;
}

// The TTL an RRSIG names as original: the configured one (a steered
// record's TTL may be lowered while a drill nears or an endpoint wavers).
uint32_t original_ttl(const Zone& z, const RRset& rs, uint32_t ttl) {
  return std::max(rs.steered ? z.steered(rs).ttl : rs.ttl, ttl);
}

const uint8_t* owner_name(Owner owner, const QueryContext& ctx) {
  return owner.name ? owner.name : ctx.query.qname.data;
}

// An RRset and, for a DO query in a signed zone, its RRSIG (RFC 4035
// §3.1.1). `signed_name` is the owner it is signed under when that is not
// the owner written: a wildcard's "*.<encloser>".
bool put_signed(Writer& w, const zones::ZoneSet& zs, const Zone& z, const RRset& rs, Owner owner, uint32_t ttl,
                uint16_t& count, QueryContext& ctx, const uint8_t* signed_name = nullptr) {
  size_t at = w.size();
  uint16_t before = count;
  if (!put_rrset(w, zs, z, rs, owner, ttl, count, ctx)) return false;
  if (!signs(ctx, z) || count == before) return true;
  const uint8_t* name = owner_name(owner, ctx);
  uint16_t ptr = owner.pointer ? owner.pointer : at < 0x4000 ? static_cast<uint16_t>(at) : 0;
  Signed s{rs.type, original_ttl(z, rs, ttl), signed_name ? signed_name : name, &rs};
  return put_rrsig(w, z, s, ptr, name, ttl, count, ctx);
}

// A/AAAA of in-zone targets of NS/MX/SRV (RFC 1035 §3.3, glue for referrals).
// Returns false when something did not fit (the caller decides about TC).
// Authoritative addresses carry their RRSIGs when there is room for them;
// glue never does (RFC 4035 §3.1.1: dropping them does not set TC).
bool put_additional(Writer& w, const zones::ZoneSet& zs, const Zone& z, const RRset& rs, Counts& c, QueryContext& ctx) {
  for (uint32_t id : z.extra(rs)) {
    for (uint16_t type : {dns::kTypeA, dns::kTypeAAAA}) {
      const RRset* addr = z.find_rrset(id, type);
      if (!addr) continue;
      auto m = w.mark();
      uint16_t n = 0;
      const uint8_t* name = z.name_of(id).data();
      if (!put_rrset(w, zs, z, *addr, {0, name}, addr->ttl, n, ctx)) {
        w.reset(m);
        return false;
      }
      c.ar += n;
      if (n && signs(ctx, z) && z.node(id).cut == kNone) {
        auto after = w.mark();
        uint16_t ptr = m.size < 0x4000 ? static_cast<uint16_t>(m.size) : 0;
        uint32_t ttl = addr->steered ? zones::answer_ttl(z.steered(*addr), *zs.states) : addr->ttl;
        if (!put_rrsig(w, z, Signed{type, original_ttl(z, *addr, ttl), name, addr}, ptr, name, ttl, c.ar, ctx))
          w.reset(after);
      }
    }
  }
  return true;
}

bool put_soa(Writer& w, const zones::ZoneSet& zs, const Zone& z, Counts& c, QueryContext& ctx) {
  return put_signed(w, zs, z, *z.soa(), {0, z.origin().data()}, z.negative_ttl(), c.ns, ctx);
}

// A negative answer's authority: the SOA, and for a DO query in a signed
// zone one NSEC at `owner` (RFC 9824 compact denial): `node`'s types minus
// the one asked for, or none but NXNAME when the name does not exist.
bool put_negative(Writer& w, const zones::ZoneSet& zs, const Zone& z, Owner owner, uint32_t node, Counts& c,
                  QueryContext& ctx) {
  if (!put_soa(w, zs, z, c, ctx)) return false;
  if (!signs(ctx, z)) return true;
  return put_compact_nsec(w, z, owner_name(owner, ctx), owner.pointer, node, ctx.query.qtype, node == kNone, c.ns,
                          ctx);
}

enum class Synthesis { kWritten, kTooLong, kTruncated };

// The DNAME at `dname` and the CNAME it synthesizes for `name` (RFC 6672
// §3.1-3.3: the labels below the owner + the DNAME target; TTL of the
// DNAME). The new name is left in ctx.chain.
Synthesis synthesize(const zones::ZoneSet& zones, const Zone& z, uint32_t dname, const dns::NameBuf& name, Owner owner,
                     bool with_dname, Writer& w, Counts& c, QueryContext& ctx) {
  const RRset* dn = z.find_rrset(dname, dns::kTypeDNAME);
  if (with_dname && !put_signed(w, zones, z, *dn, {0, z.name_of(dname).data()}, dn->ttl, c.an, ctx))
    return Synthesis::kTruncated;
  const uint8_t* rd = z.rdata(*dn);
  const uint8_t* target = rd + 2;
  size_t target_len = dns::wire_name_len({target, dns::get16(rd)});
  size_t keep = name.labels - dns::label_count(z.name_of(dname).data());
  size_t prefix_len = name.suffix(keep).data() - name.data;
  if (target_len == 0 || prefix_len + target_len > dns::kMaxNameLen) return Synthesis::kTooLong;
  uint8_t next[dns::kMaxNameLen + 1];
  std::memcpy(next, name.data, prefix_len);
  for (size_t i = 0; i < target_len; ++i) next[prefix_len + i] = dns::ascii_lower(target[i]);
  uint16_t owner_ptr = owner.pointer;
  if (!put_owner(w, owner, owner_ptr)) return Synthesis::kTruncated;
  uint8_t fixed[10];
  dns::put16(fixed, dns::kTypeCNAME);
  dns::put16(fixed + 2, dns::kClassIN);
  dns::put32(fixed + 4, dn->ttl);
  if (!w.put_bytes(fixed, 10)) return Synthesis::kTruncated;
  size_t rdlen_at = w.size() - 2;
  if (!w.put_name(next)) return Synthesis::kTruncated;
  dns::put16(w.data() + rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
  ++c.an;
  std::memcpy(ctx.chain.data, next, prefix_len + target_len);  // `name` may be ctx.chain: copied only now
  dns::index_name(ctx.chain);
  return Synthesis::kWritten;
}

struct Resolution {
  uint8_t rcode = dns::kRcodeNoError;
  bool aa = true;
  bool truncated = false;
  // Additional-section work, done after the authority section is complete
  // (wildcard proofs go there last): the RRsets whose targets get addresses.
  struct Extra {
    const Zone* zone;
    const RRset* rrset;
    bool required;  // a referral's glue: not fitting makes the answer TC
  };
  static constexpr int kMaxExtra = 16;
  Extra extra[kMaxExtra];
  int extra_count = 0;
  void add_extra(const Zone* z, const RRset* rs, bool required) {
    if (extra_count < kMaxExtra && rs->extra_count) extra[extra_count++] = {z, rs, required};
  }
};

// Follows the name through zones and CNAMEs, writing answer/authority/additional.
Resolution resolve(const zones::ZoneSet& zones, const Zone* z, QueryContext& ctx, Writer& w, Transport transport,
                   Counts& c) {
  Resolution r;
  const dns::Query& q = ctx.query;
  const dns::NameBuf* name = &q.qname;
  Owner owner{static_cast<uint16_t>(dns::kHeaderSize), nullptr};
  struct Visit {
    const Zone* zone;
    uint32_t node;
  } visited[kMaxChain];
  for (int hop = 0; hop < kMaxChain; ++hop) {
    zones::Lookup found = z->lookup(*name);
    // RFC 6672 §3.2: a DNAME above the name rewrites it, unless a zone cut
    // comes first on the way down.
    uint32_t dname = z->dname_above(*name, found.node != kNone ? found.node : found.encloser);
    if (dname != kNone && (found.cut == kNone || dns::label_count(z->name_of(found.cut).data()) >
                                                     dns::label_count(z->name_of(dname).data()))) {
      // Each hop rewrites to a new name, so a DNAME that points below itself
      // is no loop to detect: it ends at kMaxChain or at YXDOMAIN. Its RRset
      // goes into the answer once.
      bool again = false;
      for (int i = 0; i < hop; ++i) again |= visited[i].zone == z && visited[i].node == dname;
      visited[hop] = {z, dname};
      switch (synthesize(zones, *z, dname, *name, owner, !again, w, c, ctx)) {
        case Synthesis::kWritten:
          break;
        case Synthesis::kTooLong:
          r.rcode = dns::kRcodeYxDomain;  // RFC 6672 §2.2
          return r;
        case Synthesis::kTruncated:
          r.truncated = true;
          return r;
      }
      if (q.qtype == dns::kTypeCNAME) return r;  // the CNAME was asked for: not followed (RFC 1034 §4.3.2)
      name = &ctx.chain;
      owner = {0, ctx.chain.data};
      z = zones.find_zone(ctx.chain);  // RFC 1034 §4.3.2 3a: back to step 1, the nearest zone we serve
      if (!z) return r;
      continue;
    }
    // At or below a zone cut we are not authoritative: refer (RFC 1034 §4.3.2 3b).
    // DS at the cut itself belongs to the parent side (RFC 4035 §3.1.4.1).
    if (found.cut != kNone && !(found.node == found.cut && q.qtype == dns::kTypeDS)) {
      if (hop == 0) r.aa = false;
      const RRset* ns = z->find_rrset(found.cut, dns::kTypeNS);
      const uint8_t* cut_name = z->name_of(found.cut).data();
      if (!put_rrset(w, zones, *z, *ns, {0, cut_name}, ns->ttl, c.ns, ctx)) {
        r.truncated = true;
        return r;
      }
      if (signs(ctx, *z)) {  // RFC 4035 §3.1.4: the DS, or proof that there is none
        const RRset* ds = z->find_rrset(found.cut, dns::kTypeDS);
        bool ok = ds ? put_signed(w, zones, *z, *ds, {0, cut_name}, ds->ttl, c.ns, ctx)
                     : put_compact_nsec(w, *z, cut_name, 0, found.cut, 0, false, c.ns, ctx);
        if (!ok) r.truncated = true;
      }
      r.add_extra(z, ns, true);  // glue that does not fit makes the referral unusable (RFC 9471)
      return r;
    }
    uint32_t node = found.node;
    const uint8_t* wildcard = nullptr;  // the wildcard's own name, when the answer is synthesized from it
    if (node == kNone) {
      node = z->wildcard_of(found.encloser);  // RFC 4592 §3.3.1: synthesize from *.<closest encloser>
      if (node == kNone) {
        // RFC 9824 §3.1: signed, a nonexistent name is NODATA with NXNAME in
        // the NSEC; the NXDOMAIN code only for a resolver that says CO.
        r.rcode = signs(ctx, *z) && !q.edns_co ? dns::kRcodeNoError : dns::kRcodeNxDomain;
        if (!put_negative(w, zones, *z, owner, kNone, c, ctx)) r.truncated = true;
        return r;
      }
      wildcard = z->name_of(node).data();
    }
    auto rrsets = z->rrsets(node);
    if (q.qtype == dns::kTypeANY && !rrsets.empty()) {
      // RFC 8482 §4.2: over UDP one RRset is enough; TCP gets them all.
      size_t n = transport == Transport::kUdp ? 1 : rrsets.size();
      for (size_t i = 0; i < n && !r.truncated; ++i)
        if (!put_signed(w, zones, *z, rrsets[i], owner, rrsets[i].ttl, c.an, ctx, wildcard)) r.truncated = true;
      for (size_t i = 0; i < n && !r.truncated; ++i) r.add_extra(z, &rrsets[i], false);
      if (wildcard) note_wildcard(*z, *name, found.encloser, ctx);
      return r;
    }
    if (q.qtype == dns::kTypeNSEC && signs(ctx, *z)) {  // the NSEC asked for: the one made for the name
      if (!put_compact_nsec(w, *z, owner_name(owner, ctx), owner.pointer, node, 0, false, c.an, ctx))
        r.truncated = true;
      return r;
    }
    if (const RRset* rs = z->find_rrset(node, q.qtype)) {
      uint16_t before = c.an;
      if (!put_signed(w, zones, *z, *rs, owner, rs->ttl, c.an, ctx, wildcard))
        r.truncated = true;
      else if (c.an == before && !put_negative(w, zones, *z, owner, node, c, ctx))
        r.truncated = true;  // steered, fail_closed: NODATA
      else if (c.an != before)
        r.add_extra(z, rs, false);  // optional data: omitted, not truncated, when full
      if (wildcard && c.an != before) note_wildcard(*z, *name, found.encloser, ctx);
      return r;
    }
    const RRset* cname = z->find_rrset(node, dns::kTypeCNAME);
    if (!cname) {
      if (!put_negative(w, zones, *z, owner, node, c, ctx)) r.truncated = true;  // NODATA (RFC 2308 §2.2)
      return r;
    }
    // A chain that comes back to a name already answered is a loop: stop there.
    for (int i = 0; i < hop; ++i)
      if (visited[i].zone == z && visited[i].node == node) return r;
    visited[hop] = {z, node};
    uint16_t before = c.an;
    if (!put_signed(w, zones, *z, *cname, owner, cname->ttl, c.an, ctx, wildcard)) {
      r.truncated = true;
      return r;
    }
    if (c.an == before) {  // steered CNAME with nothing up and fail_closed: NODATA
      if (!put_negative(w, zones, *z, owner, node, c, ctx)) r.truncated = true;
      return r;
    }
    if (wildcard) note_wildcard(*z, *name, found.encloser, ctx);
    // RFC 1034 §4.3.2 3a / RFC 6604: restart at the target if we serve it.
    const uint8_t* target = cname->steered ? ctx.cname_target : z->rdata(*cname) + 2;
    size_t len = dns::wire_name_len({target, dns::kMaxNameLen});
    std::memcpy(ctx.chain.data, target, len);
    dns::index_name(ctx.chain);
    name = &ctx.chain;
    owner = {0, ctx.chain.data};
    z = zones.find_zone(ctx.chain);  // RFC 1034 §4.3.2 3a: back to step 1, the nearest zone we serve
    if (!z) return r;
  }
  return r;
}

// Bytes of the OPT RR we will send: held back from the capacity up front.
size_t opt_size(const dns::Query& q) {
  if (!q.edns) return 0;
  return dns::kOptRrSize + (q.ecs ? 8 + (q.ecs_source + 7) / 8 : 0);
}

size_t finish(Writer& w, const dns::Query& q, uint16_t flags, uint16_t rcode, Counts c, const AnswerOptions& opts,
              uint8_t ecs_scope) {
  uint8_t* h = w.data();
  if (q.edns) {
    // Room for the OPT was held back from the capacity (RFC 6891 §7).
    size_t size = opt_size(q);
    w.set_capacity(w.capacity() + size);
    uint8_t opt[dns::kOptRrSize + 8 + 16] = {0, 0, 41};
    dns::put16(opt + 3, opts.edns_udp_size);
    opt[5] = static_cast<uint8_t>(rcode >> 4);  // extended rcode, upper 8 bits
    opt[7] = q.edns_do ? 0x80 : 0;              // RFC 3225: DO is echoed
    dns::put16(opt + 9, static_cast<uint16_t>(size - dns::kOptRrSize));
    if (q.ecs) {
      // RFC 7871 §7.2.1: echo FAMILY, SOURCE PREFIX-LENGTH and ADDRESS, with
      // the SCOPE our answer depends on (0: the same for every client).
      uint8_t* e = opt + dns::kOptRrSize;
      dns::put16(e, dns::kOptionEcs);
      dns::put16(e + 2, static_cast<uint16_t>(size - dns::kOptRrSize - 4));
      dns::put16(e + 4, q.ecs_family);
      e[6] = q.ecs_source;
      e[7] = rcode == dns::kRcodeNoError || rcode == dns::kRcodeNxDomain ? ecs_scope : 0;
      std::memcpy(e + 8, q.ecs_addr, (q.ecs_source + 7) / 8);
    }
    w.put_bytes(opt, size);
    ++c.ar;
  }
  dns::put16(h + 2, static_cast<uint16_t>(flags | (rcode & 0xF)));
  dns::put16(h + 6, c.an);
  dns::put16(h + 8, c.ns);
  dns::put16(h + 10, c.ar);
  return w.size();
}

}  // namespace

int qtype_bucket(uint16_t qtype) {
  switch (qtype) {
    case dns::kTypeA:
      return 0;
    case dns::kTypeAAAA:
      return 1;
    case dns::kTypeCNAME:
      return 2;
    case dns::kTypeNS:
      return 3;
    case dns::kTypeSOA:
      return 4;
    case dns::kTypeMX:
      return 5;
    case dns::kTypeTXT:
      return 6;
    case dns::kTypeSRV:
      return 7;
    case dns::kTypePTR:
      return 8;
    case dns::kTypeANY:
      return 9;
    case dns::kTypeDS:
      return 10;
    case 64:
      return 11;  // SVCB
    case 65:
      return 12;  // HTTPS
    case dns::kTypeAXFR:
    case dns::kTypeIXFR:
      return 13;
    case 0:
      return 14;  // no question
    default:
      return 15;
  }
}

const char* qtype_bucket_name(int b) {
  static const char* const kNames[QueryCounters::kQtypes] = {"A",     "AAAA", "CNAME", "NS",   "SOA", "MX",
                                                             "TXT",   "SRV",  "PTR",   "ANY",  "DS",  "SVCB",
                                                             "HTTPS", "XFR",  "NONE",  "OTHER"};
  return kNames[b];
}

// NOTIFY (RFC 1996 §3.7) for a secondary zone from one of its primaries:
// acknowledged, and left in ctx.notified for the worker to pass on.
static uint8_t notify(const zones::ZoneSet& zones, const dns::Query& q, QueryContext& ctx) {
  const Zone* z = zones.find_zone(q.qname);
  if (!z || !z->secondary() || q.qname.len != z->origin().size() || q.qclass != dns::kClassIN) return 9;  // NOTAUTH
  for (const zones::Client& from : z->notify_from())
    if (from.family == ctx.source.family && std::memcmp(from.addr, ctx.source.addr, from.family == 4 ? 4 : 16) == 0) {
      ctx.notified = z;
      return dns::kRcodeNoError;
    }
  return dns::kRcodeRefused;
}

static size_t answer_one(const zones::ZoneSet& zones, std::span<const uint8_t> req, std::span<uint8_t> out,
                         Transport transport, const AnswerOptions& opts, QueryContext& ctx);

size_t answer(const zones::ZoneSet& zones, std::span<const uint8_t> req, std::span<uint8_t> out, Transport transport,
              const AnswerOptions& opts, QueryContext& ctx) {
  size_t n = answer_one(zones, req, out, transport, opts, ctx);
  if (n >= dns::kHeaderSize && ctx.counters) {
    int t = transport == Transport::kTcp;
    int rcode = out[3] & 0xF;
    if (ctx.query.edns && rcode == 0 && ctx.query.edns_version > 0) rcode = 16;  // BADVERS lives in the OPT
    QueryCounters::bump(ctx.counters->answers[t][qtype_bucket(ctx.query.has_question ? ctx.query.qtype : 0)][rcode]);
    if (out[2] & 0x02) QueryCounters::bump(ctx.counters->truncated[t]);
  }
  return n;
}

static size_t answer_one(const zones::ZoneSet& zones, std::span<const uint8_t> req, std::span<uint8_t> out,
                         Transport transport, const AnswerOptions& opts, QueryContext& ctx) {
  dns::Query& q = ctx.query;
  dns::ParseStatus st = dns::parse_query(req, q);
  if (st == dns::ParseStatus::kDrop || out.size() < 512) return 0;

  size_t limit = transport == Transport::kTcp ? 65535
                 : q.edns ? std::clamp<size_t>(q.edns_udp_size, dns::kMaxUdpNoEdns, opts.edns_udp_size)
                          : dns::kMaxUdpNoEdns;
  limit = std::min(limit, out.size());
  Writer w(out.data(), limit - opt_size(q));
  ctx.ecs_scope = 0;
  if (q.ecs && q.ecs_source > 0) {  // RFC 7871 §7.1.2: source 0 means "do not use the client's address"
    ctx.client.family = q.ecs_family == 1 ? 4 : 6;
    ctx.client.prefix = q.ecs_source;
    ctx.client.ecs = true;
    std::memcpy(ctx.client.addr, q.ecs_addr, sizeof q.ecs_addr);
  } else {
    ctx.client = ctx.source;
  }
  uint8_t header[dns::kHeaderSize] = {};
  dns::put16(header, q.id);
  dns::put16(header + 4, q.has_question ? 1 : 0);
  w.put_bytes(header, sizeof header);
  if (q.has_question) w.put_question(req.data() + dns::kHeaderSize, q.question_end - dns::kHeaderSize);
  uint16_t flags = static_cast<uint16_t>(dns::kFlagQR | (q.flags & (0x7800 | dns::kFlagRD | dns::kFlagCD)));
  Counts c;

  ctx.notified = nullptr;
  if (st == dns::ParseStatus::kFormErr) return finish(w, q, flags, dns::kRcodeFormErr, c, opts, 0);
  if (st == dns::ParseStatus::kNotImp && q.opcode == kOpcodeNotify && q.has_question)
    return finish(w, q, flags | dns::kFlagAA, notify(zones, q, ctx), c, opts, 0);
  if (st == dns::ParseStatus::kNotImp) return finish(w, q, flags, dns::kRcodeNotImp, c, opts, 0);
  if (q.edns && q.edns_version > 0) return finish(w, q, flags, dns::kRcodeBadVers, c, opts, 0);  // RFC 6891 §6.1.3
  if (q.qclass != dns::kClassIN) return finish(w, q, flags, dns::kRcodeRefused, c, opts, 0);
  if (q.qtype == dns::kTypeIXFR) {
    // Over UDP (a TCP transfer request never comes here: server/xfr_out.h).
    // RFC 1995 §2: the current SOA alone tells a secondary whether to ask
    // over TCP. Only for the apex of a zone that is transferred.
    const Zone* z = zones.find_zone(q.qname);
    ctx.dnssec = false;
    if (!z || !z->served_serial() || q.qname.len != z->origin().size())
      return finish(w, q, flags, dns::kRcodeRefused, c, opts, 0);
    if (!put_rrset(w, zones, *z, *z->soa(), {dns::kHeaderSize, nullptr}, z->soa()->ttl, c.an, ctx))
      flags |= dns::kFlagTC;
    return finish(w, q, flags | dns::kFlagAA, dns::kRcodeNoError, c, opts, 0);
  }
  if (q.qtype == dns::kTypeAXFR)  // over TCP only (RFC 5936 §4.2)
    return finish(w, q, flags, dns::kRcodeRefused, c, opts, 0);
  if (q.qtype == dns::kTypeMAILA || q.qtype == dns::kTypeMAILB || q.qtype == dns::kTypeOPT)
    return finish(w, q, flags, dns::kRcodeNotImp, c, opts, 0);
  if (q.qtype == dns::kTypeNXNAME)  // RFC 9824 §3.5
    return finish(w, q, flags, dns::kRcodeFormErr, c, opts, 0);
  ctx.dnssec = q.edns_do;
  ctx.wildcard_proof_count = 0;

  const Zone* z = zones.find_zone(q.qname);
  ctx.zone = z;
  if (!z) return finish(w, q, flags, dns::kRcodeRefused, c, opts, 0);
  if (z->expired()) return finish(w, q, flags, dns::kRcodeServFail, c, opts, 0);  // a secondary with no current copy
  // DS lives on the parent side of a cut (RFC 4035 §3.1.4.1): at a child's
  // apex, answer from the parent zone when we serve it too.
  if (q.qtype == dns::kTypeDS && q.qname.len == z->origin().size())
    if (const Zone* parent = zones.find_zone(q.qname, 1)) z = parent;

  auto after_question = w.mark();
  Resolution r = resolve(zones, z, ctx, w, transport, c);
  if (!r.truncated && !put_wildcard_proofs(w, c.ns, ctx)) r.truncated = true;
  for (int i = 0; i < r.extra_count && !r.truncated; ++i)
    if (!put_additional(w, zones, *r.extra[i].zone, *r.extra[i].rrset, c, ctx) && r.extra[i].required)
      r.truncated = true;
  if (r.aa) flags |= dns::kFlagAA;
  if (r.truncated) {
    // RFC 2181 §9: a partial RRset is worse than none; the client retries over TCP.
    w.reset(after_question);
    c = Counts{};
    flags |= dns::kFlagTC;
  }
  return finish(w, q, flags, r.rcode, c, opts, ctx.ecs_scope);
}

zones::Client client_of(const sockaddr_storage& peer) {
  zones::Client s;
  if (peer.ss_family == AF_INET) {
    s.family = 4;
    s.prefix = 32;
    std::memcpy(s.addr, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    const uint8_t* a = reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr.s6_addr;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (std::memcmp(a, kMapped, 12) == 0) {
      s.family = 4;
      s.prefix = 32;
      std::memcpy(s.addr, a + 12, 4);
    } else {
      s.family = 6;
      s.prefix = 128;
      std::memcpy(s.addr, a, 16);
    }
  }
  return s;
}

void set_source(QueryContext& ctx, const sockaddr_storage& peer) { ctx.source = client_of(peer); }

size_t format_decision(const QueryContext& ctx, const zones::ZoneSet& zs, char* buf, size_t cap) {
  const auto& d = ctx.decision;
  if (!d.rec || cap == 0) return 0;
  const zones::SteeredInfo& info = d.zone->info(*d.rec);
  auto eps = d.zone->endpoints(*d.rec);
  struct Out {
    char* buf;
    size_t cap, n = 0;
    __attribute__((format(printf, 2, 3))) void operator()(const char* fmt, ...) {
      if (n >= cap) return;
      va_list ap;
      va_start(ap, fmt);
      int w = vsnprintf(buf + n, cap - n, fmt, ap);
      va_end(ap);
      if (w > 0) n = std::min(cap - 1, n + size_t(w));
    }
  } put{buf, cap};
  put("record=%s/%s policy=%s answer=", info.name.c_str(), zones::steered_type_name(d.rec->type),
      zones::policy_name(d.rec->policy));
  for (uint8_t i = 0; i < d.pick.count; ++i) {
    const auto& ep = eps[d.pick.index[i]];
    put("%s%s", i ? "," : "", info.endpoints[d.pick.index[i]].c_str());
    if (ep.region != zones::kNoRegion) put("@%s", zs.regions.name(ep.region).c_str());
    if (d.rec->policy == zones::Policy::kFailover) put("(tier %u)", ep.priority);
  }
  if (d.pick.count == 0) put("none(all down, fail_closed)");
  bool any = false;
  for (size_t i = 0; i < eps.size(); ++i) {
    const zones::EndpointState& s = zs.states->at(eps[i].state);
    if (zones::endpoint_up(s)) continue;
    auto ov = static_cast<zones::Override>(s.override_state.load(std::memory_order_relaxed));
    put("%s%s:%s", any ? "," : " excluded=", info.endpoints[i].c_str(),
        ov == zones::Override::kAuto ? "unhealthy" : zones::override_name(ov));
    any = true;
  }
  if (d.rec->policy == zones::Policy::kWeighted || d.rec->policy == zones::Policy::kFailover)
    put(" pick=%s", d.rec->sticky ? "sticky" : "weighted");
  if (ctx.client.ecs) put(" scope=/%u", unsigned(d.pick.scope));
  return put.n;
}

}  // namespace vane::server
