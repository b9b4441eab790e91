// libFuzzer: the zone loader (our record cutter + ldns per record + the
// compile: names, cuts, wildcards, DNAME scope) on arbitrary master-file
// text, parsed in chunks of three records on helper threads so that chunk
// boundaries (blank owners, directives, first errors) are fuzzed too.
// Errors are values; nothing may crash or leak.
#include <cstdint>
#include <string>

#include "zone_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vane::zones::ZoneSource src;
  src.origin = "example.com";
  src.file = "/nonexistent/fuzz.zone";  // $INCLUDEs resolve under a directory that does not exist
  src.text.assign(reinterpret_cast<const char*>(data), size);
  if (src.text.empty()) return 0;
  src.parse_chunk = 3;
  auto z = vane::zones::load_zone(src);
  if (z) (void)(*z)->record_count();
  return 0;
}
