// Master-file loading (RFC 1035 §5) with ldns, parsed in parallel chunks,
// into a compiled Zone. Runs at start-up and on reload, never on a DNS worker.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dnssec.h"
#include "error.h"
#include "transfer.h"
#include "zone.h"

namespace vane::zones {

// One steered record for a zone, compiled by the caller (from vane.yaml).
struct SteeredInput {
  std::vector<uint8_t> owner;  // lowercase wire
  SteeredRecord record;        // ep_begin, info: filled in by the loader
  std::vector<SteeredEndpoint> endpoints;  // rdata_off: into `rdata`
  std::vector<uint8_t> rdata;
  SteeredInfo info;
  std::string file;  // where it was configured, for errors
  int line = 0;
};

struct ZoneSource {
  std::string origin;  // "example.com"
  std::string file;    // path of the master file (also used in error messages)
  std::string text;    // when non-empty, the zone's contents (embedded demo); file is then a label
  std::vector<SteeredInput> steered;
  size_t parse_chunk = 0;  // records per parallel parse chunk; 0: by size and cores (tests set it small)
  DnssecConfig dnssec;
  std::shared_ptr<const KeySet> keys;  // when signing: its published keys go into the apex DNSKEY RRset
  TransferSpec transfer;               // transfer: (not used to load; the control plane's)
  SecondarySpec secondary;             // primary: (then `file` is the stored copy, which may not exist yet)
};

// Loads and checks one zone. Errors name file:line: syntax, out-of-zone
// records, CNAME beside other data, a missing or misplaced SOA, $INCLUDE loops.
Result<std::unique_ptr<Zone>> load_zone(const ZoneSource& src);

// The hash of a file's contents that Zone::Source::contents holds: of
// `text`, or of the file at `path` as it is now (nullopt: unreadable).
uint64_t hash_text(std::string_view text);
std::optional<uint64_t> hash_file(const std::string& path);

}  // namespace vane::zones
