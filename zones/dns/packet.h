// Query parsing (header, question, EDNS OPT) and a response writer with
// name compression (RFC 1035 §4.1.4). Hot path: no allocation, fixed-size
// state, every read bounds-checked against hostile input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/name.h"
#include "dns/wire.h"

namespace vane::dns {

struct Query {
  uint16_t id = 0;
  uint16_t flags = 0;         // as received
  uint8_t opcode = 0;
  bool has_question = false;  // question parsed (echoed in any response)
  size_t question_end = 0;    // offset just past the question in the request
  NameBuf qname;              // lowercase copy; the request keeps the client's case
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool edns = false;
  uint8_t edns_version = 0;
  bool edns_do = false;
  bool edns_co = false;
  uint16_t edns_udp_size = 0;
  // EDNS Client Subnet (RFC 7871), when the query carried one.
  bool ecs = false;
  uint8_t ecs_family = 0;     // 1 = IPv4, 2 = IPv6
  uint8_t ecs_source = 0;     // SOURCE PREFIX-LENGTH
  uint8_t ecs_addr[16] = {};  // the address, zero beyond the prefix
};

inline constexpr uint16_t kOptionEcs = 8;

enum class ParseStatus : uint8_t {
  kOk,
  kDrop,     // not worth an answer: too short for a header, or a response
  kFormErr,  // malformed; answer FORMERR (with the question when it parsed)
  kNotImp,   // opcode we do not implement
};

ParseStatus parse_query(std::span<const uint8_t> pkt, Query& q);

// Skips the resource record at `pos`: its type, where its rdata starts and
// its length; returns the offset past it, or 0 when it is malformed.
size_t skip_rr(std::span<const uint8_t> pkt, size_t pos, NameBuf& scratch, uint16_t* type, size_t* rdata_at,
               uint16_t* rdlen);

// An IXFR request's serial: the SOA that opens its authority section
// (RFC 1995 §3). False when there is none or it is malformed.
bool read_ixfr_serial(std::span<const uint8_t> pkt, const Query& q, uint32_t& serial);

// Writes a response into a caller buffer. Every put_* returns false and
// writes nothing once the buffer is full; callers roll back with mark/reset.
class Writer {
 public:
  Writer(uint8_t* buf, size_t cap) : buf_(buf), cap_(cap) {}

  struct Mark {
    size_t size;
    uint8_t names;
  };
  Mark mark() const { return {size_, names_}; }
  void reset(Mark m) {
    size_ = m.size;
    names_ = m.names;
  }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  void set_capacity(size_t cap) { cap_ = cap; }
  uint8_t* data() { return buf_; }

  bool put_bytes(const uint8_t* p, size_t n) {
    if (n > cap_ - size_) return false;
    std::memcpy(buf_ + size_, p, n);
    size_ += n;
    return true;
  }
  bool put16(uint16_t v) {
    if (cap_ - size_ < 2) return false;
    dns::put16(buf_ + size_, v);
    size_ += 2;
    return true;
  }
  // Copies a question already in wire form and remembers its labels as
  // compression targets (the client's letter case is kept: RFC 1035 §7.3).
  bool put_question(const uint8_t* wire, size_t len);
  // Writes a lowercase uncompressed name, compressed against earlier names.
  bool put_name(const uint8_t* wire);
  // A compression pointer to `offset` (only for offsets known to hold a name).
  bool put_pointer(uint16_t offset) { return put16(static_cast<uint16_t>(0xC000 | offset)); }

 private:
  bool matches(size_t off, const uint8_t* name) const;
  void remember(size_t off) {
    if (names_ < kMaxTargets && off < 0x4000) targets_[names_++] = static_cast<uint16_t>(off);
  }

  static constexpr uint8_t kMaxTargets = 64;
  uint8_t* buf_;
  size_t cap_;
  size_t size_ = 0;
  uint8_t names_ = 0;
  uint16_t targets_[kMaxTargets];
};

}  // namespace vane::dns
