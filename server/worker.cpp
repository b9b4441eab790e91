// DNS worker. UDP: a thread per socket. By default it blocks in
// recvmmsg(MSG_WAITFORONE) and answers with sendmmsg — two syscalls per
// batch; with `udp.receive: io_uring` a multishot recvmsg fills
// kernel-provided buffers and one io_uring_enter per batch both sends the
// last batch's answers and waits for the next (server/udp_ring.h). Either
// way none per query and no readiness wait in between; an opt-in wait
// before the next receive makes batches larger under load (`udp.coalesce`).
// TCP: a libuv loop.
// Hot path: no allocation, no locks (a UDP thread swaps its snapshot between
// batches when `refresh` says so; the loop swaps its own in on_wake()).
#include "worker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "dnstap.h"
#include "log.h"
#include "udp_ring.h"

namespace vane::server {

namespace {

// A UDP thread blocks in its receive with no timeout: a timed wait arms a
// kernel timer on every sleep, 1.5 % of the thread's CPU at 10 000 q/s. A
// newer snapshot or a stop wakes it with this signal instead; the handler
// does nothing, the receive returns EINTR, and the loop looks at `refresh`
// and `stopping_`. A wake that lands after that look and before the receive
// blocks is lost, so it is sent again: by nudge() (once a second, while a
// snapshot is not yet taken) and by the destructor (until the thread has
// left). SIGURG, because it is ignored by default: a stray one changes
// nothing, and nothing here asks for TCP urgent data. The io_uring path is
// woken through an eventfd as well (UdpSocket::ring_wake), which loses
// nothing: a signal alone can be swallowed there, as liburing waits again
// when an interrupted io_uring_enter had submitted entries.
constexpr int kWakeSignal = SIGURG;

void install_wake_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the blocked receive returns
    sigaction(kWakeSignal, &sa, nullptr);
  });
}

void mask_wakes(int how) {
  sigset_t wakes;
  sigemptyset(&wakes);
  sigaddset(&wakes, kWakeSignal);
  pthread_sigmask(how, &wakes, nullptr);
}

}  // namespace

void block_udp_wakes() { mask_wakes(SIG_BLOCK); }

void Worker::wake(UdpSocket& s) {
  if (!s.thread.joinable()) return;
  if (s.ring_wake.get() >= 0) eventfd_write(s.ring_wake.get(), 1);
  pthread_kill(s.thread.native_handle(), kWakeSignal);  // the recvmmsg path, or io_uring's after a fallback
}

TcpAdmission::Verdict TcpAdmission::admit(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && it->second >= opts_.max_per_client) return Verdict::kClientFull;
  if (total_.load(std::memory_order_relaxed) >= opts_.max_connections) return Verdict::kServerFull;
  ++per_client_[client];
  total_.fetch_add(1, std::memory_order_relaxed);
  return Verdict::kAdmitted;
}

uint32_t TcpAdmission::held(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

bool TcpAdmission::hand_over(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(to);
  if (it != per_client_.end() && it->second >= opts_.max_per_client) return false;
  if (auto f = per_client_.find(from); f != per_client_.end() && --f->second == 0) per_client_.erase(f);
  ++per_client_[to];
  return true;
}

void TcpAdmission::release(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

Worker::Worker(unsigned id, WorkerSockets sockets, SnapshotPublisher& publisher, zones::TransferPublisher& transfers,
               NotifyInbox& notifies, TcpAdmission& admission, const AnswerOptions& answer_opts, const TcpOptions& tcp_opts,
               const UdpOptions& udp_opts)
    : id_(id),
      sockets_(std::move(sockets)),
      publisher_(publisher),
      transfers_(transfers),
      notifies_(notifies),
      admission_(admission),
      answer_opts_(answer_opts),
      tcp_opts_(tcp_opts),
      udp_opts_(udp_opts),
      zones_(publisher.current()),
      tcp_scratch_(new uint8_t[65535]) {
  uv_loop_init(&loop_);
  loop_.data = this;
  // Bench A/B only (bench/run.sh): the same binary without query counters.
  bool count = !getenv("VANE_BENCH_NO_COUNTERS");
  ctx_.counters = count ? &counters_ : nullptr;
  ctx_.sigs.set_capacity(answer_opts.sig_cache_entries);
  if (zones_ && zones_->states) counters_.steered.ensure(zones_->states->size());
  std::random_device rd;
  ctx_.rng = (ctx_.rng ^ (rd() * 0x100000001B3ULL + id)) | 1;  // per-thread pick streams
  tcp_dnstap_queue_ = dnstap_queue(id, sockets_.udp.size(), sockets_.udp.size());
  uv_async_init(&loop_, &wake_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->on_wake(); });
  wake_.data = this;
  for (size_t i = 0; i < sockets_.udp.size(); ++i) {
    auto s = std::make_unique<UdpSocket>();
    s->worker = this;
    s->index = unsigned(i);
    s->fd = sockets_.udp[i].get();
    s->wildcard = sockets_.udp_wildcard[i];
    socklen_t llen = sizeof s->local;
    getsockname(s->fd, reinterpret_cast<sockaddr*>(&s->local), &llen);
    s->dnstap_queue = dnstap_queue(id, sockets_.udp.size(), i);
    s->zones = zones_;
    s->ctx.counters = count ? &s->counters : nullptr;
    s->ctx.sigs.set_capacity(answer_opts.sig_cache_entries);
    s->ctx.rng = (s->ctx.rng ^ (rd() * 0x100000001B3ULL + id * 64 + i + 1)) | 1;
    if (s->zones && s->zones->states) s->counters.steered.ensure(s->zones->states->size());
    // Blocking receives, woken by kWakeSignal (sends stay MSG_DONTWAIT).
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
    if (udp_opts.receive == UdpOptions::Receive::kIoUring) s->ring_wake = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    udp_.push_back(std::move(s));
  }
  for (auto& fd : sockets_.tcp) {
    auto l = std::make_unique<TcpListener>();
    l->worker = this;
    uv_tcp_init(&loop_, &l->tcp);
    uv_tcp_open(&l->tcp, fd.release());  // libuv owns and closes it from here
    l->tcp.data = l.get();
    tcp_.push_back(std::move(l));
  }
}

Worker::~Worker() {
  if (!stopping_.load()) stop();  // else the threads would never end
  if (thread_.joinable()) thread_.join();
  for (auto& s : udp_) {
    if (!s->thread.joinable()) continue;
    while (!s->done.load(std::memory_order_acquire)) {  // see kWakeSignal
      wake(*s);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    s->thread.join();
  }
  uv_loop_close(&loop_);
}

std::vector<const QueryCounters*> Worker::counters() const {
  std::vector<const QueryCounters*> out{&counters_};
  for (const auto& s : udp_) out.push_back(&s->counters);
  return out;
}

void Worker::start() {
  install_wake_handler();
  for (size_t i = 0; i < udp_.size(); ++i)
    udp_[i]->thread = std::thread([this, s = udp_[i].get(), i] {
      char name[16];
      snprintf(name, sizeof name, "vane-udp-%u.%zu", id_, i);
      pthread_setname_np(pthread_self(), name);
      mask_wakes(SIG_UNBLOCK);
      run_udp(*s);
      s->done.store(true, std::memory_order_release);
    });
  for (auto& l : tcp_)
    uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 1024, [](uv_stream_t* server, int status) {
      if (status == 0) {
        auto* l = static_cast<TcpListener*>(server->data);
        l->worker->on_accept(*l);
      }
    });
  thread_ = std::thread([this] {
    std::string name = "vane-dns-" + std::to_string(id_);  // per-thread CPU in top/ps and bench
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    run();
  });
}

void Worker::run() {
  char name[16];
  snprintf(name, sizeof name, "vane-dns-%u", id_);
  pthread_setname_np(pthread_self(), name);
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Worker::refresh() {
  for (auto& s : udp_) {
    s->refresh.store(true, std::memory_order_release);
    wake(*s);
  }
  uv_async_send(&wake_);
}

void Worker::nudge() {
  for (auto& s : udp_)
    if (s->refresh.load(std::memory_order_relaxed)) wake(*s);
}

void Worker::stop() {
  stopping_.store(true);
  for (auto& s : udp_) wake(*s);
  uv_async_send(&wake_);
}

void Worker::on_wake() {
  if (stopping_.load()) {
    while (!conns_.empty()) close_conn(*conns_.begin());
    for (auto& l : tcp_) uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    return;
  }
  zones_ = publisher_.current();
  if (zones_ && zones_->states) counters_.steered.ensure(zones_->states->size());  // before answers can name new slots
}

namespace {

// Coalescing (interrupt moderation in user space; `udp.coalesce`, off by
// default): when datagrams arrive fast enough that the cap would gather
// kCoalesceMin of them, wait before receiving again — the answers already
// sent — for about as long as it takes kCoalesceTarget to arrive: one timer
// sleep and one receive/send per dozens of queries instead of a wake-up per
// handful. Only datagrams that arrive during a wait are delayed, by at most
// the cap; a quiet server never waits. The rate is a moving average of
// datagrams per nanosecond between receives. The timer slack is cut from the
// default 50 µs, which would more than double a 100 µs wait.
class Coalescer {
 public:
  static constexpr uint64_t kQuietNs = 100'000'000;
  Coalescer(uint32_t cap_us, int full) : cap_ns_(cap_us * 1000.0), full_(full) {
    if (cap_ns_ > 0) prctl(PR_SET_TIMERSLACK, 1000UL);
  }
  // Before a receive: true if it waited.
  bool wait() const {
    if (!(cap_ns_ > 0 && last_ > 1 && last_ < full_ && rate_ * cap_ns_ >= UdpOptions::kCoalesceMin)) return false;
    double wait = std::min(cap_ns_, UdpOptions::kCoalesceTarget / rate_);
    timespec ts{0, long(wait)};
    nanosleep(&ts, nullptr);
    return true;
  }
  // After it: `n` datagrams (0 after a wake; that, or a receive after a
  // quiet spell of kQuietNs, starts the estimate afresh).
  void received(int n) {
    last_ = n;
    if (n <= 0) {
      rate_ = 0;
      return;
    }
    if (!(cap_ns_ > 0)) return;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);  // vDSO: no syscall
    uint64_t now_ns = uint64_t(now.tv_sec) * 1000000000 + uint64_t(now.tv_nsec);
    if (prev_ns_ && now_ns - prev_ns_ > kQuietNs) rate_ = 0;
    else if (prev_ns_ && now_ns > prev_ns_) rate_ = 0.75 * rate_ + 0.25 * n / double(now_ns - prev_ns_);
    prev_ns_ = now_ns;
  }

 private:
  double cap_ns_;
  int full_;
  double rate_ = 0;
  uint64_t prev_ns_ = 0;
  int last_ = 0;
};

}  // namespace

// A newer snapshot, taken between batches: after the receive too, so that a
// query that arrives after a reload was acknowledged gets the new zones.
void Worker::refresh_udp(UdpSocket& s) {
  if (s.refresh.load(std::memory_order_relaxed) && s.refresh.exchange(false, std::memory_order_acquire)) {
    s.zones = publisher_.current();
    if (s.zones && s.zones->states) s.counters.steered.ensure(s.zones->states->size());
  }
}

void Worker::run_udp(UdpSocket& s) {
  if (udp_opts_.receive == UdpOptions::Receive::kIoUring) {
    std::string why;
    if (run_udp_ring(s, why)) {
      s.zones.reset();
      return;
    }
    VANE_WARN("UDP socket %u.%u: io_uring stopped working (%s); receiving with recvmmsg from now on", id_, s.index,
              why.c_str());
  }
  run_udp_recvmmsg(s);
  s.zones.reset();
}

bool Worker::run_udp_ring(UdpSocket& s, std::string& why) {
  if (s.ring_wake.get() < 0) {
    why = "no eventfd to wake it by (eventfd failed when the worker was made)";
    return false;
  }
  UdpRing ring;
  if (!ring.open(s.fd, kRxSize, s.wildcard ? kCtlSize : 0, s.ring_wake.get(), why)) return false;
  Coalescer coalesce(udp_opts_.coalesce_us, kBatch);
  std::array<UdpRing::Datagram, kBatch> got;
  uint64_t send_errors = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    if (coalesce.wait() && s.ctx.counters) QueryCounters::bump(s.ctx.counters->udp_waits);
    refresh_udp(s);  // also when woken idle: the old snapshot is released
    // Sends the previous batch's answers and waits for the next datagrams
    // or a wake (ring_wake): one io_uring_enter.
    int n = ring.receive(got.data(), kBatch, -1, why);
    if (n < 0) return false;
    if (ring.send_errors() != send_errors) {
      stats_.dropped.fetch_add(ring.send_errors() - send_errors, std::memory_order_relaxed);
      send_errors = ring.send_errors();
    }
    coalesce.received(n);
    if (n == 0) continue;
    for (int i = 0; i < n; ++i) {
      const UdpRing::Datagram& d = got[i];
      msghdr& h = s.rx[i].msg_hdr;
      std::memcpy(&s.peers[i], d.name, d.namelen);  // the buffer goes back before the answer is sent
      h.msg_namelen = d.namelen;
      h.msg_control = d.controllen ? d.control : nullptr;
      h.msg_controllen = d.controllen;
      h.msg_flags = d.flags;
      s.rx_iov[i] = {d.payload, d.len};
      s.rx[i].msg_len = d.len;
    }
    refresh_udp(s);
    if (s.ctx.counters) QueryCounters::bump(s.ctx.counters->udp_batches);
    int out = answer_batch(s, n);
    ring.release(got.data(), n);
    for (int i = 0; i < out; ++i)
      if (!ring.send(&s.tx[i].msg_hdr)) stats_.dropped.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void Worker::run_udp_recvmmsg(UdpSocket& s) {
  Coalescer coalesce(udp_opts_.coalesce_us, kBatch);
  int used = kBatch;  // headers the last receive wrote to: only those are set again
  while (!stopping_.load(std::memory_order_relaxed)) {
    if (coalesce.wait() && s.ctx.counters) QueryCounters::bump(s.ctx.counters->udp_waits);
    refresh_udp(s);  // also when woken idle: the old snapshot is released
    for (int i = 0; i < used; ++i) {
      s.rx_iov[i] = {s.rx_buf.get() + i * kRxSize, kRxSize};
      msghdr& h = s.rx[i].msg_hdr;
      h.msg_name = &s.peers[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &s.rx_iov[i];
      h.msg_iovlen = 1;
      h.msg_control = s.wildcard ? s.rx_ctl.get() + i * kCtlSize : nullptr;
      h.msg_controllen = s.wildcard ? kCtlSize : 0;
      h.msg_flags = 0;
    }
    // Blocks for the first datagram (or a wake: EINTR), then takes what
    // else is queued without waiting.
    int n = recvmmsg(s.fd, s.rx.data(), kBatch, MSG_WAITFORONE, nullptr);
    coalesce.received(n);
    used = n;
    if (n <= 0) continue;  // EINTR, or a socket error: look at stopping_, try again
    refresh_udp(s);
    if (s.ctx.counters) QueryCounters::bump(s.ctx.counters->udp_batches);
    int out = answer_batch(s, n);
    for (int sent = 0; sent < out;) {
      int r = sendmmsg(s.fd, s.tx.data() + sent, static_cast<unsigned>(out - sent), MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        // Send buffer full or peer unreachable: skip this datagram, keep the rest.
        stats_.dropped.fetch_add(1, std::memory_order_relaxed);
        ++sent;
        continue;
      }
      sent += r;
    }
  }
}

void Worker::log_exchange(const zones::ZoneSet& zs, QueryContext& ctx, unsigned queue, bool tcp,
                          const sockaddr_storage& peer, const sockaddr_storage& local, std::span<const uint8_t> query,
                          std::span<const uint8_t> response, const timespec& received, QueryCounters* counters) {
  char extra[512];
  DnstapEvent e;
  e.tcp = tcp;
  e.peer = &peer;
  e.local = &local;
  e.query = query;
  e.response = response;
  e.query_time = received;
  clock_gettime(CLOCK_REALTIME, &e.response_time);
  e.extra = {extra, format_decision(ctx, zs, extra, sizeof extra)};
  uint64_t dropped = 0;
  unsigned sent = zs.dnstap->log(queue, e, dropped);
  if (counters) {
    counters->dnstap_sent.store(counters->dnstap_sent.load(std::memory_order_relaxed) + sent, std::memory_order_relaxed);
    counters->dnstap_dropped.store(counters->dnstap_dropped.load(std::memory_order_relaxed) + dropped,
                                   std::memory_order_relaxed);
  }
}

int Worker::answer_batch(UdpSocket& s, int n) {
  const zones::ZoneSet* zones = s.zones.get();
  int out = 0;
  // Rate limiting's clock: a coarse monotonic read per batch (vDSO, no syscall).
  const bool rrl = zones && zones->rrl.rate;
  uint32_t now_s = 0;
  if (rrl) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    now_s = uint32_t(ts.tv_sec);
  }
  // DNSSEC's clock (RRSIG validity): wall seconds, also once per batch.
  timespec wall;
  clock_gettime(CLOCK_REALTIME_COARSE, &wall);
  s.ctx.wall = uint32_t(wall.tv_sec);
  for (int i = 0; i < n; ++i) {
    const msghdr& h = s.rx[i].msg_hdr;
    if (h.msg_flags & MSG_TRUNC) {  // larger than any sane query: not worth an answer
      stats_.dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    uint8_t* resp = s.tx_buf.get() + out * kTxSize;
    set_source(s.ctx, s.peers[i]);
    const bool logged = zones && zones->dnstap && zones->dnstap->sampled(s.dnstap_tick);
    timespec received{};
    if (logged) [[unlikely]] {
      clock_gettime(CLOCK_REALTIME, &received);  // vDSO
      s.ctx.keep_decision = true;
      s.ctx.decision = {};
    }
    std::span<const uint8_t> query{static_cast<const uint8_t*>(s.rx_iov[i].iov_base), s.rx[i].msg_len};
    size_t len = zones ? answer(*zones, query, {resp, kTxSize}, Transport::kUdp, answer_opts_, s.ctx) : 0;
    if (logged) [[unlikely]] {
      s.ctx.keep_decision = false;
      log_exchange(*zones, s.ctx, s.dnstap_queue, false, s.peers[i], s.local,
                   query, {resp, len}, received, &s.counters);
    }
    if (len == 0) {
      stats_.dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (s.ctx.notified) [[unlikely]]
      notifies_.post(s.ctx.notified->origin_text());
    if (rrl) {
      Rrl::Verdict v = s.rrl.check(zones->rrl, s.ctx, resp, len, now_s);
      if (v == Rrl::Verdict::kDrop) {
        if (s.ctx.counters) QueryCounters::bump(s.ctx.counters->rrl_dropped);
        continue;
      }
      if (v == Rrl::Verdict::kSlip) {
        len = Rrl::truncate(resp, s.ctx);
        if (s.ctx.counters) QueryCounters::bump(s.ctx.counters->rrl_slipped);
      }
    }
    s.tx_iov[out] = {resp, len};
    msghdr& t = s.tx[out].msg_hdr;
    t.msg_name = &s.peers[i];
    t.msg_namelen = h.msg_namelen;
    t.msg_iov = &s.tx_iov[out];
    t.msg_iovlen = 1;
    t.msg_control = nullptr;
    t.msg_controllen = 0;
    t.msg_flags = 0;
    if (s.wildcard && h.msg_controllen > 0) {
      // Reply from the address the query was sent to (multi-homed hosts).
      uint8_t* ctl = s.tx_ctl.get() + out * kCtlSize;
      std::memset(ctl, 0, kCtlSize);
      t.msg_control = ctl;
      t.msg_controllen = kCtlSize;
      cmsghdr* dst = CMSG_FIRSTHDR(&t);
      size_t used = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); c && dst;
           c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          pi.ipi_spec_dst = pi.ipi_addr;
          pi.ipi_ifindex = 0;
          dst->cmsg_level = IPPROTO_IP;
          dst->cmsg_type = IP_PKTINFO;
          dst->cmsg_len = CMSG_LEN(sizeof pi);
          std::memcpy(CMSG_DATA(dst), &pi, sizeof pi);
          used = CMSG_SPACE(sizeof pi);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          dst->cmsg_level = IPPROTO_IPV6;
          dst->cmsg_type = IPV6_PKTINFO;
          dst->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
          std::memcpy(CMSG_DATA(dst), CMSG_DATA(c), sizeof(in6_pktinfo));
          used = CMSG_SPACE(sizeof(in6_pktinfo));
        }
      }
      t.msg_controllen = used;
      if (used == 0) t.msg_control = nullptr;
    }
    ++out;
  }
  stats_.udp_queries.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  return out;
}

}  // namespace vane::server
