// Owning pointers for ldns objects (zone loading, DNSSEC keys). Never used
// on the hot path.
#pragma once

#include <ldns/ldns.h>

#include <memory>

namespace vane::zones {

struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
struct RrFree {
  void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
struct BufferFree {
  void operator()(ldns_buffer* b) const { ldns_buffer_free(b); }
};
using BufferPtr = std::unique_ptr<ldns_buffer, BufferFree>;
struct KeyFree {
  void operator()(ldns_key* k) const { ldns_key_deep_free(k); }
};
using LdnsKeyPtr = std::unique_ptr<ldns_key, KeyFree>;

}  // namespace vane::zones
