// AXFR and IXFR out (see xfr_out.h). Messages are filled to 64 KiB (less
// room for a TSIG when signed), the question in the first only (RFC 5936
// §2.2), names compressed within each message.
#include "xfr_out.h"

#include <algorithm>
#include <cstring>

#include "answer.h"
#include "log.h"
#include "sockets.h"

namespace vane::server {

namespace {

constexpr size_t kMaxMessage = 65535;
constexpr size_t kTsigRoom = 512;  // key name, algorithm name, a 64-byte MAC and the rest, with room to spare

// DNSSEC records made from the keys by online signing: not part of an
// unsigned transfer.
bool made_by_signing(uint16_t type) {
  return type == dns::kTypeDNSKEY || type == dns::kTypeCDS || type == dns::kTypeCDNSKEY ||
         type == dns::kTypeRRSIG || type == dns::kTypeNSEC;
}

}  // namespace

bool is_transfer_request(std::span<const uint8_t> msg) {
  if (msg.size() < dns::kHeaderSize + 5 || (dns::get16(msg.data() + 2) & dns::kFlagQR) ||
      dns::get16(msg.data() + 4) != 1)
    return false;
  size_t pos = dns::kHeaderSize;
  while (pos < msg.size() && msg[pos] != 0) {
    if (msg[pos] > 63) return false;
    pos += 1 + msg[pos];
  }
  if (pos + 3 > msg.size()) return false;
  uint16_t qtype = dns::get16(msg.data() + pos + 1);
  return qtype == dns::kTypeAXFR || qtype == dns::kTypeIXFR;
}

XfrOut::XfrOut(std::span<const uint8_t> request, const sockaddr_storage& peer, zones::TransferPublisher& transfers,
               uint64_t now)
    : view_(transfers.current()), counters_(&transfers.counters), peer_text_(format_addr(peer)), now_(now) {
  dns::ParseStatus st = dns::parse_query(request, q_);
  if (st == dns::ParseStatus::kDrop) {
    phase_ = Phase::kDone;
    return;
  }
  if (q_.has_question) question_.assign(request.begin() + dns::kHeaderSize, request.begin() + q_.question_end);
  kind_ = q_.qtype == dns::kTypeIXFR ? zones::TransferCounters::kIxfr : zones::TransferCounters::kAxfr;
  if (st != dns::ParseStatus::kOk) {
    refuse(dns::kRcodeFormErr, "malformed request");
    return;
  }
  static const zones::TsigKeys kNoKeys;
  tsig_ = zones::tsig_check(request, view_ ? view_->keys : kNoKeys, now);
  if (tsig_.malformed) {
    refuse(dns::kRcodeFormErr, "a TSIG not alone and last in the additional section, or a record ldns cannot parse");
    return;
  }
  if (tsig_.present && tsig_.error != zones::TsigError::kNone) {
    rcode_ = 9;  // NOTAUTH, with the TSIG error (RFC 8945 §5.2)
    counters_->out[kind_][zones::TransferCounters::kNotAuth].fetch_add(1, std::memory_order_relaxed);
    VANE_WARN("%s of %s from %s refused: TSIG key '%s' %s", kind_ == zones::TransferCounters::kIxfr ? "IXFR" : "AXFR",
              dns::to_text(q_.qname.wire()).c_str(), peer_text_.c_str(), tsig_.key_name.c_str(),
              zones::tsig_error_name(tsig_.error));
    return;
  }
  if (tsig_.key) signer_ = std::make_unique<zones::TsigSigner>(*tsig_.key, tsig_.mac);
  const zones::Zone* z = view_ && view_->snapshot ? view_->snapshot->find_zone(q_.qname) : nullptr;
  if (z && std::ranges::equal(z->origin(), q_.qname.wire()) && q_.qclass == dns::kClassIN)
    if (auto it = view_->zones.find(z); it != view_->zones.end()) zt_ = &it->second;
  if (!zt_) {
    refuse(dns::kRcodeRefused, "not a zone transferred here");
    return;
  }
  if (zt_->zone->expired()) {
    refuse(dns::kRcodeServFail, "a secondary zone with no current copy");
    return;
  }
  zones::Client c = client_of(peer);
  if (!zones::transfer_allowed(zt_->spec, c.family, c.addr, tsig_.key ? tsig_.key->name : std::string())) {
    refuse(dns::kRcodeRefused, tsig_.key ? "not allowed with this key from this address"
                                          : "not allowed (no transfer.allow entry matches; a key may be needed)");
    return;
  }
  if (kind_ == zones::TransferCounters::kIxfr) {
    uint32_t theirs;
    if (!dns::read_ixfr_serial(request, q_, theirs)) {
      refuse(dns::kRcodeFormErr, "IXFR without an SOA in its authority section");
      return;
    }
    if (theirs == zt_->serial || zones::serial_gt(theirs, zt_->serial)) {
      up_to_date_ = true;  // RFC 1995 §2: the current SOA alone
    } else {
      for (size_t i = 0; i < zt_->history.size(); ++i)
        if (zt_->history[i].from == theirs) {
          incremental_ = true;
          step_ = i;
          break;
        }
    }
  }
  counters_->out[kind_][zones::TransferCounters::kOk].fetch_add(1, std::memory_order_relaxed);
  VANE_INFO("%s of %s serial %u to %s%s%s: %s", kind_ == zones::TransferCounters::kIxfr ? "IXFR" : "AXFR",
            zt_->zone->origin_text().c_str(), zt_->serial, peer_text_.c_str(), tsig_.key ? " key " : "",
            tsig_.key ? tsig_.key->name.c_str() : "",
            up_to_date_ ? "up to date" : incremental_ ? "incremental" : "whole zone");
}

XfrOut::~XfrOut() = default;

bool XfrOut::refuse(uint8_t rcode, const char* why) {
  rcode_ = rcode;
  counters_->out[kind_][zones::TransferCounters::kRefused].fetch_add(1, std::memory_order_relaxed);
  VANE_WARN("%s of %s from %s refused: %s", kind_ == zones::TransferCounters::kIxfr ? "IXFR" : "AXFR",
            q_.has_question ? dns::to_text(q_.qname.wire()).c_str() : "?", peer_text_.c_str(), why);
  return false;
}

bool XfrOut::next(std::vector<uint8_t>& out, size_t budget) {
  size_t start = out.size();
  while (phase_ != Phase::kDone && out.size() - start < budget) {
    begin_message();
    if (rcode_ == 0)
      while (put_next_rr()) {
      }
    else
      phase_ = Phase::kDone;
    if (!finish_message(out)) phase_ = Phase::kDone;
  }
  if (phase_ == Phase::kDone && zt_ && rcode_ == 0 && messages_ && !logged_end_) log_end();
  return phase_ != Phase::kDone;
}

void XfrOut::begin_message() {
  msg_.resize(kMaxMessage);
  size_t cap = kMaxMessage - (signer_ || tsig_.present ? kTsigRoom : 0);
  w_ = std::make_unique<dns::Writer>(msg_.data(), cap);
  uint8_t h[dns::kHeaderSize] = {};
  dns::put16(h, q_.id);
  uint16_t flags = dns::kFlagQR | (q_.flags & dns::kFlagRD) | (rcode_ & 0xF);
  if (rcode_ == 0) flags |= dns::kFlagAA;
  dns::put16(h + 2, flags);
  bool question = first_message_ && !question_.empty();
  dns::put16(h + 4, question ? 1 : 0);
  w_->put_bytes(h, sizeof h);
  if (question) w_->put_question(question_.data(), question_.size());
  an_ = 0;
}

bool XfrOut::finish_message(std::vector<uint8_t>& out) {
  dns::put16(msg_.data() + 6, an_);
  msg_.resize(w_->size());
  if (tsig_.present && tsig_.error != zones::TsigError::kNone) {
    zones::append_error_tsig(msg_, tsig_, now_);
  } else if (signer_ && !signer_->sign(msg_)) {
    VANE_ERROR("transfer to %s: signing a message with TSIG failed; the stream is cut", peer_text_.c_str());
    return false;
  }
  uint8_t len[2];
  dns::put16(len, static_cast<uint16_t>(msg_.size()));
  out.insert(out.end(), len, len + 2);
  out.insert(out.end(), msg_.begin(), msg_.end());
  first_message_ = false;
  ++messages_;
  return true;
}

bool XfrOut::put_rr(const uint8_t* owner, uint16_t type, uint32_t ttl, zones::RdataNames names, const uint8_t* rdata,
                    uint16_t rdlen) {
  auto m = w_->mark();
  uint8_t fixed[10];
  dns::put16(fixed, type);
  dns::put16(fixed + 2, dns::kClassIN);
  dns::put32(fixed + 4, ttl);
  dns::put16(fixed + 8, 0);
  if (!w_->put_name(owner) || !w_->put_bytes(fixed, 10)) {
    w_->reset(m);
    return false;
  }
  size_t rdlen_at = w_->size() - 2;
  if (!put_rdata(*w_, names, rdata, rdlen)) {
    w_->reset(m);
    return false;
  }
  dns::put16(w_->data() + rdlen_at, static_cast<uint16_t>(w_->size() - rdlen_at - 2));
  ++an_;
  ++records_;
  return true;
}

bool XfrOut::put_soa(uint32_t serial) {
  const zones::Zone& z = *zt_->zone;
  const zones::RRset* soa = z.soa();
  const uint8_t* rd = z.rdata(*soa);
  uint16_t len = dns::get16(rd);
  uint8_t tmp[2 * dns::kMaxNameLen + 20];
  std::memcpy(tmp, rd + 2, len);
  dns::put32(tmp + len - 20, serial);
  return put_rr(z.origin().data(), dns::kTypeSOA, soa->ttl, zones::RdataNames::kSoa, tmp, len);
}

// A record that does not fit goes in the next message; one that does not
// fit in an empty message cannot be sent at all, and the stream ends short
// (the secondary sees a failed transfer rather than a zone without it).
bool XfrOut::fits(bool ok) {
  if (!ok && an_ == 0) {
    VANE_ERROR("transfer of %s to %s: a record larger than a message; transfer cut",
               zt_->zone->origin_text().c_str(), peer_text_.c_str());
    phase_ = Phase::kDone;
  }
  return ok;
}

bool XfrOut::put_next_rr() {  switch (phase_) {
    case Phase::kOpen:
      if (!fits(put_soa(zt_->serial))) return false;
      phase_ = up_to_date_ ? Phase::kDone : Phase::kBody;
      return true;
    case Phase::kClose:
      if (!fits(put_soa(zt_->serial))) return false;
      phase_ = Phase::kDone;
      return false;
    case Phase::kDone:
      return false;
    case Phase::kBody:
      break;
  }
  const zones::Zone& z = *zt_->zone;
  if (incremental_) {
    // RFC 1995 §4: per step, the old SOA, what went, the new SOA, what came.
    while (step_ < zt_->history.size()) {
      const zones::IxfrStep& s = zt_->history[step_];
      if (part_ == 0 || part_ == 2) {
        if (!fits(put_soa(part_ == 0 ? s.from : s.to))) return false;
        ++part_;
        return true;
      }
      const zones::RrList& list = part_ == 1 ? s.removed : s.added;
      if (item_ < list.count) {
        const uint8_t* p = list.wire.data() + off_;
        size_t owner_len = dns::wire_name_len({p, list.wire.size() - off_});
        uint16_t type = dns::get16(p + owner_len);
        uint32_t ttl = dns::get32(p + owner_len + 4);
        uint16_t rdlen = dns::get16(p + owner_len + 8);
        auto names = type == dns::kTypeCNAME ? zones::RdataNames::kOne : zones::RdataNames::kNone;
        if (!fits(put_rr(p, type, ttl, names, p + owner_len + 10, rdlen))) return false;
        off_ += owner_len + 10 + rdlen;
        ++item_;
        return true;
      }
      item_ = off_ = 0;
      if (++part_ == 4) part_ = 0, ++step_;
    }
    phase_ = Phase::kClose;
    return true;
  }
  while (node_ < z.node_count()) {
    auto sets = z.rrsets(node_);
    if (rrset_ >= sets.size()) {
      ++node_, rrset_ = 0, rr_ = 0, rr_next_ = nullptr;
      continue;
    }
    const zones::RRset& rs = sets[rrset_];
    const uint8_t* owner = z.name_of(node_).data();
    bool skip = (node_ == z.apex() && rs.type == dns::kTypeSOA) || (zt_->skip_dnssec && made_by_signing(rs.type));
    if (rs.steered && !skip) {
      const auto& picks = zt_->steered[rs.rdata_off];
      if (rr_ < picks.size()) {
        const zones::SteeredRecord& rec = z.steered(rs);
        const zones::SteeredEndpoint& ep = z.endpoints(rec)[picks[rr_]];
        auto names = rec.type == dns::kTypeCNAME ? zones::RdataNames::kOne : zones::RdataNames::kNone;
        if (!fits(put_rr(owner, rec.type, rec.ttl, names, z.steered_rdata(ep), ep.rdlen))) return false;
        ++rr_;
        return true;
      }
    } else if (!skip && rr_ < rs.count) {
      if (!rr_next_) rr_next_ = z.rdata(rs);
      uint16_t len = dns::get16(rr_next_);
      if (!fits(put_rr(owner, rs.type, rs.ttl, rs.names, rr_next_ + 2, len))) return false;
      rr_next_ += 2 + len;
      ++rr_;
      return true;
    }
    ++rrset_, rr_ = 0, rr_next_ = nullptr;
  }
  phase_ = Phase::kClose;
  return true;
}

void XfrOut::log_end() {
  logged_end_ = true;
  VANE_INFO("%s of %s serial %u to %s done: %llu messages, %llu records",
            kind_ == zones::TransferCounters::kIxfr ? "IXFR" : "AXFR", zt_->zone->origin_text().c_str(), zt_->serial,
            peer_text_.c_str(), static_cast<unsigned long long>(messages_),
            static_cast<unsigned long long>(records_));
}

}  // namespace vane::server
