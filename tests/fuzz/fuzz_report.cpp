// libFuzzer: the body of an agent's POST /v1/observations.
#include <cstdint>
#include <string>

#include "http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<vane::healthcheck::Observation> out;
  (void)vane::admin::HttpServer::parse_report(std::string(reinterpret_cast<const char*>(data), size), "local", out);
  return 0;
}
