// Domain names in wire form (RFC 1035 §3.1): parsing from packets with
// compression-pointer safety, lowercase canonical copies and label walking.
// Hot path: no allocation; every function works on caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "dns/wire.h"

namespace vane::dns {

// A name in uncompressed wire form, lowercased, with label offsets so that
// walking to the parent is O(1). Lives on the stack or in a per-query context.
struct NameBuf {
  uint8_t data[kMaxNameLen + 1];
  uint8_t label_off[kMaxLabels];
  uint8_t len = 0;      // bytes including the root label
  uint8_t labels = 0;   // not counting the root label

  std::span<const uint8_t> wire() const { return {data, len}; }
  // The suffix that starts at label i (0 = whole name, labels = root).
  std::span<const uint8_t> suffix(size_t i) const {
    size_t off = i < labels ? label_off[i] : len - 1u;
    return {data + off, len - off};
  }
};

// Reads a possibly compressed name at `pos` of `pkt` into `out` (lowercased).
// Returns the offset just past the name's in-place encoding, or 0 on any
// malformation: truncation, label > 63, name > 255, forward or looping
// pointers (each pointer must point strictly before the previous one) and
// pointers into the 12-byte header.
size_t read_name(std::span<const uint8_t> pkt, size_t pos, NameBuf& out);

// Fills label offsets for an uncompressed wire name already in out.data.
bool index_name(NameBuf& out);

// Validates an uncompressed wire name; returns its length or 0.
size_t wire_name_len(std::span<const uint8_t> wire);

// Number of labels of an uncompressed wire name (root = 0).
size_t label_count(const uint8_t* wire);

// Case-insensitive equality of two uncompressed wire names.
bool names_equal(const uint8_t* a, const uint8_t* b);

// True when `sub` is `parent` or below it (both uncompressed wire names).
bool is_subdomain(std::span<const uint8_t> sub, std::span<const uint8_t> parent);

// Presentation form ("www.example.com.") for logs and errors, never the hot path.
std::string to_text(std::span<const uint8_t> wire);

// A name as an operator typed it, in the form names are compared in
// outside the wire: lower case, with the trailing dot ("Example.COM" ->
// "example.com.", "" -> ".").
std::string canonical_text(std::string text);

// Parses a presentation-form name (relative names are taken as absolute).
// Returns false on syntax errors. Escapes (\. and \DDD) are honoured.
bool from_text(std::string_view text, NameBuf& out);

// 64-bit hash of a lowercase wire name; the zone index and the hot path agree on it.
uint64_t hash_name(std::span<const uint8_t> wire);

}  // namespace vane::dns
