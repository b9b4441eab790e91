// Streaming master-file loading (RFC 1035 §5) with ldns, one record at a time,
// into a compiled Zone. Runs at start-up and on reload, never on a DNS worker.
#pragma once

#include <memory>
#include <string>

#include "error.h"
#include "zone.h"

namespace vane::zones {

struct ZoneSource {
  std::string origin;  // "example.com"
  std::string file;    // path of the master file (also used in error messages)
  std::string text;    // when non-empty, the zone's contents (embedded demo); file is then a label
};

// Loads and checks one zone. Errors name file:line: syntax, out-of-zone
// records, CNAME beside other data, a missing or misplaced SOA, $INCLUDE loops.
Result<std::unique_ptr<Zone>> load_zone(const ZoneSource& src);

}  // namespace vane::zones
