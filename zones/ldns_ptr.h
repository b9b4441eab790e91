// Owning pointers for ldns objects (zone loading, DNSSEC keys). Never used
// on the hot path.
#pragma once

#include <ldns/ldns.h>

#include <memory>

namespace vane::zones {

// Frees with `Free` (ldns_rr_free, ldns_rdf_deep_free, ...).
template <auto Free>
struct LdnsFree {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};
using RdfPtr = std::unique_ptr<ldns_rdf, LdnsFree<ldns_rdf_deep_free>>;
using RrPtr = std::unique_ptr<ldns_rr, LdnsFree<ldns_rr_free>>;
using BufferPtr = std::unique_ptr<ldns_buffer, LdnsFree<ldns_buffer_free>>;
using LdnsKeyPtr = std::unique_ptr<ldns_key, LdnsFree<ldns_key_deep_free>>;

}  // namespace vane::zones
