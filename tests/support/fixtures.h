// Small zones shared by the integration tests.
#pragma once

#include <string>

namespace vane::test {

// r.test with an SOA of `serial` and www.r.test A `www` (6 lines, 4 records).
inline std::string zone_with(const std::string& www, int serial) {
  return "$ORIGIN r.test.\n$TTL 300\n@ IN SOA ns hostmaster " + std::to_string(serial) +
         " 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\nwww IN A " + www + "\n";
}

}  // namespace vane::test
