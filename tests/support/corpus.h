// The query corpus of the differential test against Knot: every name of
// tests/data/*.zone and the shapes around them, the types asked of each,
// and types asked only where they live. Also what the DNSSEC test signs.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace vane::test {

inline std::vector<std::string> names() {
  return {"example.com", "www.example.com", "WwW.ExAmPlE.CoM", "www2.example.com", "ns1.example.com",
          "mail.example.com", "nope.example.com", "a.b.nope.example.com", "alias.example.com", "alias2.example.com",
          "dangling.example.com", "outside.example.com", "towild.example.com", "tochild.example.com",
          "loop1.example.com", "loop2.example.com", "x.wild.example.com", "a.b.wild.example.com", "wild.example.com",
          "ent.wild.example.com", "sub.ent.wild.example.com", "x.ent.wild.example.com", "deep.example.com",
          "c.deep.example.com", "b.c.deep.example.com", "a.b.c.deep.example.com", "z.a.b.c.deep.example.com",
          "q.cwild.example.com", "_sip._tcp.example.com", "4.3.2.1.example.com", "unknown.example.com",
          "escaped.example.com", "big.example.com", "deleg.example.com", "ns1.deleg.example.com",
          "x.deleg.example.com", "sub.example.com", "www.sub.example.com", "ns1.sub.example.com",
          "nope.sub.example.com", "inc.example.com", "example.org", "www.example.org", "com",
          // DNAME (RFC 6672): the owner itself, names below it (one and two labels, occluded data, a CNAME
          // after it), out of our zones, into the child, a CNAME into it, too long (YXDOMAIN). (A DNAME
          // that points below itself is tested in semantics_test: Knot stops after 5 rewrites, vane at
          // its chain limit or YXDOMAIN.)
          "old.example.com", "x.old.example.com", "host.old.example.com", "a.b.old.example.com",
          "mail.old.example.com", "nope.old.example.com", "new.example.com", "www.away.example.com",
          "away.example.com", "www.tosub.example.com", "ns1.tosub.example.com", "todname.example.com",
          "y.tolong.example.com",
          "ThisLabelIsFiftyCharactersLongToPushPastTheLimit0.AndThisOneIsFiftyCharactersLongToPushItPastIt0.tolong."
          "example.com",
          "dloop.example.com"};
}

inline std::vector<std::string> types() {
  return {"A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "SRV", "PTR", "DS", "CAA", "TYPE65400", "DNAME", "ANY"};
}

// Types asked only where they live (every name × every type would be
// thousands of NODATA answers that test nothing new).
inline std::vector<std::pair<std::string, std::string>> typed_queries() {
  return {{"svc.example.com", "SVCB"},       {"web.example.com", "HTTPS"},     {"_443._tcp.www.example.com", "TLSA"},
          {"www.example.com", "SSHFP"},      {"loc.example.com", "LOC"},       {"naptr.example.com", "NAPTR"},
          {"uri.example.com", "URI"},        {"hinfo.example.com", "HINFO"},   {"rp.example.com", "RP"},
          {"svc.example.com", "HTTPS"},      {"web.example.com", "SVCB"},      {"www.example.com", "TLSA"},
          {"svc.old.example.com", "SVCB"},   {"uri.away.example.com", "URI"},  {"loc.example.com", "ANY"}};
}

// Every (name, type) of the corpus.
inline std::vector<std::pair<std::string, std::string>> corpus_queries() {
  std::vector<std::pair<std::string, std::string>> queries;
  for (const auto& name : names())
    for (const auto& type : types()) queries.emplace_back(name, type);
  for (const auto& q : typed_queries()) queries.push_back(q);
  return queries;
}

}  // namespace vane::test
