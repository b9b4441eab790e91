// Wire-name parsing and helpers. read_name() is on the hot path: bounded
// loops, no allocation; the text helpers are for logs and config only.
#include "dns/name.h"

#include <cctype>

namespace vane::dns {

size_t read_name(std::span<const uint8_t> pkt, size_t pos, NameBuf& out) {
  size_t end = 0;        // offset after the name in place (set at first pointer)
  size_t limit = pos;    // pointers must go strictly backwards: no loops possible
  size_t len = 0;
  size_t labels = 0;
  while (true) {
    if (pos >= pkt.size()) return 0;
    uint8_t c = pkt[pos];
    if ((c & 0xC0) == 0xC0) {
      if (pos + 1 >= pkt.size()) return 0;
      size_t target = (size_t{c} & 0x3F) << 8 | pkt[pos + 1];
      if (end == 0) end = pos + 2;
      // Strictly backwards (so no loops) and never into the 12-byte header.
      if (target >= limit || target < kHeaderSize) return 0;
      limit = target;
      pos = target;
      continue;
    }
    if (c & 0xC0) return 0;  // 0x40/0x80: extended label types (RFC 6891 §5) are obsolete
    if (c == 0) {
      if (len + 1 > kMaxNameLen) return 0;
      out.data[len++] = 0;
      out.len = static_cast<uint8_t>(len);
      out.labels = static_cast<uint8_t>(labels);
      return end ? end : pos + 1;
    }
    if (pos + 1 + c > pkt.size() || len + 1 + c + 1 > kMaxNameLen) return 0;
    out.label_off[labels++] = static_cast<uint8_t>(len);
    out.data[len++] = c;
    for (size_t i = 0; i < c; ++i) out.data[len++] = ascii_lower(pkt[pos + 1 + i]);
    pos += 1 + c;
  }
}

bool index_name(NameBuf& out) {
  size_t pos = 0;
  size_t labels = 0;
  while (pos < sizeof(out.data)) {
    uint8_t c = out.data[pos];
    if (c == 0) {
      out.len = static_cast<uint8_t>(pos + 1);
      out.labels = static_cast<uint8_t>(labels);
      return true;
    }
    if (c > 63 || pos + 1 + c >= kMaxNameLen) return false;
    out.label_off[labels++] = static_cast<uint8_t>(pos);
    pos += 1 + c;
  }
  return false;
}

size_t wire_name_len(std::span<const uint8_t> wire) {
  size_t pos = 0;
  while (pos < wire.size()) {
    uint8_t c = wire[pos];
    if (c == 0) return pos + 1 <= kMaxNameLen ? pos + 1 : 0;
    if (c > 63) return 0;
    pos += 1 + c;
  }
  return 0;
}

size_t label_count(const uint8_t* wire) {
  size_t n = 0;
  while (*wire) {
    wire += 1 + *wire;
    ++n;
  }
  return n;
}

bool names_equal(const uint8_t* a, const uint8_t* b) {
  while (true) {
    if (*a != *b) return false;
    uint8_t n = *a;
    if (n == 0) return true;
    for (uint8_t i = 1; i <= n; ++i)
      if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    a += 1 + n;
    b += 1 + n;
  }
}

bool is_subdomain(std::span<const uint8_t> sub, std::span<const uint8_t> parent) {
  if (parent.size() > sub.size()) return false;
  // Walk sub's labels until the remaining suffix has parent's length.
  size_t pos = 0;
  while (sub.size() - pos > parent.size()) {
    if (sub[pos] == 0) return false;
    pos += 1 + sub[pos];
  }
  return sub.size() - pos == parent.size() && names_equal(sub.data() + pos, parent.data());
}

std::string canonical_text(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text.empty() || text.back() != '.') text += '.';
  return text;
}

std::string to_text(std::span<const uint8_t> wire) {
  std::string s;
  size_t pos = 0;
  if (wire.empty() || wire[0] == 0) return ".";
  while (pos < wire.size() && wire[pos] != 0) {
    uint8_t n = wire[pos];
    for (size_t i = 1; i <= n && pos + i < wire.size(); ++i) {
      unsigned char c = wire[pos + i];
      if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')') {
        s += '\\';
        s += static_cast<char>(c);
      } else if (c <= 0x20 || c >= 0x7F) {
        char buf[5];
        snprintf(buf, sizeof buf, "\\%03u", c);
        s += buf;
      } else {
        s += static_cast<char>(c);
      }
    }
    s += '.';
    pos += 1 + n;
  }
  return s;
}

bool from_text(std::string_view text, NameBuf& out) {
  size_t len = 0;
  size_t labels = 0;
  if (text == "." || text.empty()) {
    out.data[0] = 0;
    out.len = 1;
    out.labels = 0;
    return true;
  }
  size_t i = 0;
  while (i < text.size()) {
    if (labels >= kMaxLabels) return false;
    size_t label_start = len++;
    size_t n = 0;
    while (i < text.size() && text[i] != '.') {
      unsigned char c = static_cast<unsigned char>(text[i++]);
      if (c == '\\') {
        if (i >= text.size()) return false;
        if (isdigit(static_cast<unsigned char>(text[i]))) {
          if (i + 3 > text.size()) return false;
          int v = 0;
          for (int k = 0; k < 3; ++k) {
            if (!isdigit(static_cast<unsigned char>(text[i + k]))) return false;
            v = v * 10 + (text[i + k] - '0');
          }
          if (v > 255) return false;
          c = static_cast<unsigned char>(v);
          i += 3;
        } else {
          c = static_cast<unsigned char>(text[i++]);
        }
      }
      if (len + 2 > kMaxNameLen || n >= 63) return false;
      out.data[len++] = ascii_lower(c);
      ++n;
    }
    if (n == 0) return false;  // empty label ("a..b")
    out.data[label_start] = static_cast<uint8_t>(n);
    out.label_off[labels++] = static_cast<uint8_t>(label_start);
    if (i < text.size()) ++i;  // skip the dot; a trailing dot ends the loop
  }
  out.data[len++] = 0;
  out.len = static_cast<uint8_t>(len);
  out.labels = static_cast<uint8_t>(labels);
  return true;
}

uint64_t hash_name(std::span<const uint8_t> wire) {
  // FNV-1a folded 8 bytes at a time: names are short, and the zone index
  // stores the hash so a probe compares bytes only on a hash match.
  uint64_t h = 0xcbf29ce484222325ULL ^ wire.size();
  size_t i = 0;
  for (; i + 8 <= wire.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, wire.data() + i, 8);
    h = (h ^ v) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < wire.size(); ++i) h = (h ^ wire[i]) * 0x100000001b3ULL;
  h ^= h >> 32;
  return h * 0x9E3779B97F4A7C15ULL;
}

}  // namespace vane::dns
