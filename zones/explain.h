// explain(): why a client gets the answer it gets from a steered record —
// the chain's steps in words. Control plane only (vanectl explain); runs the
// same select() as the hot path, with a Trace.
#pragma once

#include <string>
#include <vector>

#include "error.h"
#include "zone.h"

namespace vane::zones {

struct Explanation {
  std::string record;  // owner name
  std::string type;
  std::string policy;
  std::string client;  // as steering saw it, e.g. "10.1.2.0/24 (ECS)"
  std::vector<std::string> steps;
  std::vector<std::string> answer;  // "192.0.2.10 (use1)"
  uint8_t scope = 0;                // ECS scope the answer would carry
};

// `qtype` 0 means the first steered type at the name. `rng_seed` fixes the
// weighted draw, so the same call explains the same pick.
Result<Explanation> explain(const ZoneSet& zones, const std::string& qname, uint16_t qtype, const Client& client,
                            uint64_t rng_seed = 0x9E3779B97F4A7C15ULL);

// The steered records, for an error that names what there is: the first
// `shown` ("www.example.com./A, ..."), then "and N more"; "none".
std::string steered_record_list(const ZoneSet& zones, size_t shown = 20);

// "10.1.2.3", "10.1.2.0/24", "2001:db8::/56" -> Client (ecs = has a prefix).
bool parse_client(const std::string& text, Client& out);

}  // namespace vane::zones
