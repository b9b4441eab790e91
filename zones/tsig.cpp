// TSIG (RFC 8945) on ldns: see tsig.h.
#include "tsig.h"

#include <ldns/ldns.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "dns/name.h"
#include "dns/packet.h"
#include "dns/wire.h"

namespace vane::zones {

namespace {

constexpr uint16_t kFudge = 300;  // seconds of clock difference allowed (RFC 8945 §10: 300 recommended)
constexpr uint16_t kTypeTsig = 250;
constexpr uint16_t kClassAny = 255;

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string rdf_text(const ldns_rdf* r) {
  if (!r) return {};
  char* s = ldns_rdf2str(r);
  std::string out = s ? s : "";
  free(s);
  return lower(out);
}

// RFC 8945 §5.1: at most one TSIG, the last record of the additional
// section. Checked before ldns parses a message: its ldns_wire2pkt keeps
// the last TSIG it meets and leaks any before it (Debian's ldns 1.8; found
// by fuzz_xfr). A message too broken to walk is left to ldns, which refuses it.
bool tsig_misplaced(std::span<const uint8_t> wire) {
  if (wire.size() < dns::kHeaderSize) return false;
  size_t questions = dns::get16(&wire[4]);
  size_t before_additional = size_t{dns::get16(&wire[6])} + dns::get16(&wire[8]);
  size_t records = before_additional + dns::get16(&wire[10]);
  dns::NameBuf scratch;
  size_t pos = dns::kHeaderSize;
  for (size_t i = 0; i < questions; ++i) {
    pos = dns::read_name(wire, pos, scratch);
    if (pos == 0 || pos + 4 > wire.size()) return false;
    pos += 4;
  }
  uint16_t type, rdlen;
  size_t rdata_at;
  for (size_t i = 0; i < records; ++i) {
    pos = dns::skip_rr(wire, pos, scratch, &type, &rdata_at, &rdlen);
    if (pos == 0) return false;
    if (type == kTypeTsig && (i + 1 != records || i < before_additional)) return true;
  }
  return false;
}

std::string without_dot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

uint64_t rdf_uint(const ldns_rdf* r) {
  uint64_t v = 0;
  if (!r) return 0;
  for (size_t i = 0; i < ldns_rdf_size(r); ++i) v = v << 8 | ldns_rdf_data(r)[i];
  return v;
}

}  // namespace

bool tsig_algorithm_known(const std::string& name) {
  return name == "hmac-sha256" || name == "hmac-sha384" || name == "hmac-sha512";
}

bool tsig_secret_valid(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return false;
  for (char c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') return false;
  size_t pad = text.size() >= 2 ? (text.back() == '=') + (text[text.size() - 2] == '=') : 0;
  return text.size() / 4 * 3 - pad >= 16;
}

const char* tsig_error_name(TsigError e) {
  switch (e) {
    case TsigError::kNone: return "NOERROR";
    case TsigError::kBadSig: return "BADSIG";
    case TsigError::kBadKey: return "BADKEY";
    case TsigError::kBadTime: return "BADTIME";
    case TsigError::kBadTrunc: return "BADTRUNC";
  }
  return "?";
}

TsigCheck tsig_check(std::span<const uint8_t> wire, const TsigKeys& keys, uint64_t now) {
  TsigCheck c;
  ldns_pkt* raw = nullptr;
  if (tsig_misplaced(wire) || ldns_wire2pkt(&raw, wire.data(), wire.size()) != LDNS_STATUS_OK) {
    c.malformed = true;  // §5.1: dropped, answered FORMERR; signed or not, no transfer
    return c;
  }
  PktPtr pkt(raw);
  const ldns_rr* t = ldns_pkt_tsig(pkt.get());
  if (!t) return c;
  c.present = true;
  c.key_name = without_dot(rdf_text(ldns_rr_owner(t)));
  c.algorithm = without_dot(rdf_text(ldns_rr_rdf(t, 0)));
  c.time_signed = rdf_uint(ldns_rr_rdf(t, 1));
  uint64_t fudge = rdf_uint(ldns_rr_rdf(t, 2));
  if (const ldns_rdf* mac = ldns_rr_rdf(t, 3)) c.mac.assign(ldns_rdf_data(mac), ldns_rdf_data(mac) + ldns_rdf_size(mac));
  c.original_id = static_cast<uint16_t>(rdf_uint(ldns_rr_rdf(t, 4)));
  auto it = keys.find(c.key_name);
  if (it == keys.end() || it->second.algorithm != c.algorithm) {
    c.error = TsigError::kBadKey;
    return c;
  }
  std::string key_name = it->second.name + ".";
  if (!ldns_pkt_tsig_verify(pkt.get(), wire.data(), wire.size(), key_name.c_str(), it->second.secret.c_str(),
                            nullptr)) {
    c.error = TsigError::kBadSig;
    return c;
  }
  // The MAC is good; the time must be within the request's fudge (§5.2.3).
  uint64_t diff = now > c.time_signed ? now - c.time_signed : c.time_signed - now;
  if (diff > fudge) {
    c.error = TsigError::kBadTime;
    return c;
  }
  c.key = &it->second;
  return c;
}

namespace {

// Signs `msg` in place (ldns_pkt_tsig_sign_next: `prior` is the previous
// MAC, empty for a request; `timers_only` for the later messages of a
// stream) and leaves the new MAC, as ldns holds it, in `mac_out`.
bool sign_message(std::vector<uint8_t>& msg, const TsigKey& key, const std::vector<uint8_t>& prior, bool timers_only,
                  std::vector<uint8_t>& mac_out) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, msg.data(), msg.size()) != LDNS_STATUS_OK) return false;
  PktPtr pkt(raw);
  // A previous MAC as ldns takes it: an rdf whose data starts with its 2-byte length.
  ldns_rdf* prior_rdf =
      prior.empty() ? nullptr : ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, prior.size(), prior.data());
  std::string key_name = key.name + ".", algorithm = key.algorithm + ".";
  ldns_status st = ldns_pkt_tsig_sign_next(pkt.get(), key_name.c_str(), key.secret.c_str(), kFudge, algorithm.c_str(),
                                           prior_rdf, timers_only ? 1 : 0);
  if (prior_rdf) ldns_rdf_deep_free(prior_rdf);
  if (st != LDNS_STATUS_OK) return false;
  uint8_t* out = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&out, pkt.get(), &size) != LDNS_STATUS_OK) return false;
  msg.assign(out, out + size);
  free(out);
  const ldns_rr* t = ldns_pkt_tsig(pkt.get());
  const ldns_rdf* mac = t ? ldns_rr_rdf(t, 3) : nullptr;
  if (!mac || ldns_rdf_size(mac) < 2) return false;
  mac_out.assign(ldns_rdf_data(mac), ldns_rdf_data(mac) + ldns_rdf_size(mac));
  return true;
}

}  // namespace

bool TsigSigner::sign(std::vector<uint8_t>& msg) {
  if (!sign_message(msg, key_, prev_mac_, !first_, prev_mac_)) return false;
  first_ = false;
  return true;
}

bool TsigClient::sign_request(std::vector<uint8_t>& wire) {
  if (!sign_message(wire, key_, {}, false, prev_mac_)) return false;
  first_ = true;
  return true;
}

bool TsigClient::verify(std::span<const uint8_t> msg) {
  ldns_pkt* raw = nullptr;
  if (tsig_misplaced(msg) || ldns_wire2pkt(&raw, msg.data(), msg.size()) != LDNS_STATUS_OK) return false;
  PktPtr pkt(raw);
  const ldns_rr* t = ldns_pkt_tsig(pkt.get());
  if (!t || without_dot(rdf_text(ldns_rr_owner(t))) != key_.name) return false;
  ldns_rdf* prior = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA, prev_mac_.size(), prev_mac_.data());
  std::string key_name = key_.name + ".";
  bool ok = ldns_pkt_tsig_verify_next(pkt.get(), msg.data(), msg.size(), key_name.c_str(), key_.secret.c_str(), prior,
                                      first_ ? 0 : 1);
  ldns_rdf_deep_free(prior);
  if (!ok) return false;
  const ldns_rdf* mac = ldns_rr_rdf(t, 3);
  prev_mac_.assign(ldns_rdf_data(mac), ldns_rdf_data(mac) + ldns_rdf_size(mac));
  first_ = false;
  return true;
}

void append_error_tsig(std::vector<uint8_t>& msg, const TsigCheck& check, uint64_t now) {
  dns::NameBuf key, alg;
  if (!dns::from_text(check.key_name.empty() ? "." : check.key_name, key) ||
      !dns::from_text(check.algorithm.empty() ? "hmac-sha256" : check.algorithm, alg))
    return;
  std::vector<uint8_t> rdata(alg.wire().begin(), alg.wire().end());
  uint64_t t = check.error == TsigError::kBadTime ? check.time_signed : now;
  for (int shift = 40; shift >= 0; shift -= 8) rdata.push_back(uint8_t(t >> shift));
  auto put16 = [&](uint16_t v) { rdata.push_back(uint8_t(v >> 8)), rdata.push_back(uint8_t(v)); };
  put16(kFudge);
  put16(0);  // MAC size: an error TSIG is unsigned
  put16(check.original_id);
  put16(static_cast<uint16_t>(check.error));
  if (check.error == TsigError::kBadTime) {  // other data: our time (§5.2.3)
    put16(6);
    for (int shift = 40; shift >= 0; shift -= 8) rdata.push_back(uint8_t(now >> shift));
  } else {
    put16(0);
  }
  msg.insert(msg.end(), key.wire().begin(), key.wire().end());
  uint8_t fixed[10];
  dns::put16(fixed, kTypeTsig);
  dns::put16(fixed + 2, kClassAny);
  dns::put32(fixed + 4, 0);
  dns::put16(fixed + 8, static_cast<uint16_t>(rdata.size()));
  msg.insert(msg.end(), fixed, fixed + 10);
  msg.insert(msg.end(), rdata.begin(), rdata.end());
  dns::put16(msg.data() + 10, static_cast<uint16_t>(dns::get16(msg.data() + 10) + 1));
}

}  // namespace vane::zones
