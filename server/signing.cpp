// RRSIGs from the per-thread cache and the NSECs of online denial.
#include "signing.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace vane::server {

namespace {

using zones::SigCache;

constexpr int kMaxNsecTypes = 64;  // a compact NSEC lists at most this many types

uint8_t rrsig_labels(const uint8_t* name) {
  size_t n = dns::label_count(name);
  if (n > 0 && name[0] == 1 && name[1] == '*') --n;  // RFC 4034 §3.1.3: the wildcard label is not counted
  return static_cast<uint8_t>(n);
}

size_t name_len(const uint8_t* name) {
  return dns::wire_name_len({name, dns::kMaxNameLen});
}

// The steered endpoints picked for this answer, in index order (the same
// set in any rotation is the same RRset).
int sorted_pick(const zones::Pick& pick, uint16_t* out) {
  int n = pick.count;
  std::copy(pick.index, pick.index + n, out);
  std::sort(out, out + n);
  return n;
}

uint64_t content_key(const zones::Zone& z, const Signed& s, QueryContext& ctx) {
  uint64_t h = zones::hash_mix(z.keys()->id, uint64_t{s.type} << 32 | s.original_ttl);
  h = zones::hash_bytes(h, s.name, name_len(s.name));
  if (s.rdata) return zones::hash_bytes(h, s.rdata, s.rdlen) | 1;  // 0 marks an empty cache slot
  const zones::RRset& rs = *s.rrset;
  if (!rs.steered) return zones::hash_bytes(h, z.rdata(rs), rs.rdata_size) | 1;
  auto eps = z.endpoints(z.steered(rs));
  uint16_t idx[zones::kMaxEndpoints];
  int n = sorted_pick(ctx.pick, idx);
  for (int i = 0; i < n; ++i) h = zones::hash_bytes(h, z.steered_rdata(eps[idx[i]]), eps[idx[i]].rdlen);
  return h | 1;
}

// A cache miss: sign now, on this thread.
bool make_signature(const zones::Zone& z, const Signed& s, const zones::DnssecKey& key, uint32_t now,
                    SigCache::Entry& e, QueryContext& ctx) {
  thread_local std::vector<zones::RdataRef> rdatas;
  rdatas.clear();
  if (s.rdata) {
    rdatas.push_back({s.rdata, s.rdlen});
  } else if (!s.rrset->steered) {
    const uint8_t* rd = z.rdata(*s.rrset);
    for (uint16_t i = 0; i < s.rrset->count; ++i) {
      uint16_t len = dns::get16(rd);
      rdatas.push_back({rd + 2, len});
      rd += 2 + len;
    }
  } else {
    auto eps = z.endpoints(z.steered(*s.rrset));
    for (uint8_t i = 0; i < ctx.pick.count; ++i) {
      const auto& ep = eps[ctx.pick.index[i]];
      rdatas.push_back({z.steered_rdata(ep), ep.rdlen});
    }
  }
  zones::SigHeader h{s.type,
                     key.algorithm,
                     rrsig_labels(s.name),
                     s.original_ttl,
                     now + SigCache::kValidity,
                     now - SigCache::kBackdate,
                     key.tag};
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  bool ok = zones::sign_rrset(key, z.keys()->signer, h, {s.name, name_len(s.name)}, rdatas, e.sig);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (ctx.counters) {
    auto& c = *ctx.counters;
    QueryCounters::bump(ok ? c.sig_misses : c.sig_failures);
    c.sig_ns.store(c.sig_ns.load(std::memory_order_relaxed) + uint64_t((t1.tv_sec - t0.tv_sec) * 1000000000LL +
                                                                         (t1.tv_nsec - t0.tv_nsec)),
                   std::memory_order_relaxed);
  }
  e.inception = h.inception;
  e.expiration = h.expiration;
  e.tag = key.tag;
  e.algorithm = key.algorithm;
  return ok;
}

}  // namespace

bool put_rrsig(dns::Writer& w, const zones::Zone& z, const Signed& s, uint16_t owner_ptr, const uint8_t* owner_name,
               uint32_t ttl, uint16_t& count, QueryContext& ctx) {
  const zones::KeySet* keys = z.keys();
  uint64_t key = content_key(z, s, ctx);
  // The worker's per-batch clock; a caller without one (tests) reads it here.
  uint32_t now = ctx.wall ? ctx.wall : static_cast<uint32_t>(time(nullptr));
  const SigCache::Entry* e = ctx.sigs.find(key, now);
  if (e) {
    if (ctx.counters) QueryCounters::bump(ctx.counters->sig_hits);
  } else {
    const zones::DnssecKey* k = keys->signer_for(s.type);
    if (!k) return true;
    SigCache::Entry& slot = ctx.sigs.insert(key, now);
    if (!make_signature(z, s, *k, now, slot, ctx)) {
      ctx.sigs.drop(slot);
      return true;
    }
    e = &slot;
  }
  bool ok = owner_ptr ? w.put_pointer(owner_ptr) : w.put_name(owner_name);
  uint8_t fixed[10 + 18];
  dns::put16(fixed, dns::kTypeRRSIG);
  dns::put16(fixed + 2, dns::kClassIN);
  dns::put32(fixed + 4, ttl);
  size_t rdlen = 18 + keys->signer.size() + zones::kSigLen;
  dns::put16(fixed + 8, static_cast<uint16_t>(rdlen));
  uint8_t* r = fixed + 10;
  dns::put16(r, s.type);
  r[2] = e->algorithm;
  r[3] = rrsig_labels(s.name);
  dns::put32(r + 4, s.original_ttl);
  dns::put32(r + 8, e->expiration);
  dns::put32(r + 12, e->inception);
  dns::put16(r + 16, e->tag);
  // RFC 4034 §3.1.7: the signer's name is never compressed.
  ok = ok && w.put_bytes(fixed, sizeof fixed) && w.put_bytes(keys->signer.data(), keys->signer.size()) &&
       w.put_bytes(e->sig, zones::kSigLen);
  if (ok) ++count;
  return ok;
}

namespace {

// NSEC rdata: next name (uncompressed, RFC 4034 §4.1.1) and the type bitmap
// (§4.1.2) of `types`, which must be sorted.
size_t nsec_rdata(uint8_t* out, const uint8_t* next, size_t next_len, const uint16_t* types, int n) {
  std::memcpy(out, next, next_len);
  size_t at = next_len;
  for (int i = 0; i < n;) {
    uint8_t window = static_cast<uint8_t>(types[i] >> 8);
    uint8_t bits[32] = {};
    uint8_t len = 0;
    for (; i < n && (types[i] >> 8) == window; ++i) {
      uint8_t low = static_cast<uint8_t>(types[i]);
      bits[low / 8] |= static_cast<uint8_t>(0x80 >> (low % 8));
      len = static_cast<uint8_t>(low / 8 + 1);
    }
    out[at++] = window;
    out[at++] = len;
    std::memcpy(out + at, bits, len);
    at += len;
  }
  return at;
}

// "\0.<name>": the name's immediate successor in canonical order.
size_t successor(const uint8_t* name, size_t len, uint8_t* out) {
  if (len + 2 > dns::kMaxNameLen) return 0;
  out[0] = 1;
  out[1] = 0;
  std::memcpy(out + 2, name, len);
  return len + 2;
}

bool put_nsec(dns::Writer& w, const zones::Zone& z, const uint8_t* owner, uint16_t owner_ptr, const uint8_t* next,
              size_t next_len, const uint16_t* types, int ntypes, uint16_t& count, QueryContext& ctx) {
  uint8_t rdata[dns::kMaxNameLen + 1 + kMaxNsecTypes * 34];  // at worst a window (2 + 32 bytes) per type
  size_t rdlen = nsec_rdata(rdata, next, next_len, types, ntypes);
  // RFC 9824 §3 / RFC 4034 §4: the TTL of negative answers, min(SOA TTL, MINIMUM).
  uint32_t ttl = z.negative_ttl();
  size_t at = w.size();
  bool ok = owner_ptr ? w.put_pointer(owner_ptr) : w.put_name(owner);
  uint8_t fixed[10];
  dns::put16(fixed, dns::kTypeNSEC);
  dns::put16(fixed + 2, dns::kClassIN);
  dns::put32(fixed + 4, ttl);
  dns::put16(fixed + 8, static_cast<uint16_t>(rdlen));
  if (!ok || !w.put_bytes(fixed, 10) || !w.put_bytes(rdata, rdlen)) return false;
  ++count;
  if (!owner_ptr && at < 0x4000) owner_ptr = static_cast<uint16_t>(at);
  Signed s{dns::kTypeNSEC, ttl, owner, nullptr, rdata, static_cast<uint16_t>(rdlen)};
  return put_rrsig(w, z, s, owner_ptr, owner, ttl, count, ctx);
}

}  // namespace

bool put_compact_nsec(dns::Writer& w, const zones::Zone& z, const uint8_t* name, uint16_t name_ptr, uint32_t node,
                      uint16_t qtype, bool nxname, uint16_t& count, QueryContext& ctx) {
  uint16_t types[kMaxNsecTypes];
  int n = 0;
  if (node != zones::kNone)
    for (const zones::RRset& rs : z.rrsets(node))
      if (rs.type != qtype && rs.type != dns::kTypeRRSIG && rs.type != dns::kTypeNSEC && n < kMaxNsecTypes - 3)
        types[n++] = rs.type;
  types[n++] = dns::kTypeRRSIG;
  types[n++] = dns::kTypeNSEC;
  if (nxname) types[n++] = dns::kTypeNXNAME;
  std::sort(types, types + n);
  n = int(std::unique(types, types + n) - types);
  uint8_t next[dns::kMaxNameLen + 1];
  size_t next_len = successor(name, name_len(name), next);
  if (!next_len) return true;  // a 254-byte name has no successor to name: left unproven
  return put_nsec(w, z, name, name_ptr, next, next_len, types, n, count, ctx);
}

void note_wildcard(const zones::Zone& z, const dns::NameBuf& qname, uint32_t encloser, QueryContext& ctx) {
  if (!signs(ctx, z) || ctx.wildcard_proof_count >= QueryContext::kMaxWildcardProofs) return;
  // The next closer name: the closest encloser plus one label of qname.
  size_t ce_labels = dns::label_count(z.name_of(encloser).data());
  auto nc = qname.suffix(qname.labels - ce_labels - 1);
  for (int i = 0; i < ctx.wildcard_proof_count; ++i)
    if (ctx.wildcard_proofs[i].zone == &z && dns::names_equal(ctx.wildcard_proofs[i].next_closer, nc.data())) return;
  auto& p = ctx.wildcard_proofs[ctx.wildcard_proof_count++];
  p.zone = &z;
  std::memcpy(p.next_closer, nc.data(), nc.size());
}

bool put_wildcard_proofs(dns::Writer& w, uint16_t& count, QueryContext& ctx) {
  static constexpr uint16_t kTypes[] = {dns::kTypeRRSIG, dns::kTypeNSEC};
  for (int i = 0; i < ctx.wildcard_proof_count; ++i) {
    const auto& p = ctx.wildcard_proofs[i];
    const uint8_t* nc = p.next_closer;
    size_t len = name_len(nc);
    // Owner: the first label made just smaller (last octet down by one, or
    // dropped when 0) and filled with \255 to 63 octets, so no other label
    // sorts between it and the next closer name (RFC 4471 §3.1.2).
    uint8_t owner[dns::kMaxNameLen + 1];
    uint8_t label = nc[0];
    size_t rest = len - 1 - label;
    if (label == 0) continue;
    std::memcpy(owner + 1, nc + 1, label);
    uint8_t out_label = label;
    if (owner[label] == 0) {
      --out_label;
    } else {
      --owner[label];
      size_t room = std::min<size_t>(63, dns::kMaxNameLen - rest - 1);
      while (out_label < room) owner[1 + out_label++] = 0xFF;
    }
    if (out_label == 0) continue;  // "\0" has no predecessor label
    owner[0] = out_label;
    std::memcpy(owner + 1 + out_label, nc + 1 + label, rest);
    // Next: the first label with \0 appended, just after the next closer
    // name and everything below it. ("\0.<it>" would be below it, and a
    // validator takes the longest name shared with either end for the
    // closest encloser: it must be the wildcard's parent.)
    uint8_t next[dns::kMaxNameLen + 1];
    size_t next_len = 0;
    if (label < 63 && len < dns::kMaxNameLen) {
      next[0] = static_cast<uint8_t>(label + 1);
      std::memcpy(next + 1, nc + 1, label);
      next[1 + label] = 0;
      std::memcpy(next + 2 + label, nc + 1 + label, rest);
      next_len = len + 1;
    } else {
      next_len = successor(nc, len, next);
    }
    if (!next_len) continue;
    if (!put_nsec(w, *p.zone, owner, 0, next, next_len, kTypes, 2, count, ctx)) return false;
  }
  return true;
}

}  // namespace vane::server
