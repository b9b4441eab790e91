// Lookup over a compiled Zone and the ZoneSet of all zones (RFC 1034 §4.3.2).
// Hot path: no allocation, no locks; at most one hash probe per label below
// the zone origin.
#include "zone.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace vane::zones {

namespace {

size_t index_capacity(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  return cap;
}

}  // namespace

size_t Zone::memory_bytes() const {
  // What is in use: capacity past it was never written, so it is not resident.
  return names_.size() + nodes_.size() * sizeof(Node) + rrsets_.size() * sizeof(RRset) + rdata_.size() +
         extra_.size() * 4 + index_.size() * 4 + index_hash_.size() * 4;
}

std::string Zone::answer_text(const SteeredRecord& r, const SteeredEndpoint& ep) const {
  const uint8_t* d = steered_rdata(ep);
  if (r.type == dns::kTypeCNAME) return dns::to_text({d, ep.rdlen});
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(r.type == dns::kTypeA ? AF_INET : AF_INET6, d, text, sizeof text);
  return text;
}

const RRset* Zone::find_rrset(uint32_t id, uint16_t type) const {
  for (const RRset& rs : rrsets(id))
    if (rs.type == type) return &rs;
  return nullptr;
}

uint32_t Zone::find(std::span<const uint8_t> wire, uint64_t hash) const {
  uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (uint32_t slot = static_cast<uint32_t>(hash) & index_mask_;; slot = (slot + 1) & index_mask_) {
    uint32_t id = index_[slot];
    if (id == kNone) return kNone;
    if (index_hash_[slot] == tag) {
      const Node& n = nodes_[id];
      if (n.name_len == wire.size() && std::memcmp(names_.data() + n.name_off, wire.data(), wire.size()) == 0)
        return id;
    }
  }
}

Lookup Zone::lookup(const dns::NameBuf& qname) const {
  Lookup r;
  size_t below = qname.labels - origin_labels_;
  for (size_t i = 0; i <= below; ++i) {
    uint32_t id = find(qname.suffix(i));
    if (id == kNone) continue;
    (i == 0 ? r.node : r.encloser) = id;
    r.cut = nodes_[id].cut;
    return r;
  }
  r.encloser = apex_;  // unreachable for names inside the zone: the apex always exists
  return r;
}

uint32_t Zone::dname_above(const dns::NameBuf& qname, uint32_t near) const {
  if (near == kNone || !(nodes_[near].flags & kNodeDnameScope)) return kNone;
  size_t below = qname.labels - origin_labels_;
  for (size_t i = below; i >= 1; --i) {  // from the apex down, stopping above qname
    uint32_t id = find(qname.suffix(i));
    if (id != kNone && find_rrset(id, dns::kTypeDNAME)) return id;
  }
  return kNone;
}

uint32_t Zone::wildcard_of(uint32_t encloser) const {
  if (!(nodes_[encloser].flags & kNodeWildcardChild)) return kNone;
  uint8_t buf[dns::kMaxNameLen + 2];
  auto parent = name_of(encloser);
  buf[0] = 1;
  buf[1] = '*';
  std::memcpy(buf + 2, parent.data(), parent.size());
  return find({buf, parent.size() + 2});
}

ZoneSet::ZoneSet(std::vector<std::unique_ptr<Zone>> zones)
    : ZoneSet(std::vector<std::shared_ptr<const Zone>>(std::make_move_iterator(zones.begin()),
                                                       std::make_move_iterator(zones.end()))) {}

ZoneSet::ZoneSet(std::vector<std::shared_ptr<const Zone>> zones) : zones_(std::move(zones)) {
  size_t cap = index_capacity(zones_.size());
  index_.assign(cap, kNone);
  index_hash_.assign(cap, 0);
  index_mask_ = static_cast<uint32_t>(cap - 1);
  min_labels_ = UINT8_MAX;
  for (uint32_t i = 0; i < zones_.size(); ++i) {
    auto origin = zones_[i]->origin();
    uint64_t h = dns::hash_name(origin);
    uint32_t slot = static_cast<uint32_t>(h) & index_mask_;
    while (index_[slot] != kNone) slot = (slot + 1) & index_mask_;
    index_[slot] = i;
    index_hash_[slot] = h;
    auto labels = static_cast<uint8_t>(dns::label_count(origin.data()));
    if (labels < min_labels_) min_labels_ = labels;
    if (labels > max_labels_) max_labels_ = labels;
  }
}

const Zone* ZoneSet::find_zone(const dns::NameBuf& qname, size_t skip) const {
  if (zones_.empty() || qname.labels < min_labels_ + skip) return nullptr;
  size_t first = std::max(skip, qname.labels > max_labels_ ? size_t(qname.labels - max_labels_) : size_t{0});
  size_t last = qname.labels - min_labels_;
  for (size_t i = first; i <= last; ++i) {
    auto suffix = qname.suffix(i);
    uint64_t h = dns::hash_name(suffix);
    for (uint32_t slot = static_cast<uint32_t>(h) & index_mask_; index_[slot] != kNone;
         slot = (slot + 1) & index_mask_) {
      if (index_hash_[slot] != h) continue;
      const Zone* z = zones_[index_[slot]].get();
      auto origin = z->origin();
      if (origin.size() == suffix.size() && std::memcmp(origin.data(), suffix.data(), suffix.size()) == 0)
        return z;
    }
  }
  return nullptr;
}

}  // namespace vane::zones
