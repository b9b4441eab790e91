// Answering for class IN (RFC 1034 §4.3.2 with RFC 2308 negative answers,
// RFC 4592 wildcards, RFC 6891 EDNS, RFC 8482 ANY, RFC 2181 §9 truncation).
// Hot path: per-query state lives in the worker's QueryContext; nothing here
// allocates, locks or blocks.
#include "answer.h"

#include <algorithm>

namespace vane::server {

namespace {

using dns::Writer;
using zones::kNone;
using zones::RRset;
using zones::Zone;

constexpr int kMaxChain = 16;  // CNAME hops followed inside our zones; also ends loops

// Where an RR owner comes from: a pointer to a name already written, or a name.
struct Owner {
  uint16_t pointer;          // non-zero: compression pointer target
  const uint8_t* name;       // lowercase wire name otherwise
};

struct Counts {
  uint16_t an = 0, ns = 0, ar = 0;
};

bool put_rrset(Writer& w, const Zone& z, const RRset& rs, Owner owner, uint32_t ttl, uint16_t& count) {
  const uint8_t* rd = z.rdata(rs);
  uint16_t owner_ptr = owner.pointer;
  for (uint16_t i = 0; i < rs.count; ++i) {
    if (owner_ptr) {
      if (!w.put_pointer(owner_ptr)) return false;
    } else {
      size_t at = w.size();
      if (!w.put_name(owner.name)) return false;
      if (at < 0x4000) owner_ptr = static_cast<uint16_t>(at);
    }
    uint8_t fixed[10];
    dns::put16(fixed, rs.type);
    dns::put16(fixed + 2, dns::kClassIN);
    dns::put32(fixed + 4, ttl);
    if (!w.put_bytes(fixed, 10)) return false;
    size_t rdlen_at = w.size() - 2;
    uint16_t len = dns::get16(rd);
    const uint8_t* data = rd + 2;
    bool ok = true;
    switch (rs.names) {
      case zones::RdataNames::kNone: ok = w.put_bytes(data, len); break;
      case zones::RdataNames::kOne: ok = w.put_name(data); break;
      case zones::RdataNames::kMx: ok = w.put_bytes(data, 2) && w.put_name(data + 2); break;
      case zones::RdataNames::kSoa: {
        const uint8_t* rname = data + dns::wire_name_len({data, len});
        const uint8_t* tail = rname + dns::wire_name_len({rname, size_t(data + len - rname)});
        ok = w.put_name(data) && w.put_name(rname) && w.put_bytes(tail, 20);
        break;
      }
    }
    if (!ok) return false;
    dns::put16(w.data() + rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
    rd += 2 + len;
    ++count;
  }
  return true;
}

// A/AAAA of in-zone targets of NS/MX/SRV (RFC 1035 §3.3, glue for referrals).
// Returns false when something did not fit (the caller decides about TC).
bool put_additional(Writer& w, const Zone& z, const RRset& rs, Counts& c) {
  for (uint32_t id : z.extra(rs)) {
    for (uint16_t type : {dns::kTypeA, dns::kTypeAAAA}) {
      const RRset* addr = z.find_rrset(id, type);
      if (!addr) continue;
      auto m = w.mark();
      uint16_t n = 0;
      if (!put_rrset(w, z, *addr, {0, z.name_of(id).data()}, addr->ttl, n)) {
        w.reset(m);
        return false;
      }
      c.ar += n;
    }
  }
  return true;
}

bool put_soa(Writer& w, const Zone& z, Counts& c) {
  return put_rrset(w, z, *z.soa(), {0, z.origin().data()}, z.negative_ttl(), c.ns);
}

struct Resolution {
  uint8_t rcode = dns::kRcodeNoError;
  bool aa = true;
  bool truncated = false;
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
    // At or below a zone cut we are not authoritative: refer (RFC 1034 §4.3.2 3b).
    // DS at the cut itself belongs to the parent side (RFC 4035 §3.1.4.1).
    if (found.cut != kNone && !(found.node == found.cut && q.qtype == dns::kTypeDS)) {
      if (hop == 0) r.aa = false;
      const RRset* ns = z->find_rrset(found.cut, dns::kTypeNS);
      if (!put_rrset(w, *z, *ns, {0, z->name_of(found.cut).data()}, ns->ttl, c.ns)) r.truncated = true;
      // Glue that does not fit means the referral is unusable (RFC 9471).
      else if (!put_additional(w, *z, *ns, c)) r.truncated = true;
      return r;
    }
    uint32_t node = found.node;
    if (node == kNone) {
      node = z->wildcard_of(found.encloser);  // RFC 4592 §3.3.1: synthesize from *.<closest encloser>
      if (node == kNone) {
        r.rcode = dns::kRcodeNxDomain;
        if (!put_soa(w, *z, c)) r.truncated = true;
        return r;
      }
    }
    auto rrsets = z->rrsets(node);
    if (q.qtype == dns::kTypeANY && !rrsets.empty()) {
      // RFC 8482 §4.2: over UDP one RRset is enough; TCP gets them all.
      size_t n = transport == Transport::kUdp ? 1 : rrsets.size();
      for (size_t i = 0; i < n && !r.truncated; ++i)
        if (!put_rrset(w, *z, rrsets[i], owner, rrsets[i].ttl, c.an)) r.truncated = true;
      for (size_t i = 0; i < n && !r.truncated; ++i) put_additional(w, *z, rrsets[i], c);
      return r;
    }
    if (const RRset* rs = z->find_rrset(node, q.qtype)) {
      if (!put_rrset(w, *z, *rs, owner, rs->ttl, c.an)) r.truncated = true;
      else put_additional(w, *z, *rs, c);  // optional data: omitted, not truncated, when full
      return r;
    }
    const RRset* cname = z->find_rrset(node, dns::kTypeCNAME);
    if (!cname) {
      if (!put_soa(w, *z, c)) r.truncated = true;  // NODATA (RFC 2308 §2.2)
      return r;
    }
    // A chain that comes back to a name already answered is a loop: stop there.
    for (int i = 0; i < hop; ++i)
      if (visited[i].zone == z && visited[i].node == node) return r;
    visited[hop] = {z, node};
    if (!put_rrset(w, *z, *cname, owner, cname->ttl, c.an)) {
      r.truncated = true;
      return r;
    }
    // RFC 1034 §4.3.2 3a / RFC 6604: restart at the target if we serve it.
    const uint8_t* target = z->rdata(*cname) + 2;
    size_t len = dns::wire_name_len({target, dns::kMaxNameLen});
    std::memcpy(ctx.chain.data, target, len);
    dns::index_name(ctx.chain);
    name = &ctx.chain;
    owner = {0, ctx.chain.data};
    z = zones.find_zone(ctx.chain);
    if (!z) return r;
  }
  return r;
}

size_t finish(Writer& w, const dns::Query& q, uint16_t flags, uint16_t rcode, Counts c, const AnswerOptions& opts) {
  uint8_t* h = w.data();
  if (q.edns) {
    // Room for the OPT was held back from the capacity (RFC 6891 §7).
    w.set_capacity(w.capacity() + dns::kOptRrSize);
    uint8_t opt[dns::kOptRrSize] = {0, 0, 41};
    dns::put16(opt + 3, opts.edns_udp_size);
    opt[5] = static_cast<uint8_t>(rcode >> 4);  // extended rcode, upper 8 bits
    opt[7] = q.edns_do ? 0x80 : 0;              // RFC 3225: DO is echoed
    w.put_bytes(opt, sizeof opt);
    ++c.ar;
  }
  dns::put16(h + 2, static_cast<uint16_t>(flags | (rcode & 0xF)));
  dns::put16(h + 6, c.an);
  dns::put16(h + 8, c.ns);
  dns::put16(h + 10, c.ar);
  return w.size();
}

}  // namespace

size_t answer(const zones::ZoneSet& zones, std::span<const uint8_t> req, std::span<uint8_t> out, Transport transport,
              const AnswerOptions& opts, QueryContext& ctx) {
  dns::Query& q = ctx.query;
  dns::ParseStatus st = dns::parse_query(req, q);
  if (st == dns::ParseStatus::kDrop || out.size() < 512) return 0;

  size_t limit = transport == Transport::kTcp ? 65535
                 : q.edns ? std::clamp<size_t>(q.edns_udp_size, dns::kMaxUdpNoEdns, opts.edns_udp_size)
                          : dns::kMaxUdpNoEdns;
  limit = std::min(limit, out.size());
  Writer w(out.data(), q.edns ? limit - dns::kOptRrSize : limit);
  uint8_t header[dns::kHeaderSize] = {};
  dns::put16(header, q.id);
  dns::put16(header + 4, q.has_question ? 1 : 0);
  w.put_bytes(header, sizeof header);
  if (q.has_question) w.put_question(req.data() + dns::kHeaderSize, q.question_end - dns::kHeaderSize);
  uint16_t flags = static_cast<uint16_t>(dns::kFlagQR | (q.flags & (0x7800 | dns::kFlagRD | dns::kFlagCD)));
  Counts c;

  if (st == dns::ParseStatus::kFormErr) return finish(w, q, flags, dns::kRcodeFormErr, c, opts);
  if (st == dns::ParseStatus::kNotImp) return finish(w, q, flags, dns::kRcodeNotImp, c, opts);
  if (q.edns && q.edns_version > 0) return finish(w, q, flags, dns::kRcodeBadVers, c, opts);  // RFC 6891 §6.1.3
  if (q.qclass != dns::kClassIN) return finish(w, q, flags, dns::kRcodeRefused, c, opts);
  if (q.qtype == dns::kTypeAXFR || q.qtype == dns::kTypeIXFR)  // no zone transfers from this server
    return finish(w, q, flags, dns::kRcodeRefused, c, opts);
  if (q.qtype == dns::kTypeMAILA || q.qtype == dns::kTypeMAILB || q.qtype == dns::kTypeOPT)
    return finish(w, q, flags, dns::kRcodeNotImp, c, opts);

  const Zone* z = zones.find_zone(q.qname);
  if (!z) return finish(w, q, flags, dns::kRcodeRefused, c, opts);
  // DS lives on the parent side of a cut (RFC 4035 §3.1.4.1): at a child's
  // apex, answer from the parent zone when we serve it too.
  if (q.qtype == dns::kTypeDS && q.qname.len == z->origin().size())
    if (const Zone* parent = zones.find_zone(q.qname, 1)) z = parent;

  auto after_question = w.mark();
  Resolution r = resolve(zones, z, ctx, w, transport, c);
  if (r.aa) flags |= dns::kFlagAA;
  if (r.truncated) {
    // RFC 2181 §9: a partial RRset is worse than none; the client retries over TCP.
    w.reset(after_question);
    c = Counts{};
    flags |= dns::kFlagTC;
  }
  return finish(w, q, flags, r.rcode, c, opts);
}

}  // namespace vane::server
