// DNS over TCP (RFC 7766): 2-byte framing, pipelined queries answered in
// order, idle timeout, connection caps, back-pressure when a client does not
// read. Buffers belong to the connection and are reused; one uv_write carries
// every answer produced by one read. A zone transfer request makes the
// connection a transfer stream (xfr_out.h) until its last message is out;
// queries pipelined behind it wait their turn.
#include <cstring>
#include <ctime>

#include "dnstap.h"
#include "log.h"
#include "worker.h"
#include "xfr_out.h"

namespace vane::server {

class TcpConn {
 public:
  explicit TcpConn(Worker& w) : w_(w) {
    in_.resize(4096);
    tcp_.data = this;
    timer_.data = this;
    uv_timer_init(&w_.loop_, &timer_);
  }

  uv_tcp_t* tcp() { return &tcp_; }

  // Applies the server-wide and per-client caps to this accepted connection.
  TcpAdmission::Verdict admit() {
    if (client_.empty()) {
      sockaddr_storage peer{};
      int len = sizeof peer;
      if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&peer), &len) != 0)
        return TcpAdmission::Verdict::kClientFull;
      peer_ = peer;
      const char* a = peer.ss_family == AF_INET
                          ? reinterpret_cast<const char*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr)
                          : reinterpret_cast<const char*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr);
      client_.assign(a, peer.ss_family == AF_INET ? 4 : 16);
    }
    auto v = w_.admission_.admit(client_);
    admitted_ = v == TcpAdmission::Verdict::kAdmitted;
    return v;
  }

  // May this connection be closed to make room (RFC 7766 §6.2.3)? Not while
  // an answer or a transfer is being written to it.
  bool evictable() const { return admitted_ && !closing_ && !writing_ && pending_.empty() && !xfr_; }
  // This connection's slot is now `to`'s (TcpAdmission::hand_over); it
  // closes without releasing one.
  void hand_slot_to(TcpConn& to) {
    admitted_ = false;
    to.admitted_ = true;
  }
  uint64_t last_active_ms() const { return last_active_ms_; }
  const std::string& client() const { return client_; }

  void start() {
    arm_timer();
    start_reading();
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    w_.conns_.erase(this);
    if (admitted_) w_.admission_.release(client_);
    auto done = [](uv_handle_t* h) {
      auto* c = static_cast<TcpConn*>(h->data);
      if (--c->open_handles_ == 0) delete c;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), done);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), done);
  }

 private:
  void arm_timer() {
    last_active_ms_ = uv_now(&w_.loop_);
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<TcpConn*>(t->data)->close(); }, w_.tcp_opts_.idle_timeout_ms, 0);
  }

  void start_reading() {
    reading_ = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&tcp_),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* c = static_cast<TcpConn*>(h->data);
          // Grow only when a declared frame is larger than what we hold.
          if (c->in_len_ >= 2) {
            size_t need = 2 + dns::get16(c->in_.data());
            if (need > c->in_.size()) c->in_.resize(need);
          }
          *buf = uv_buf_init(reinterpret_cast<char*>(c->in_.data() + c->in_len_),
                             static_cast<unsigned>(c->in_.size() - c->in_len_));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) { static_cast<TcpConn*>(s->data)->on_read(n); });
  }

  void on_read(ssize_t n) {
    if (n < 0) {  // EOF or error: finish writing what we owe, then close
      if (writing_) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
        reading_ = false;
        close_after_write_ = true;
      } else {
        close();
      }
      return;
    }
    if (n == 0) return;
    in_len_ += static_cast<size_t>(n);
    process();
  }

  // Answers the complete messages read so far (up to a transfer request,
  // whose stream then comes first).
  void process() {
    size_t pos = 0;
    while (!xfr_ && in_len_ - pos >= 2) {
      size_t len = dns::get16(in_.data() + pos);
      if (len == 0) {  // a zero-length message is nonsense: give up on the stream
        close();
        return;
      }
      if (in_len_ - pos - 2 < len) break;
      std::span<const uint8_t> msg{in_.data() + pos + 2, len};
      if (is_transfer_request(msg)) {
        w_.stats_.tcp_queries.fetch_add(1, std::memory_order_relaxed);
        timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        xfr_ = std::make_unique<XfrOut>(msg, peer_, w_.transfers_, uint64_t(wall.tv_sec));
        if (!xfr_->next(pending_, kXfrChunk)) xfr_.reset();
        pos += 2 + len;
        break;
      }
      size_t resp = answer_one(msg);
      if (resp) {
        uint8_t prefix[2];
        dns::put16(prefix, static_cast<uint16_t>(resp));
        pending_.insert(pending_.end(), prefix, prefix + 2);
        pending_.insert(pending_.end(), w_.tcp_scratch_.get(), w_.tcp_scratch_.get() + resp);
      }
      pos += 2 + len;
    }
    if (pos > 0) {
      std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
      in_len_ -= pos;
      // Idle means no complete query (RFC 7766 §6.2.3): a client that sends a
      // byte now and then does not keep its connection.
      arm_timer();
    }
    flush();
    // Back-pressure: a client that pipelines but does not read stops being
    // read, and so does one whose transfer is being sent.
    if ((xfr_ || pending_.size() > w_.tcp_opts_.max_pipelined_bytes) && reading_) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
      reading_ = false;
    }
  }

  size_t answer_one(std::span<const uint8_t> query) {
    w_.stats_.tcp_queries.fetch_add(1, std::memory_order_relaxed);
    if (!w_.zones_) return 0;
    set_source(w_.ctx_, peer_);
    timespec wall;
    clock_gettime(CLOCK_REALTIME_COARSE, &wall);
    w_.ctx_.wall = uint32_t(wall.tv_sec);
    const zones::ZoneSet& zs = *w_.zones_;
    const bool logged = zs.dnstap && zs.dnstap->sampled(w_.tcp_dnstap_tick_);
    timespec received{};
    if (logged) [[unlikely]] {
      clock_gettime(CLOCK_REALTIME, &received);
      w_.ctx_.keep_decision = true;
      w_.ctx_.decision = {};
      if (local_.ss_family == 0) {  // once per connection
        int len = sizeof local_;
        uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&local_), &len);
      }
    }
    size_t n = answer(zs, query, {w_.tcp_scratch_.get(), 65535}, Transport::kTcp, w_.answer_opts_, w_.ctx_);
    if (logged) [[unlikely]] {
      w_.ctx_.keep_decision = false;
      w_.log_exchange(zs, w_.ctx_, w_.tcp_dnstap_queue_, true, peer_, local_, query, {w_.tcp_scratch_.get(), n},
                      received, w_.ctx_.counters);
    }
    if (w_.ctx_.notified) w_.notifies_.post(w_.ctx_.notified->origin_text());
    return n;
  }

  void flush() {
    if (writing_ || pending_.empty() || closing_) return;
    flight_.swap(pending_);
    pending_.clear();
    writing_ = true;
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(flight_.data()), static_cast<unsigned>(flight_.size()));
    wreq_.data = this;
    int rc = uv_write(&wreq_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, [](uv_write_t* req, int status) {
      auto* c = static_cast<TcpConn*>(req->data);
      c->writing_ = false;
      c->flight_.clear();
      if (status < 0 || c->closing_) {
        c->close();
        return;
      }
      if (c->xfr_ && c->pending_.empty() && !c->close_after_write_) {
        // The transfer's next messages; after its last, what was pipelined behind it.
        c->arm_timer();
        if (!c->xfr_->next(c->pending_, kXfrChunk)) c->xfr_.reset();
        if (!c->xfr_) c->process();
      }
      if (!c->pending_.empty()) {
        c->flush();
      } else if (c->close_after_write_) {
        c->close();
        return;
      }
      if (!c->reading_ && !c->xfr_ && !c->close_after_write_ &&
          c->pending_.size() <= c->w_.tcp_opts_.max_pipelined_bytes)
        c->start_reading();
    });
    if (rc < 0) {
      writing_ = false;
      close();
    }
  }

  static constexpr size_t kXfrChunk = 256 * 1024;  // transfer bytes produced per write

  Worker& w_;
  std::unique_ptr<XfrOut> xfr_;  // the transfer being sent, if any
  std::string client_;
  sockaddr_storage peer_{};
  sockaddr_storage local_{};  // the address it connected to (dnstap), looked up when first needed
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_write_t wreq_;
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  std::vector<uint8_t> pending_;  // answers not yet handed to the kernel
  std::vector<uint8_t> flight_;   // answers in the current uv_write
  bool writing_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool close_after_write_ = false;
  bool admitted_ = false;
  uint64_t last_active_ms_ = 0;  // the last complete query (or the accept)
  int open_handles_ = 2;
};

void Worker::close_conn(TcpConn* c) { c->close(); }

// At the server-wide cap a new client gets a slot by closing one of this
// worker's connections: of the address that holds the most, the one idle
// the longest (RFC 7766 §6.2.3 lets a server close idle connections to
// admit others). A flood of idle connections then costs its senders their
// own slots first; see README *TCP* for what an attacker can still hold.
bool Worker::evict_one(TcpConn* newcomer) {
  TcpConn* victim = nullptr;
  std::pair<uint32_t, uint64_t> worst{0, 0};  // (connections its address holds, ms idle)
  uint64_t now = uv_now(&loop_);
  std::map<std::string, uint32_t> held;
  for (TcpConn* c : conns_) {
    if (c == newcomer || !c->evictable()) continue;
    auto [it, fresh] = held.try_emplace(c->client(), 0);
    if (fresh) it->second = admission_.held(c->client());
    std::pair<uint32_t, uint64_t> score{it->second, now - c->last_active_ms()};
    if (!victim || score > worst) victim = c, worst = score;
  }
  // The slot goes straight to the newcomer: released and then taken, it
  // could go to another worker's accept in between, and the newcomer that
  // cost a connection its place would be turned away all the same.
  if (!victim || !admission_.hand_over(victim->client(), newcomer->client())) return false;
  victim->hand_slot_to(*newcomer);
  victim->close();
  stats_.tcp_evicted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Worker::on_accept(TcpListener& l) {
  // Accept even when over the cap (then close at once), so the kernel's
  // accept queue never fills with connections we will not serve.
  auto* c = new TcpConn(*this);
  uv_tcp_init(&loop_, c->tcp());
  conns_.insert(c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&l.tcp), reinterpret_cast<uv_stream_t*>(c->tcp())) != 0) {
    c->close();
    return;
  }
  auto v = c->admit();
  if (v == TcpAdmission::Verdict::kServerFull && evict_one(c)) v = TcpAdmission::Verdict::kAdmitted;
  if (v != TcpAdmission::Verdict::kAdmitted) {
    c->close();
    return;
  }
  uv_tcp_nodelay(c->tcp(), 1);
  c->start();
}

}  // namespace vane::server
