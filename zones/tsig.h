// TSIG (RFC 8945) for zone transfers: the keys (tsig: in vane.yaml), the
// check of a signed request and the signing of every message of the answer
// stream. The HMACs are ldns's (ldns_pkt_tsig_verify / _sign_next); this
// file adds what ldns leaves to its caller: which key, the time window, and
// the unsigned error TSIG of a NOTAUTH (§5.3.2). Off the hot path: only
// transfer and NOTIFY messages come here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vane::zones {

// A shared secret. `name` is the key's name in vane.yaml and on the wire
// ("xfr" -> "xfr."); `secret` is base64, as BIND's, Knot's and NSD's
// configs and `tsig-keygen`/`keymgr -t` print it. Never logged.
struct TsigKey {
  std::string name;       // lowercase, without the final dot
  std::string algorithm;  // hmac-sha256 | hmac-sha384 | hmac-sha512
  std::string secret;     // base64
  int line = 0;
};
using TsigKeys = std::map<std::string, TsigKey>;

// "hmac-sha256" etc., the RFC 8945 §6 names vane accepts; false otherwise.
bool tsig_algorithm_known(const std::string& name);
// Is `text` base64 of at least 16 bytes (RFC 8945 §6: keys as long as the hash are advised)?
bool tsig_secret_valid(const std::string& text);

// TSIG errors (RFC 8945 §3), sent in the TSIG RR of a NOTAUTH.
enum class TsigError : uint16_t { kNone = 0, kBadSig = 16, kBadKey = 17, kBadTime = 18, kBadTrunc = 22 };
const char* tsig_error_name(TsigError e);

// What a request's TSIG said.
struct TsigCheck {
  bool present = false;     // the request carried a TSIG RR
  bool malformed = false;   // a TSIG not alone and last (RFC 8945 §5.1), or no parse: FORMERR, unsigned
  TsigError error = TsigError::kNone;
  const TsigKey* key = nullptr;  // the verified key (present and no error)
  std::string key_name;     // as the request named it (for logs and the error TSIG)
  std::string algorithm;    // as the request named it
  std::vector<uint8_t> mac; // the request's MAC, its 2-byte length first: the first answer's digest starts with it
  uint64_t time_signed = 0;
  uint16_t original_id = 0;
};

// Checks `wire` (a whole request) against `keys`; `now` in unix seconds.
// A request without TSIG gives present=false. A second TSIG, one anywhere
// but last in the additional section, or a message ldns cannot parse gives
// malformed=true: it is answered FORMERR (§5.1) without a TSIG.
TsigCheck tsig_check(std::span<const uint8_t> wire, const TsigKeys& keys, uint64_t now);

// Signs the messages of one answer stream in order (RFC 8945 §5.3.1: the
// first over the request's MAC and all variables, later ones over the
// previous MAC and the timers). `sign` rewrites `msg` (a whole message
// without TSIG) with the TSIG RR appended; false when ldns cannot.
class TsigSigner {
 public:
  TsigSigner(const TsigKey& key, std::vector<uint8_t> request_mac) : key_(key), prev_mac_(std::move(request_mac)) {}
  bool sign(std::vector<uint8_t>& msg);

 private:
  const TsigKey& key_;
  std::vector<uint8_t> prev_mac_;
  bool first_ = true;
};

// The client's side of a transfer: signs the request and verifies every
// message of the answer stream against it (each must be signed: vane does
// not accept the unsigned messages §5.3.1 allows between signed ones).
class TsigClient {
 public:
  explicit TsigClient(const TsigKey& key) : key_(key) {}
  bool sign_request(std::vector<uint8_t>& wire);
  // Verifies one message of the answer; false: unsigned or a bad MAC.
  bool verify(std::span<const uint8_t> msg);

 private:
  const TsigKey& key_;
  std::vector<uint8_t> prev_mac_;  // the request's MAC, then each answer's (rdf data: length first)
  bool first_ = true;
};

// Appends the unsigned TSIG RR that a NOTAUTH carries (§5.3.2): the
// request's key and algorithm names, its time, an empty MAC, `error`; bumps
// ARCOUNT. `msg` is the whole answer so far.
void append_error_tsig(std::vector<uint8_t>& msg, const TsigCheck& check, uint64_t now);

}  // namespace vane::zones
