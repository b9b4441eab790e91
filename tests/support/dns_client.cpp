// ldns-backed query building and response rendering for tests.
#include "dns_client.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace vane::test {

namespace {

struct Sock {
  int fd;
  ~Sock() {
    if (fd >= 0) close(fd);
  }
};

bool make_addr(const std::string& host, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
    return true;
  }
  return false;
}

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

bool read_exact(int fd, uint8_t* buf, size_t n, int timeout_ms) {
  size_t got = 0;
  while (got < n) {
    if (!wait_readable(fd, timeout_ms)) return false;
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

int tcp_connect(const std::string& host, uint16_t port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!make_addr(host, port, ss, len)) throw std::runtime_error("bad address " + host);
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string rr_text(const ldns_rr* rr) {
  char* s = ldns_rr2str(rr);
  std::string t(s ? s : "");
  free(s);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  // Tabs to single spaces; owner lowercased (DNS is case-insensitive there).
  std::replace(t.begin(), t.end(), '\t', ' ');
  size_t sp = t.find(' ');
  for (size_t i = 0; i < sp && i < t.size(); ++i) t[i] = static_cast<char>(tolower(static_cast<unsigned char>(t[i])));
  return t;
}

std::vector<std::string> section(const ldns_rr_list* l) {
  std::vector<std::string> out;
  for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i) out.push_back(rr_text(ldns_rr_list_rr(l, i)));
  return out;
}

}  // namespace

std::string render(const Response& r) {
  std::ostringstream o;
  o << "rcode=" << r.rcode << " flags=" << (r.qr ? "qr " : "") << (r.aa ? "aa " : "") << (r.tc ? "tc " : "")
    << (r.rd ? "rd " : "") << (r.ra ? "ra " : "") << "edns=" << (r.edns ? std::to_string(r.edns_udp_size) : "no")
    << "\n";
  for (auto& s : r.question) o << "Q " << s << "\n";
  for (auto& s : r.answer) o << "AN " << s << "\n";
  for (auto& s : r.authority) o << "NS " << s << "\n";
  for (auto& s : r.additional) o << "AR " << s << "\n";
  return o.str();
}

std::string Response::to_string() const { return render(*this); }

std::vector<uint8_t> make_query(const std::string& qname, const std::string& qtype, const QueryOpts& o, uint16_t id) {
  ldns_rdf* name = ldns_dname_new_frm_str(qname.c_str());
  ldns_rr_type type = ldns_get_rr_type_by_name(qtype.c_str());
  ldns_pkt* pkt = ldns_pkt_query_new(name, type, static_cast<ldns_rr_class>(o.qclass), o.rd ? LDNS_RD : 0);
  ldns_pkt_set_id(pkt, id);
  std::vector<uint8_t> opt = o.edns_data;
  if (!o.ecs.empty()) {  // RFC 7871 §6
    size_t slash = o.ecs.find('/');
    std::string host = o.ecs.substr(0, slash);
    int bits = std::stoi(o.ecs.substr(slash + 1));
    uint8_t a[16] = {};
    bool v4 = inet_pton(AF_INET, host.c_str(), a) == 1;
    if (!v4) inet_pton(AF_INET6, host.c_str(), a);
    size_t n = size_t(bits + 7) / 8;
    opt = {0, 8, 0, uint8_t(4 + n), 0, uint8_t(v4 ? 1 : 2), uint8_t(bits), 0};
    opt.insert(opt.end(), a, a + n);
  }
  if (o.edns || !opt.empty()) {
    ldns_pkt_set_edns_udp_size(pkt, o.udp_size);
    if (!opt.empty()) ldns_pkt_set_edns_data(pkt, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, opt.size(), opt.data()));
    ldns_pkt_set_edns_version(pkt, o.edns_version);
    ldns_pkt_set_edns_do(pkt, o.do_bit);
    // ldns only writes an OPT when something in it is non-default.
    if (o.udp_size == 0) ldns_pkt_set_edns_udp_size(pkt, 512);
  }
  uint8_t* wire = nullptr;
  size_t len = 0;
  ldns_pkt2wire(&wire, pkt, &len);
  std::vector<uint8_t> out(wire, wire + len);
  free(wire);
  ldns_pkt_free(pkt);
  return out;
}

std::optional<Response> parse_response(const std::vector<uint8_t>& wire) {
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, wire.data(), wire.size()) != LDNS_STATUS_OK) return std::nullopt;
  Response r;
  r.size = wire.size();
  r.id = ldns_pkt_id(pkt);
  uint16_t rcode = ldns_pkt_get_rcode(pkt);
  r.edns = ldns_pkt_edns(pkt);
  if (r.edns) {
    rcode = static_cast<uint16_t>(rcode | (ldns_pkt_edns_extended_rcode(pkt) << 4));
    r.edns_udp_size = ldns_pkt_edns_udp_size(pkt);
    if (ldns_rdf* d = ldns_pkt_edns_data(pkt)) {
      const uint8_t* p = ldns_rdf_data(d);
      size_t len = ldns_rdf_size(d);
      for (size_t off = 0; off + 4 <= len;) {
        uint16_t code = uint16_t(p[off] << 8 | p[off + 1]), olen = uint16_t(p[off + 2] << 8 | p[off + 3]);
        if (code == 8 && olen >= 4 && off + 4 + olen <= len) {
          const uint8_t* e = p + off + 4;
          uint8_t a[16] = {};
          std::memcpy(a, e + 4, std::min<size_t>(olen - 4, 16));
          char text[INET6_ADDRSTRLEN] = "?";
          inet_ntop(e[1] == 1 ? AF_INET : AF_INET6, a, text, sizeof text);
          r.ecs = std::string(text) + "/" + std::to_string(e[2]) + "/" + std::to_string(e[3]);
        }
        off += 4 + olen;
      }
    }
  }
  if (rcode == 16) {
    r.rcode = "BADVERS";
  } else {
    const ldns_lookup_table* lt = ldns_lookup_by_id(ldns_rcodes, rcode);
    r.rcode = lt ? lt->name : std::to_string(rcode);
  }
  r.qr = ldns_pkt_qr(pkt);
  r.aa = ldns_pkt_aa(pkt);
  r.tc = ldns_pkt_tc(pkt);
  r.rd = ldns_pkt_rd(pkt);
  r.ra = ldns_pkt_ra(pkt);
  r.ad = ldns_pkt_ad(pkt);
  r.question = section(ldns_pkt_question(pkt));
  r.answer = section(ldns_pkt_answer(pkt));
  r.authority = section(ldns_pkt_authority(pkt));
  r.additional = section(ldns_pkt_additional(pkt));
  ldns_pkt_free(pkt);
  return r;
}

std::optional<std::vector<uint8_t>> exchange_raw(const std::string& host, uint16_t port, const std::vector<uint8_t>& q,
                                                 bool tcp, int timeout_ms) {
  if (tcp) {
    Sock s{tcp_connect(host, port)};
    if (s.fd < 0) return std::nullopt;
    std::vector<uint8_t> framed{static_cast<uint8_t>(q.size() >> 8), static_cast<uint8_t>(q.size())};
    framed.insert(framed.end(), q.begin(), q.end());
    if (send(s.fd, framed.data(), framed.size(), MSG_NOSIGNAL) != ssize_t(framed.size())) return std::nullopt;
    uint8_t len[2];
    if (!read_exact(s.fd, len, 2, timeout_ms)) return std::nullopt;
    std::vector<uint8_t> out(size_t(len[0] << 8 | len[1]));
    if (!read_exact(s.fd, out.data(), out.size(), timeout_ms)) return std::nullopt;
    return out;
  }
  sockaddr_storage ss;
  socklen_t alen;
  if (!make_addr(host, port, ss, alen)) return std::nullopt;
  Sock s{socket(ss.ss_family, SOCK_DGRAM, 0)};
  if (sendto(s.fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&ss), alen) < 0) return std::nullopt;
  if (!wait_readable(s.fd, timeout_ms)) return std::nullopt;
  std::vector<uint8_t> out(65535);
  ssize_t n = recv(s.fd, out.data(), out.size(), 0);
  if (n < 0) return std::nullopt;
  out.resize(size_t(n));
  return out;
}

std::optional<Response> query(const std::string& host, uint16_t port, const std::string& qname,
                               const std::string& qtype, const QueryOpts& o) {
  static uint16_t next_id = 0x1234;
  uint16_t id = ++next_id;
  auto reply = exchange_raw(host, port, make_query(qname, qtype, o, id), o.tcp, o.timeout_ms);
  if (!reply) return std::nullopt;
  auto r = parse_response(*reply);
  if (r && r->id != id) return std::nullopt;
  return r;
}

std::vector<Response> query_pipelined(const std::string& host, uint16_t port,
                                      const std::vector<std::pair<std::string, std::string>>& questions) {
  Sock s{tcp_connect(host, port)};
  std::vector<Response> out;
  if (s.fd < 0) return out;
  std::vector<uint8_t> all;
  uint16_t id = 100;
  for (auto& [name, type] : questions) {
    auto q = make_query(name, type, {}, id++);
    all.push_back(static_cast<uint8_t>(q.size() >> 8));
    all.push_back(static_cast<uint8_t>(q.size()));
    all.insert(all.end(), q.begin(), q.end());
  }
  send(s.fd, all.data(), all.size(), MSG_NOSIGNAL);
  for (size_t i = 0; i < questions.size(); ++i) {
    uint8_t len[2];
    if (!read_exact(s.fd, len, 2, 3000)) break;
    std::vector<uint8_t> msg(size_t(len[0] << 8 | len[1]));
    if (!read_exact(s.fd, msg.data(), msg.size(), 3000)) break;
    if (auto r = parse_response(msg)) out.push_back(*r);
  }
  return out;
}

}  // namespace vane::test
