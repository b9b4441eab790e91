// A real caching resolver for tests: Debian's Unbound on 127.0.0.1 with an
// ephemeral port, sending example zones to a vaned (stub-zone), started by
// the test and stopped by PID. What clients behind a resolver cache see.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace vane::test {

class Unbound {
 public:
  // `zones` are served by 127.0.0.1@stub_port. Without trust anchors no
  // DNSSEC validation; with them (DS or DNSKEY records in presentation
  // form), Unbound validates everything below them.
  Unbound(const std::vector<std::string>& zones, uint16_t stub_port,
          const std::vector<std::string>& trust_anchors = {});
  ~Unbound();
  uint16_t port() const { return port_; }
  std::string output() const { return proc_ ? proc_->output() : ""; }

 private:
  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> proc_;
};

}  // namespace vane::test
