// libFuzzer: vane.yaml parsing (yaml-cpp + our validation of every key).
// Every failure must be an Error value with a message.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = vane::parse_config(text, "fuzz.yaml", "/nonexistent");
  if (!c && c.error().message.empty()) abort();
  if (c) (void)vane::serving_digest(*c);
  return 0;
}
