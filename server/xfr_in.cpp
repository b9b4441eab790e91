// Zone transfers in (see xfr_in.h): the SOA check, IXFR with AXFR fallback,
// the whole-copy checks, and the copy on disk (written to a temporary file,
// loaded as a zone, synced, then renamed over the old one).
#include "xfr_in.h"

#include <fcntl.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config.h"
#include "dns/wire.h"
#include "ldns_ptr.h"
#include "log.h"
#include "zone_loader.h"

namespace vane::server {

namespace {

using Clock = std::chrono::steady_clock;

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

// A TCP connection to one primary, closed when it goes out of scope.
class Conn {
 public:
  // `timeout_ms` bounds each step; `max_ms` the whole conversation.
  Conn(const std::string& server, int timeout_ms, uint32_t max_ms, int cancel_fd)
      : timeout_ms_(timeout_ms),
        max_ms_(max_ms),
        deadline_(Clock::now() + std::chrono::milliseconds(max_ms)),
        cancel_fd_(cancel_fd) {
    ListenAddr a;
    if (!parse_listen(server, a)) {
      error_ = "bad address";
      return;
    }
    fd_ = socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || (connect(fd_, reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0 && errno != EINPROGRESS)) {
      error_ = std::string("connect: ") + strerror(errno);
      return;
    }
    if (!wait(POLLOUT)) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) error_ = std::string("connect: ") + strerror(err);
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return error_.empty(); }
  bool cancelled() const { return cancelled_; }  // by vaned's stop
  const std::string& error() const { return error_; }

  bool send_message(const std::vector<uint8_t>& msg) {
    std::vector<uint8_t> framed(2 + msg.size());
    dns::put16(framed.data(), static_cast<uint16_t>(msg.size()));
    std::copy(msg.begin(), msg.end(), framed.begin() + 2);
    for (size_t off = 0; off < framed.size();) {
      if (!wait(POLLOUT)) return false;
      ssize_t n = ::send(fd_, framed.data() + off, framed.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return fail(std::string("send: ") + strerror(errno));
      if (n > 0) off += size_t(n);
    }
    return true;
  }
  bool read_message(std::vector<uint8_t>& msg) {
    uint8_t len[2];
    if (!read_exact(len, 2)) return false;
    msg.resize(dns::get16(len));
    return read_exact(msg.data(), msg.size());
  }

 private:
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  // Each step waits for the socket, for vaned's stop or for the end of the
  // transfer's time, whichever comes first: neither a stop nor the zone's
  // next refresh waits on a primary that is slow, silent or feeding a byte
  // at a time.
  bool wait(short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    bool last = left <= timeout_ms_;
    pollfd p[2] = {{fd_, events, 0}, {cancel_fd_, POLLIN, 0}};
    int r = poll(p, cancel_fd_ >= 0 ? 2 : 1, last ? static_cast<int>(std::max<int64_t>(left, 0)) : timeout_ms_);
    if (r == 0 && last)
      return fail("took longer than max_transfer_time (" +
                  (max_ms_ % 1000 ? std::to_string(max_ms_) + "ms" : std::to_string(max_ms_ / 1000) + "s") +
                  "), given up");
    if (r == 0) return fail("timed out");
    if (r < 0) return fail(std::string("poll: ") + strerror(errno));
    if (cancel_fd_ >= 0 && (p[1].revents & POLLIN)) return cancelled_ = true, fail("vaned is stopping");
    return true;
  }
  bool read_exact(uint8_t* p, size_t n) {
    for (size_t off = 0; off < n;) {
      if (!wait(POLLIN)) return false;
      ssize_t r = ::recv(fd_, p + off, n - off, 0);
      if (r == 0) return fail("the primary closed the connection mid-stream");
      if (r < 0 && errno != EAGAIN && errno != EINTR) return fail(std::string("recv: ") + strerror(errno));
      if (r > 0) off += size_t(r);
    }
    return true;
  }
  int fd_ = -1;
  int timeout_ms_;
  uint32_t max_ms_;
  Clock::time_point deadline_;
  int cancel_fd_;
  bool cancelled_ = false;
  std::string error_;
};

std::string rr_line(const ldns_rr* rr) {
  char* s = ldns_rr2str(rr);
  std::string t = s ? s : "";
  free(s);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

// "owner\tttl\tIN\ttype\trdata" -> "owner\tIN\ttype\trdata" with the owner lowercased.
std::string rr_key(const std::string& line) {
  size_t a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
  if (b == std::string::npos) return line;
  std::string owner = line.substr(0, a);
  for (char& c : owner) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return owner + line.substr(b);
}

bool soa_of(const ldns_rr* rr, Soa& s) {
  if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7) return false;
  s.serial = ldns_rdf2native_int32(ldns_rr_rdf(rr, 2));
  s.refresh = ldns_rdf2native_int32(ldns_rr_rdf(rr, 3));
  s.retry = ldns_rdf2native_int32(ldns_rr_rdf(rr, 4));
  s.expire = ldns_rdf2native_int32(ldns_rr_rdf(rr, 5));
  return true;
}

// A request for `type` at the zone's apex; IXFR carries the copy's SOA
// serial in its authority section (RFC 1995 §3).
std::vector<uint8_t> make_request(const std::string& zone, ldns_rr_type type, uint32_t serial, uint16_t id) {
  zones::RdfPtr name(ldns_dname_new_frm_str(zone.c_str()));
  PktPtr pkt(ldns_pkt_query_new(ldns_rdf_clone(name.get()), type, LDNS_RR_CLASS_IN, 0));
  ldns_pkt_set_id(pkt.get(), id);
  if (type == LDNS_RR_TYPE_IXFR) {
    ldns_rr* soa = nullptr;
    std::string text = zone + " 0 IN SOA . . " + std::to_string(serial) + " 0 0 0 0";
    if (ldns_rr_new_frm_str(&soa, text.c_str(), 0, nullptr, nullptr) == LDNS_STATUS_OK)
      ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_AUTHORITY, soa);
  }
  uint8_t* out = nullptr;
  size_t size = 0;
  ldns_pkt2wire(&out, pkt.get(), &size);
  std::vector<uint8_t> wire(out, out + size);
  free(out);
  return wire;
}

}  // namespace

// One message of an answer: parsed and checked (id, rcode, TSIG, not empty).
static PktPtr check_message(std::span<const uint8_t> msg, uint16_t id, zones::TsigClient* tsig, std::string& error) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, msg.data(), msg.size()) != LDNS_STATUS_OK) return (error = "a malformed message", nullptr);
  PktPtr pkt(raw);
  if (ldns_pkt_id(pkt.get()) != id || !ldns_pkt_qr(pkt.get())) return (error = "a message that is not our answer", nullptr);
  if (ldns_pkt_get_rcode(pkt.get()) != LDNS_RCODE_NOERROR) {
    char* rc = ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt.get()));
    error = std::string("answered ") + (rc ? rc : "?");
    free(rc);
    return nullptr;
  }
  if (tsig && !tsig->verify(msg)) return (error = "TSIG of the answer does not verify", nullptr);
  const ldns_rr_list* an = ldns_pkt_answer(pkt.get());
  if (!an || ldns_rr_list_rr_count(an) == 0) return (error = "an answer with no records", nullptr);
  return pkt;
}

XfrInParser::XfrInParser(const std::string& zone, std::optional<uint32_t> have_serial, std::shared_ptr<ZoneCopy> have,
                         uint64_t max_records, zones::TsigClient* tsig, uint16_t id)
    : apex_(ldns_dname_new_frm_str(zone.c_str()), ldns_rdf_deep_free),
      have_serial_(have_serial),
      ixfr_(have_serial && have),
      max_records_(max_records),
      tsig_(tsig),
      id_(id),
      copy_(ixfr_ ? std::move(have) : std::make_shared<ZoneCopy>()) {
  kind_ = ixfr_ ? "IXFR" : "AXFR";
}

XfrInParser::~XfrInParser() = default;

XfrInParser::Status XfrInParser::feed(std::span<const uint8_t> msg) {
  if (status_ != kMore) return status_;
  ++messages_;
  PktPtr pkt = check_message(msg, id_, tsig_, error_);
  if (!pkt || !apex_) return status_ = kError;
  const ldns_rr_list* an = ldns_pkt_answer(pkt.get());
  for (size_t i = 0; i < ldns_rr_list_rr_count(an) && status_ != kError; ++i) {
    if (status_ == kDone) return (error_ = "records after the closing SOA", status_ = kError);
    status_ = take(ldns_rr_list_rr(an, i));
  }
  if (status_ == kDone) finish();
  return status_;
}

int XfrInParser::add(const std::string& line) {
  (*copy_)[rr_key(line)] = line;
  if (copy_->size() + (state_ == kFull) <= max_records_) return kMore;  // (+ the SOA, added at the end)
  error_ = "more than max_zone_size (" + std::to_string(max_records_) + ") records";
  return kError;
}

// RFC 5936 §2.2 and RFC 1995 §4: an AXFR is SOA, the zone, SOA; an IXFR
// answer the SOA alone (nothing newer), the zone in AXFR form, or steps:
// old SOA, what went, new SOA, what came, ..., and the new SOA again.
XfrInParser::Status XfrInParser::take(const ldns_rr* rr) {
  if (ldns_dname_compare(ldns_rr_owner(rr), apex_.get()) != 0 && !ldns_dname_is_subdomain(ldns_rr_owner(rr), apex_.get()))
    return (error_ = "a record outside the zone: " + rr_line(rr), kError);
  std::string line = rr_line(rr);
  Soa soa;
  bool is_soa = soa_of(rr, soa);
  switch (state_) {
    case kStart:
      if (!is_soa) return (error_ = "the transfer does not open with the SOA", kError);
      first_ = soa;
      first_line_ = line;
      state_ = kSecond;
      if (ixfr_ && !zones::serial_gt(first_.serial, *have_serial_)) {  // the SOA alone
        kind_ = "up to date";
        return kDone;
      }
      return kMore;
    case kSecond:
      if (ixfr_ && is_soa && soa.serial == *have_serial_) {
        state_ = kDeleting;
        return kMore;
      }
      if (ixfr_) kind_ = "IXFR as AXFR";
      copy_->clear();
      state_ = kFull;
      [[fallthrough]];
    case kFull:
      if (is_soa) return soa.serial == first_.serial ? kDone : (error_ = "a second SOA inside the zone", kError);
      return Status(add(line));
    case kDeleting:
      if (is_soa) {
        step_to_ = soa.serial;
        state_ = kAdding;
      } else {
        copy_->erase(rr_key(line));
      }
      return kMore;
    case kAdding:
      if (!is_soa) return Status(add(line));
      if (soa.serial == first_.serial && step_to_ == first_.serial) return kDone;
      state_ = kDeleting;  // the next step's old SOA
      return kMore;
  }
  return kError;
}

// The copy's SOA is the one the stream opened with.
void XfrInParser::finish() {
  if (kind_ == "up to date") return;
  for (auto it = copy_->begin(); it != copy_->end();)
    it = it->second.find("\tSOA\t") != std::string::npos ? copy_->erase(it) : std::next(it);
  (*copy_)[rr_key(first_line_)] = first_line_;
}

namespace {

bool write_copy(const XfrInRequest& req, const ZoneCopy& copy, uint32_t serial, const std::string& server,
                std::string& error) {
  std::string dir = req.file.substr(0, req.file.rfind('/'));
  mkdir(dir.c_str(), 0750);
  std::string tmp = req.file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "; vane: secondary copy of " << req.zone << " serial " << serial << " from " << server << "\n";
    // The SOA first (the loader wants it at the top), then the rest.
    for (const auto& [k, line] : copy)
      if (line.find("\tSOA\t") != std::string::npos) out << line << "\n";
    for (const auto& [k, line] : copy)
      if (line.find("\tSOA\t") == std::string::npos) out << line << "\n";
    if (!out.flush()) return (error = "cannot write " + tmp + ": " + strerror(errno), false);
  }
  // It must load as a zone (CNAME and other data, a second SOA, ...).
  zones::ZoneSource src;
  src.origin = req.zone;
  src.file = tmp;
  if (auto z = zones::load_zone(src); !z) {
    error = "the transferred zone does not load: " + z.error().to_string();
    unlink(tmp.c_str());
    return false;
  }
  int fd = open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) fsync(fd), close(fd);
  if (rename(tmp.c_str(), req.file.c_str()) != 0) return (error = "cannot rename " + tmp + ": " + strerror(errno), false);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) fsync(dfd), close(dfd);
  return true;
}

// One primary: SOA, then IXFR or AXFR as needed.
bool exchange(const XfrInRequest& req, Conn& conn, const std::string& server, XfrInResult& res, std::string& error) {
  std::optional<zones::TsigClient> tsig;
  if (req.key) tsig.emplace(*req.key);
  zones::RdfPtr apex(ldns_dname_new_frm_str(req.zone.c_str()));
  uint16_t id = static_cast<uint16_t>(Clock::now().time_since_epoch().count());
  auto send = [&](ldns_rr_type type) -> bool {
    std::vector<uint8_t> q = make_request(req.zone, type, req.have_serial.value_or(0), ++id);
    if (tsig && !tsig->sign_request(q)) return (error = "cannot sign the request with TSIG", false);
    if (!conn.send_message(q)) return (error = conn.error(), false);
    return true;
  };

  // The primary's SOA.
  Soa theirs;
  {
    std::vector<uint8_t> msg;
    if (!send(LDNS_RR_TYPE_SOA)) return (error = "SOA query: " + error, false);
    if (!conn.read_message(msg)) return (error = "SOA query: " + conn.error(), false);
    if (req.answered) req.answered(server);
    PktPtr pkt = check_message(msg, id, tsig ? &*tsig : nullptr, error);
    if (!pkt) return (error = "SOA query: " + error, false);
    const ldns_rr* rr = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
    if (!soa_of(rr, theirs) || ldns_dname_compare(ldns_rr_owner(rr), apex.get()) != 0)
      return (error = "SOA query: the answer holds no SOA of the zone", false);
  }
  res.serial = theirs.serial;
  res.refresh = theirs.refresh;
  res.retry = theirs.retry;
  res.expire = theirs.expire;
  if (req.have_serial && !req.force_axfr && !zones::serial_gt(theirs.serial, *req.have_serial)) {
    res.kind = "up to date";
    return true;
  }

  // The transfer: IXFR from the copy's serial, AXFR without one or when the
  // primary will not do IXFR.
  // The copy IXFR steps from is read now, not held between refreshes; one
  // that is not the serial asked from (gone, edited by hand) is an AXFR.
  std::shared_ptr<ZoneCopy> have;
  if (req.have_serial && !req.force_axfr) {
    have = std::make_shared<ZoneCopy>();
    uint32_t serial = 0, refresh, retry, expire;
    if (!read_copy(req.file, *have, serial, refresh, retry, expire) || serial != *req.have_serial) have.reset();
  }
  bool ixfr = have != nullptr;
  for (;;) {
    if (!send(ixfr ? LDNS_RR_TYPE_IXFR : LDNS_RR_TYPE_AXFR)) return false;
    XfrInParser p(req.zone, ixfr ? req.have_serial : std::nullopt, ixfr ? std::move(have) : nullptr,
                  req.spec.max_records, tsig ? &*tsig : nullptr, id);
    std::vector<uint8_t> msg;
    while (p.status() == XfrInParser::kMore)
      if (!conn.read_message(msg) || p.feed(msg) == XfrInParser::kError) break;
    res.messages += p.messages();
    if (p.status() != XfrInParser::kDone) {
      error = std::string(ixfr ? "IXFR" : "AXFR") + ": " + (p.error().empty() ? conn.error() : p.error());
      if (ixfr && p.error().rfind("answered", 0) == 0) {  // no IXFR there (NOTIMP, FORMERR...): AXFR
        ixfr = false;
        continue;
      }
      return false;
    }
    res.kind = p.kind();
    if (p.kind() == "up to date") return true;
    auto copy = p.take_copy();
    const Soa& s = p.soa();
    res.records = copy->size();
    res.serial = s.serial;
    res.refresh = s.refresh;
    res.retry = s.retry;
    res.expire = s.expire;
    if (!write_copy(req, *copy, s.serial, server, error)) return false;
    res.updated = true;
    return true;
  }
}

// One primary. `silent`: it did not answer (no connection, a step timed
// out, the connection closed, max_transfer_time ran out) — as opposed to
// answering wrong or vaned stopping.
bool from_server(const XfrInRequest& req, const std::string& server, XfrInResult& res, std::string& error,
                 bool& silent) {
  Conn conn(server, req.timeout_ms, req.spec.max_transfer_ms, req.cancel_fd);
  bool ok = conn.ok() && exchange(req, conn, server, res, error);
  if (!conn.ok() && error.empty()) error = conn.error();
  silent = !conn.ok() && !conn.cancelled();
  return ok;
}

}  // namespace

XfrInResult refresh_zone(const XfrInRequest& req) {
  XfrInResult res;
  for (const std::string& server : req.spec.servers) {
    pollfd stop{req.cancel_fd, POLLIN, 0};
    if (req.cancel_fd >= 0 && poll(&stop, 1, 0) == 1) {  // vaned is stopping: not the next primary either
      res.error += (res.error.empty() ? "" : "; ") + std::string("vaned is stopping");
      break;
    }
    std::string error;
    XfrInResult r;
    bool silent = false;
    if (from_server(req, server, r, error, silent)) {
      r.ok = true;
      r.server = server;
      r.silent = std::move(res.silent);
      return r;
    }
    res.error += (res.error.empty() ? "" : "; ") + server + ": " + error;
    if (silent) res.silent.push_back(server);
  }
  return res;
}

XfrInPool::XfrInPool(size_t threads, size_t per_primary, uint32_t silent_ms, std::function<void()> wake)
    : max_threads_(threads), per_primary_(per_primary), silent_for_(silent_ms), wake_(std::move(wake)) {}

XfrInPool::~XfrInPool() {
  close();
  for (auto& t : threads_) t.join();
}

void XfrInPool::submit(std::string zone, XfrInRequest req) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  auto& list = queue_[req.spec.servers];
  list.push_back({seq_++, std::move(zone), std::move(req)});
  ++queued_;
  // Idle threads may be held by their primaries' limits: more refreshes
  // queued than threads idle, a new one (up to the most).
  if (queued_ > idle_ && threads_.size() < max_threads_) threads_.emplace_back([this] { run(); });
  cv_.notify_one();
}

std::vector<std::pair<std::string, XfrInResult>> XfrInPool::take_done() {
  std::lock_guard lock(mu_);
  return std::exchange(done_, {});
}

void XfrInPool::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  queue_.clear();
  queued_ = 0;
  wake_ = nullptr;
  cv_.notify_all();
}

void XfrInPool::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    Queue::iterator list = queue_.end();
    Clock::time_point now;
    while (!closed_) {
      auto until = Clock::time_point::max();
      now = Clock::now();  // one time for the choice and the order below: the limit checked is the one counted
      if ((list = next(now, until)) != queue_.end()) break;
      if (until == Clock::time_point::max())
        cv_.wait(lock);
      else
        cv_.wait_until(lock, until);
    }
    --idle_;
    if (closed_) return;
    auto [seq, zone, req] = std::move(list->second.front());
    list->second.pop_front();
    if (list->second.empty()) queue_.erase(list);
    --queued_;
    std::stable_sort(req.spec.servers.begin(), req.spec.servers.end(),
                     [&](const std::string& a, const std::string& b) { return rank(a, now) < rank(b, now); });
    const std::string first = req.spec.servers.empty() ? "" : req.spec.servers.front();
    if (Primary& p = primaries_[first]; p.running++ == 0 && !p.answered) p.asked = now;
    req.answered = [this](const std::string& server) { answered(server); };
    lock.unlock();
    XfrInResult res = refresh_zone(req);
    lock.lock();
    --primaries_[first].running;
    // A primary found silent is no longer tried first: refreshes queued
    // behind its limit may go now, on the idle threads too.
    if (heard(res)) cv_.notify_all();
    if (closed_) return;
    done_.emplace_back(std::move(zone), std::move(res));
    if (wake_) wake_();
  }
}

std::vector<std::pair<std::string, std::chrono::milliseconds>> XfrInPool::silent() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::chrono::milliseconds>> out;
  auto now = Clock::now();
  for (const auto& [server, p] : primaries_)
    if (is_silent(p, now))
      out.emplace_back(server, std::chrono::duration_cast<std::chrono::milliseconds>(now - *p.silent));
  return out;
}

bool XfrInPool::is_silent(const Primary& p, Clock::time_point now) const {
  return p.silent && now - *p.silent < silent_for_;
}

XfrInPool::Rank XfrInPool::rank(const std::string& server, Clock::time_point now) const {
  auto it = primaries_.find(server);
  if (it == primaries_.end()) return Rank::kAsk;
  const Primary& p = it->second;
  if (is_silent(p, now)) return Rank::kSilent;
  if (p.answered || p.running == 0 || now - p.asked < kFirstAnswer) return Rank::kAsk;
  return Rank::kSlow;
}

// The primary a refresh starts with: run() sorts the zone's primaries by
// rank (stable: the configured order among equals), and this is its first.
const std::string& XfrInPool::first_tried(const std::vector<std::string>& servers, Clock::time_point now) const {
  static const std::string none;
  const std::string* best = servers.empty() ? &none : &servers.front();
  for (const auto& s : servers)
    if (rank(s, now) < rank(*best, now)) best = &s;
  return *best;
}

XfrInPool::Queue::iterator XfrInPool::next(Clock::time_point now, Clock::time_point& until) {
  auto best = queue_.end();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (best != queue_.end() && best->second.front().seq < it->second.front().seq) continue;
    auto p = primaries_.find(first_tried(it->first, now));
    // Not heard from yet (nor silent): one refresh asks it, the others wait
    // for its first message, or until it has kept them waiting too long.
    bool unheard = p != primaries_.end() && !p->second.answered && !is_silent(p->second, now);
    if (p == primaries_.end() || p->second.running < (unheard ? 1 : per_primary_))
      best = it;
    else if (auto slow = p->second.asked + kFirstAnswer; unheard && slow > now)
      until = std::min(until, slow);
  }
  return best;
}

void XfrInPool::answered(const std::string& server) {
  std::lock_guard lock(mu_);
  Primary& p = primaries_[server];
  if (p.answered) return;
  if (p.silent) VANE_INFO("primary %s answers again", server.c_str());
  p.silent.reset();
  p.answered = true;
  cv_.notify_all();  // the refreshes waiting for its first message
}

bool XfrInPool::heard(const XfrInResult& res) {
  bool found = false;
  auto now = Clock::now();
  for (const std::string& s : res.silent) {
    Primary& p = primaries_[s];
    if (!is_silent(p, now)) {
      VANE_WARN(
          "primary %s did not answer: tried after the zones' other primaries for the next %llds, or until it answers",
          s.c_str(), static_cast<long long>(silent_for_.count() / 1000));
      found = true;
    }
    p.silent = now;
    p.answered = false;
  }
  return found;
}

namespace {

// "owner ttl IN SOA mname rname serial refresh retry expire minimum"
bool soa_timers(const std::string& line, uint32_t& serial, uint32_t& refresh, uint32_t& retry, uint32_t& expire) {
  if (line.find("\tSOA\t") == std::string::npos) return false;
  std::istringstream f(line);
  std::string skip;
  for (int i = 0; i < 6; ++i) f >> skip;
  return static_cast<bool>(f >> serial >> refresh >> retry >> expire);
}

}  // namespace

bool read_copy(const std::string& file, ZoneCopy& copy, uint32_t& serial, uint32_t& refresh, uint32_t& retry,
               uint32_t& expire) {
  std::ifstream in(file);
  if (!in) return false;
  bool soa = false;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == ';') continue;
    copy[rr_key(line)] = line;
    if (!soa) soa = soa_timers(line, serial, refresh, retry, expire);
  }
  return soa;
}

bool read_copy_soa(const std::string& file, uint32_t& serial, uint32_t& refresh, uint32_t& retry, uint32_t& expire) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != ';') return soa_timers(line, serial, refresh, retry, expire);
  return false;
}

}  // namespace vane::server
