// Test-side DNS client: builds queries with ldns, sends them over real UDP or
// TCP sockets to 127.0.0.1/::1, and renders responses section by section so
// tests can assert the whole answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vane::test {

struct QueryOpts {
  bool tcp = false;
  bool edns = false;
  uint16_t udp_size = 1232;
  uint8_t edns_version = 0;
  bool do_bit = false;
  bool rd = true;
  uint16_t qclass = 1;
  int timeout_ms = 2000;
  std::string ecs;                 // client subnet, e.g. "10.1.2.0/24" (implies edns)
  std::vector<uint8_t> edns_data;  // raw OPT rdata instead (malformed options)
};

struct Response {
  uint16_t id = 0;
  std::string rcode;            // "NOERROR", "NXDOMAIN", ..., extended ones included ("BADVERS")
  bool qr = false, aa = false, tc = false, rd = false, ra = false, ad = false;
  std::vector<std::string> question;
  std::vector<std::string> answer, authority, additional;  // "owner ttl IN TYPE rdata", OPT excluded
  bool edns = false;
  uint16_t edns_udp_size = 0;
  std::string ecs;              // echoed client subnet: "ADDRESS/SOURCE/SCOPE", "" if none
  size_t size = 0;              // bytes on the wire
  std::string to_string() const;
};

// Presentation form of the sections, each RR on its own line (lowercased names).
std::string render(const Response& r);

// Raw exchange: returns the reply bytes or nullopt on timeout.
std::optional<std::vector<uint8_t>> exchange_raw(const std::string& host, uint16_t port, const std::vector<uint8_t>& q,
                                                 bool tcp, int timeout_ms = 2000);

std::vector<uint8_t> make_query(const std::string& qname, const std::string& qtype, const QueryOpts& o, uint16_t id);

std::optional<Response> parse_response(const std::vector<uint8_t>& wire);

std::optional<Response> query(const std::string& host, uint16_t port, const std::string& qname,
                               const std::string& qtype, const QueryOpts& o = {});

// Several queries on one TCP connection, written at once (pipelined).
std::vector<Response> query_pipelined(const std::string& host, uint16_t port,
                                      const std::vector<std::pair<std::string, std::string>>& questions);

}  // namespace vane::test
