// Zone transfers out over TCP: AXFR (RFC 5936) and IXFR (RFC 1995), with
// TSIG (RFC 8945). One XfrOut is one answer stream, produced a few messages
// at a time as the connection's writes drain, so that a large zone is never
// held in memory whole; it keeps the TransferView it started from, so the
// stream is one consistent version of the zone whatever changes meanwhile.
// Runs on a worker's TCP loop; never on the UDP hot path.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dns/packet.h"
#include "transfer.h"

namespace vane::server {

// Is `msg` (a whole TCP message) an AXFR or IXFR request? Cheap: the header
// and the question's type only.
bool is_transfer_request(std::span<const uint8_t> msg);

class XfrOut {
 public:
  // The answer stream for a transfer request from `peer`; `now` in unix
  // seconds (TSIG). Refusals are a stream of one message too.
  XfrOut(std::span<const uint8_t> request, const sockaddr_storage& peer, zones::TransferPublisher& transfers,
         uint64_t now);
  ~XfrOut();
  XfrOut(const XfrOut&) = delete;
  XfrOut& operator=(const XfrOut&) = delete;

  // Appends the next messages, each with its 2-byte length, to `out` until
  // it grew by about `budget` bytes. False once the stream is complete
  // (nothing more will be appended).
  bool next(std::vector<uint8_t>& out, size_t budget);

 private:
  enum class Phase : uint8_t { kOpen, kBody, kClose, kDone };
  bool refuse(uint8_t rcode, const char* why);
  void begin_message();
  bool put_next_rr();  // false: it did not fit in this message (or nothing is left)
  bool finish_message(std::vector<uint8_t>& out);
  bool put_rr(const uint8_t* owner, uint16_t type, uint32_t ttl, zones::RdataNames names, const uint8_t* rdata,
              uint16_t rdlen);
  bool put_soa(uint32_t serial);
  bool fits(bool ok);
  void log_end();

  std::shared_ptr<const zones::TransferView> view_;
  const zones::ZoneTransfer* zt_ = nullptr;
  zones::TransferCounters* counters_ = nullptr;
  dns::Query q_;
  std::vector<uint8_t> question_;  // the request's question, as sent
  std::string peer_text_;
  zones::TsigCheck tsig_;
  std::unique_ptr<zones::TsigSigner> signer_;
  uint64_t now_ = 0;
  zones::TransferCounters::Kind kind_ = zones::TransferCounters::kAxfr;

  // The stream: an error message, an AXFR body (the zone's nodes in order)
  // or an IXFR body (the steps after the client's serial).
  uint8_t rcode_ = 0;
  bool incremental_ = false;
  bool up_to_date_ = false;  // IXFR from the current serial: the SOA alone
  Phase phase_ = Phase::kOpen;
  uint32_t node_ = 0, rrset_ = 0, rr_ = 0;          // AXFR position
  const uint8_t* rr_next_ = nullptr;                // AXFR: the next RR's rdata in a static RRset
  size_t step_ = 0, part_ = 0, item_ = 0, off_ = 0;  // IXFR position: step, 0 old SOA 1 removed 2 new SOA 3 added
  std::vector<uint8_t> msg_;
  std::unique_ptr<dns::Writer> w_;
  uint16_t an_ = 0;
  uint64_t messages_ = 0, records_ = 0;
  bool first_message_ = true;
  bool logged_end_ = false;
};

}  // namespace vane::server
