// Query parsing and compressed response writing. Hot path: bounded loops,
// no allocation; malformed input yields kFormErr/kDrop, never a crash.
#include "dns/packet.h"

namespace vane::dns {

size_t skip_rr(std::span<const uint8_t> pkt, size_t pos, NameBuf& scratch, uint16_t* type, size_t* rdata_at,
               uint16_t* rdlen) {
  pos = read_name(pkt, pos, scratch);
  if (pos == 0 || pos + 10 > pkt.size()) return 0;
  *type = get16(&pkt[pos]);
  *rdlen = get16(&pkt[pos + 8]);
  *rdata_at = pos + 10;
  pos += 10 + *rdlen;
  return pos <= pkt.size() ? pos : 0;
}

namespace {

// RFC 7871 §6: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS
// (just enough octets for the prefix, bits past it zero). Anything else, a
// second ECS option, or a non-zero scope in a query is malformed (§7.1.1,
// §7.2.1): FORMERR.
bool parse_ecs(std::span<const uint8_t> o, Query& q) {
  if (q.ecs || o.size() < 4) return false;
  uint16_t family = get16(o.data());
  uint8_t source = o[2], scope = o[3];
  size_t max_bits = family == 1 ? 32 : family == 2 ? 128 : 0;
  if (max_bits == 0 || source > max_bits || scope != 0) return false;
  size_t bytes = (source + 7) / 8;
  if (o.size() - 4 != bytes) return false;
  if (source % 8 && (o[4 + bytes - 1] & (0xFF >> (source % 8)))) return false;
  q.ecs = true;
  q.ecs_family = static_cast<uint8_t>(family);
  q.ecs_source = source;
  std::memset(q.ecs_addr, 0, sizeof q.ecs_addr);
  std::memcpy(q.ecs_addr, o.data() + 4, bytes);
  return true;
}

}  // namespace

ParseStatus parse_query(std::span<const uint8_t> pkt, Query& q) {
  if (pkt.size() < kHeaderSize) return ParseStatus::kDrop;
  q.id = get16(&pkt[0]);
  q.flags = get16(&pkt[2]);
  if (q.flags & kFlagQR) return ParseStatus::kDrop;  // never answer a response (loops, reflection)
  q.opcode = static_cast<uint8_t>((q.flags >> 11) & 0xF);
  q.has_question = false;
  q.edns = false;
  q.edns_version = 0;
  q.edns_do = false;
  q.edns_co = false;
  q.edns_udp_size = 0;
  q.ecs = false;
  uint16_t qd = get16(&pkt[4]), an = get16(&pkt[6]), ns = get16(&pkt[8]), ar = get16(&pkt[10]);

  size_t pos = kHeaderSize;
  if (qd == 1) {
    // The question is at offset 12: nothing precedes it, so a pointer there is
    // malformed, which read_name rejects (pointers must go backwards).
    size_t end = read_name(pkt, pos, q.qname);
    if (end == 0 || end + 4 > pkt.size()) return ParseStatus::kFormErr;
    q.qtype = get16(&pkt[end]);
    q.qclass = get16(&pkt[end + 2]);
    q.question_end = end + 4;
    q.has_question = true;
    pos = q.question_end;
  }
  if (q.opcode != kOpcodeQuery) return ParseStatus::kNotImp;
  if (qd != 1) return ParseStatus::kFormErr;

  NameBuf scratch;
  uint16_t type, rdlen;
  size_t rdata_at;
  for (uint32_t i = 0; i < uint32_t{an} + ns; ++i) {
    pos = skip_rr(pkt, pos, scratch, &type, &rdata_at, &rdlen);
    if (pos == 0) return ParseStatus::kFormErr;
  }
  for (uint16_t i = 0; i < ar; ++i) {
    pos = skip_rr(pkt, pos, scratch, &type, &rdata_at, &rdlen);
    if (pos == 0) return ParseStatus::kFormErr;
    if (type != kTypeOPT) continue;
    // RFC 6891 §6.1.1: one OPT, owned by the root.
    if (q.edns || scratch.len != 1) return ParseStatus::kFormErr;
    q.edns = true;
    // Fixed part before rdata: type(2) class=payload(2) ttl=ext-rcode,version,flags(4) rdlen(2).
    q.edns_udp_size = get16(&pkt[rdata_at - 8]);
    q.edns_version = pkt[rdata_at - 5];
    q.edns_do = (pkt[rdata_at - 4] & 0x80) != 0;
    q.edns_co = (pkt[rdata_at - 4] & 0x40) != 0;  // RFC 9824 §4: Compact Answers OK
    // Options must tile the rdata exactly.
    size_t opt = rdata_at, end = rdata_at + rdlen;
    while (opt < end) {
      if (end - opt < 4) return ParseStatus::kFormErr;
      size_t olen = get16(&pkt[opt + 2]);
      if (end - opt - 4 < olen) return ParseStatus::kFormErr;
      if (get16(&pkt[opt]) == kOptionEcs && !parse_ecs(pkt.subspan(opt + 4, olen), q)) return ParseStatus::kFormErr;
      opt += 4 + olen;
    }
  }
  return ParseStatus::kOk;
}

bool read_ixfr_serial(std::span<const uint8_t> pkt, const Query& q, uint32_t& serial) {
  if (!q.has_question || pkt.size() < kHeaderSize) return false;
  uint16_t an = get16(&pkt[6]), ns = get16(&pkt[8]);
  if (ns == 0) return false;
  NameBuf scratch;
  uint16_t type, rdlen;
  size_t rdata_at, pos = q.question_end;
  for (uint16_t i = 0; i < an && pos; ++i) pos = skip_rr(pkt, pos, scratch, &type, &rdata_at, &rdlen);
  if (pos) pos = skip_rr(pkt, pos, scratch, &type, &rdata_at, &rdlen);
  if (!pos || type != kTypeSOA) return false;
  size_t p = read_name(pkt, rdata_at, scratch);  // MNAME, then RNAME (either may be compressed)
  if (p) p = read_name(pkt, p, scratch);
  if (!p || p + 4 > rdata_at + rdlen) return false;
  serial = get32(&pkt[p]);
  return true;
}

bool Writer::put_question(const uint8_t* wire, size_t len) {
  size_t start = size_;
  if (!put_bytes(wire, len)) return false;
  // read_name() refused any pointer in the question, so labels run to the root.
  for (size_t off = start; off < size_ && buf_[off] != 0 && buf_[off] < 0x40; off += 1 + buf_[off]) remember(off);
  return true;
}

bool Writer::matches(size_t off, const uint8_t* name) const {
  while (true) {
    uint8_t c = buf_[off];
    if ((c & 0xC0) == 0xC0) {  // our own output: pointers are valid and go backwards
      off = (size_t{c} & 0x3F) << 8 | buf_[off + 1];
      continue;
    }
    if (c != *name) return false;
    if (c == 0) return true;
    for (uint8_t i = 1; i <= c; ++i)
      if (ascii_lower(buf_[off + i]) != name[i]) return false;
    off += 1 + c;
    name += 1 + c;
  }
}

bool Writer::put_name(const uint8_t* wire) {
  // Find the longest suffix already in the packet; labels before it go literally.
  const uint8_t* suffix = wire;
  int target = -1;
  for (; *suffix; suffix += 1 + *suffix) {
    for (uint8_t t = 0; t < names_; ++t) {
      if (matches(targets_[t], suffix)) {
        target = targets_[t];
        break;
      }
    }
    if (target >= 0) break;
  }
  size_t literal = static_cast<size_t>(suffix - wire);
  size_t need = literal + (target >= 0 ? 2 : 1);
  if (need > cap_ - size_) return false;
  size_t start = size_;
  std::memcpy(buf_ + size_, wire, literal);
  size_ += literal;
  if (target >= 0) {
    dns::put16(buf_ + size_, static_cast<uint16_t>(0xC000 | target));
    size_ += 2;
  } else {
    buf_[size_++] = 0;
  }
  for (size_t off = start; off < start + literal; off += 1 + buf_[off]) remember(off);
  return true;
}

}  // namespace vane::dns
