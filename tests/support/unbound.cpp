#include "unbound.h"

#include <stdexcept>

#include "dns_client.h"
#include "fixtures.h"

namespace vane::test {

Unbound::Unbound(const std::vector<std::string>& zones, uint16_t stub_port,
                 const std::vector<std::string>& trust_anchors)
    : port_(free_port()) {
  bool validating = !trust_anchors.empty();
  std::string conf = "server:\n"
                     "  interface: 127.0.0.1\n"
                     "  port: " + std::to_string(port_) + "\n"
                     "  do-ip6: no\n"
                     "  do-daemonize: no\n"
                     "  username: \"\"\n"
                     "  chroot: \"\"\n"
                     "  directory: \"" + dir_.path() + "\"\n"
                     "  pidfile: \"\"\n"
                     "  use-syslog: no\n"
                     "  logfile: \"\"\n"
                     "  verbosity: 1\n"
                     "  num-threads: 1\n"
                     "  access-control: 127.0.0.0/8 allow\n"
                     "  do-not-query-localhost: no\n"
                     "  qname-minimisation: no\n"
                     "  prefetch: no\n"
                     "  serve-expired: no\n"
                     "  cache-min-ttl: 0\n";
  if (validating) {
    conf += "  module-config: \"validator iterator\"\n  val-log-level: 2\n";
    for (const auto& ta : trust_anchors) conf += "  trust-anchor: \"" + ta + "\"\n";
  } else {
    conf += "  module-config: \"iterator\"\n";
    for (const auto& z : zones) conf += "  domain-insecure: \"" + z + "\"\n";
  }
  conf += "remote-control:\n  control-enable: no\n";
  for (const auto& z : zones)
    conf += "stub-zone:\n  name: \"" + z + "\"\n  stub-addr: 127.0.0.1@" + std::to_string(stub_port) + "\n";
  std::string path = dir_.write("unbound.conf", conf);
  proc_ = std::make_unique<Process>(std::vector<std::string>{"/usr/sbin/unbound", "-d", "-c", path});
  if (!eventually([&] { return query("127.0.0.1", port_, zones.at(0), "SOA", {.timeout_ms = 300}).has_value(); },
                  10000))
    throw std::runtime_error("unbound did not start: " + proc_->output());
}

Unbound::~Unbound() = default;  // the Process stops it by PID

}  // namespace vane::test
