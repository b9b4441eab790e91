// DNS wire-format constants and big-endian helpers (RFC 1035 §4, RFC 6891).
// Pure header: no daemon knowledge, no allocation, safe on the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vane::dns {

// RR types we treat specially; every other type is carried as opaque rdata.
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeNS = 2;
inline constexpr uint16_t kTypeCNAME = 5;
inline constexpr uint16_t kTypeSOA = 6;
inline constexpr uint16_t kTypePTR = 12;
inline constexpr uint16_t kTypeHINFO = 13;
inline constexpr uint16_t kTypeMX = 15;
inline constexpr uint16_t kTypeTXT = 16;
inline constexpr uint16_t kTypeAAAA = 28;
inline constexpr uint16_t kTypeSRV = 33;
inline constexpr uint16_t kTypeDNAME = 39;
inline constexpr uint16_t kTypeOPT = 41;
inline constexpr uint16_t kTypeDS = 43;
inline constexpr uint16_t kTypeRRSIG = 46;
inline constexpr uint16_t kTypeNSEC = 47;
inline constexpr uint16_t kTypeDNSKEY = 48;
inline constexpr uint16_t kTypeCDS = 59;
inline constexpr uint16_t kTypeCDNSKEY = 60;
inline constexpr uint16_t kTypeNXNAME = 128;  // RFC 9824: meta type, only in a compact denial's NSEC bitmap
inline constexpr uint16_t kTypeIXFR = 251;
inline constexpr uint16_t kTypeAXFR = 252;
inline constexpr uint16_t kTypeMAILB = 253;
inline constexpr uint16_t kTypeMAILA = 254;
inline constexpr uint16_t kTypeANY = 255;

inline constexpr uint16_t kClassIN = 1;
inline constexpr uint16_t kClassCH = 3;
inline constexpr uint16_t kClassANY = 255;

inline constexpr uint8_t kRcodeNoError = 0;
inline constexpr uint8_t kRcodeFormErr = 1;
inline constexpr uint8_t kRcodeServFail = 2;
inline constexpr uint8_t kRcodeNxDomain = 3;
inline constexpr uint8_t kRcodeNotImp = 4;
inline constexpr uint8_t kRcodeRefused = 5;
inline constexpr uint8_t kRcodeYxDomain = 6;  // RFC 6672 §2.2: a DNAME substitution too long
inline constexpr uint16_t kRcodeBadVers = 16;  // extended: upper 8 bits live in OPT

inline constexpr uint8_t kOpcodeQuery = 0;

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxNameLen = 255;
inline constexpr size_t kMaxLabels = 128;
inline constexpr size_t kMaxUdpNoEdns = 512;
inline constexpr size_t kOptRrSize = 11;  // root owner + type + class + ttl + rdlen

// Header flag bits, as they sit in the 16-bit flags word.
inline constexpr uint16_t kFlagQR = 0x8000;
inline constexpr uint16_t kFlagAA = 0x0400;
inline constexpr uint16_t kFlagTC = 0x0200;
inline constexpr uint16_t kFlagRD = 0x0100;
inline constexpr uint16_t kFlagRA = 0x0080;
inline constexpr uint16_t kFlagAD = 0x0020;
inline constexpr uint16_t kFlagCD = 0x0010;

inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

inline uint8_t ascii_lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

}  // namespace vane::dns
