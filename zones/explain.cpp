#include "explain.h"

#include <arpa/inet.h>

namespace vane::zones {

bool parse_client(const std::string& text, Client& out) {
  size_t slash = text.find('/');
  std::string host = text.substr(0, slash);
  out = Client{};
  if (inet_pton(AF_INET, host.c_str(), out.addr) == 1)
    out.family = 4, out.prefix = 32;
  else if (inet_pton(AF_INET6, host.c_str(), out.addr) == 1)
    out.family = 6, out.prefix = 128;
  else
    return false;
  if (slash != std::string::npos) {
    std::string bits = text.substr(slash + 1);
    if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) return false;
    unsigned long b = std::stoul(bits);
    if (b > out.prefix) return false;
    out.prefix = static_cast<uint8_t>(b);
    out.ecs = true;
  }
  return true;
}

namespace {

std::string client_text(const Client& c) {
  if (c.family == 0) return "unknown";
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(c.family == 4 ? AF_INET : AF_INET6, c.addr, buf, sizeof buf);
  std::string s = buf;
  if (c.ecs) s += "/" + std::to_string(c.prefix) + " (ECS)";
  return s;
}

std::string rdata_text(uint16_t type, const uint8_t* rd) {
  if (type == dns::kTypeCNAME) return dns::to_text({rd, dns::wire_name_len({rd, dns::kMaxNameLen})});
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(type == dns::kTypeA ? AF_INET : AF_INET6, rd, buf, sizeof buf);
  return buf;
}

}  // namespace

std::string steered_record_list(const ZoneSet& zones, size_t shown) {
  std::string list;
  size_t n = 0;
  for (const auto& zone : zones.zones())
    for (const SteeredRecord& r : zone->steered_records())
      if (n++ < shown) list += (list.empty() ? "" : ", ") + record_key(zone->info(r).name, r.type);
  if (n > shown) list += " and " + std::to_string(n - shown) + " more";
  return list.empty() ? "none" : list;
}

Result<Explanation> explain(const ZoneSet& zones, const std::string& qname, uint16_t qtype, const Client& client,
                            uint64_t rng_seed) {
  std::string name = qname;
  if (name.empty() || name.back() != '.') name += '.';
  dns::NameBuf nb;
  if (!dns::from_text(name, nb)) return Error{"", 0, "bad name '" + qname + "'"};
  for (size_t i = 0; i < nb.len; ++i) nb.data[i] = dns::ascii_lower(nb.data[i]);
  dns::index_name(nb);
  const Zone* z = zones.find_zone(nb);
  if (!z) return Error{"", 0, name + " is in no zone served here"};
  uint32_t node = z->find(nb.wire());
  const RRset* found = nullptr;
  std::string types;
  if (node != kNone)
    for (const RRset& rs : z->rrsets(node)) {
      if (!rs.steered) continue;
      types += (types.empty() ? "" : ", ") + std::string(steered_type_name(rs.type));
      if (!found && (qtype == 0 || rs.type == qtype || rs.type == dns::kTypeCNAME)) found = &rs;
    }
  if (!found) {
    return Error{"", 0,
                 name + " has no steered " + (types.empty() ? "record" : "record of that type (it has " + types + ")") +
                     "; steered records: " + steered_record_list(zones)};
  }
  const SteeredRecord& rec = z->steered(*found);
  const SteeredInfo& info = z->info(rec);
  auto eps = z->endpoints(rec);
  Explanation ex;
  ex.record = info.name;
  ex.type = steered_type_name(rec.type);
  ex.policy = policy_name(rec.policy);
  ex.client = client_text(client);
  for (size_t i = 0; i < eps.size(); ++i) {
    const EndpointState& s = zones.states->at(eps[i].state);
    auto ov = static_cast<Override>(s.override_state.load(std::memory_order_relaxed));
    bool healthy = s.health.load(std::memory_order_relaxed) == static_cast<uint8_t>(Health::kUp);
    const char* ovs = ov == Override::kUp      ? "forced up"
                      : ov == Override::kDown  ? "forced down"
                      : ov == Override::kDrain ? "drained"
                      : ov == Override::kDamped ? "damped: flapping, held down"
                      : ov == Override::kHeld   ? (healthy ? "healthy, held back by failback" : "unhealthy, held back by failback")
                                                : nullptr;
    int16_t aw = s.admin_weight.load(std::memory_order_relaxed);
    std::string line = info.endpoints[i] + " " + z->answer_text(rec, eps[i]) + ": " + (endpoint_up(s) ? "up" : "down") + " (" +
                       (ovs ? std::string(ovs) : std::string(healthy ? "healthy" : "unhealthy")) + "), weight " +
                       std::to_string(effective_weight(s, eps[i])) + (aw >= 0 ? " (admin)" : "") + ", priority " +
                       std::to_string(eps[i].priority) +
                       (eps[i].region != kNoRegion ? ", region " + zones.regions.name(eps[i].region) : "");
    ex.steps.push_back(line);
  }
  Trace trace;
  Pick pick;
  uint64_t rng = rng_seed | 1;
  select(rec, eps, *zones.states, zones.regions, client, rng, pick, &trace, &info);
  ex.steps.insert(ex.steps.end(), trace.steps.begin(), trace.steps.end());
  for (uint8_t i = 0; i < pick.count; ++i)
    ex.answer.push_back(rdata_text(rec.type, z->steered_rdata(eps[pick.index[i]])) + " (" +
                        info.endpoints[pick.index[i]] + ")");
  ex.scope = pick.scope;
  return ex;
}

}  // namespace vane::zones
