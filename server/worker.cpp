// DNS worker loop. UDP: uv_poll on the raw socket, then recvmmsg/sendmmsg in
// batches of kBatch — two syscalls per batch, none per query. Hot path: no
// allocation, no locks (the snapshot is swapped only in on_wake()).
#include "worker.h"

#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "log.h"

namespace vane::server {

bool TcpAdmission::admit(const std::string& client) {
  std::lock_guard lock(mu_);
  if (total_.load(std::memory_order_relaxed) >= opts_.max_connections) return false;
  uint32_t& n = per_client_[client];
  if (n >= opts_.max_per_client) return false;
  ++n;
  total_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void TcpAdmission::release(const std::string& client) {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

Worker::Worker(unsigned id, WorkerSockets sockets, SnapshotPublisher& publisher, TcpAdmission& admission,
               const AnswerOptions& answer_opts, const TcpOptions& tcp_opts)
    : id_(id),
      sockets_(std::move(sockets)),
      publisher_(publisher),
      admission_(admission),
      answer_opts_(answer_opts),
      tcp_opts_(tcp_opts),
      zones_(publisher.current()),
      rx_buf_(new uint8_t[kBatch * kRxSize]),
      tx_buf_(new uint8_t[kBatch * kTxSize]),
      rx_ctl_(new uint8_t[kBatch * kCtlSize]),
      tx_ctl_(new uint8_t[kBatch * kCtlSize]),
      tcp_scratch_(new uint8_t[65535]) {
  uv_loop_init(&loop_);
  loop_.data = this;
  // Bench A/B only (bench/run.sh): the same binary without query counters.
  ctx_.counters = getenv("VANE_BENCH_NO_COUNTERS") ? nullptr : &counters_;
  if (zones_ && zones_->states) counters_.steered.ensure(zones_->states->size());
  ctx_.rng = (ctx_.rng ^ (std::random_device{}() * 0x100000001B3ULL + id)) | 1;  // per-worker pick stream
  uv_async_init(&loop_, &wake_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->on_wake(); });
  wake_.data = this;
  for (size_t i = 0; i < sockets_.udp.size(); ++i) {
    auto s = std::make_unique<UdpSocket>();
    s->worker = this;
    s->fd = sockets_.udp[i].get();
    s->wildcard = sockets_.udp_wildcard[i];
    uv_poll_init(&loop_, &s->poll, s->fd);
    s->poll.data = s.get();
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
  if (thread_.joinable()) thread_.join();
  uv_loop_close(&loop_);
}

void Worker::start() {
  for (auto& s : udp_)
    uv_poll_start(&s->poll, UV_READABLE, [](uv_poll_t* p, int status, int) {
      if (status == 0) {
        auto* s = static_cast<UdpSocket*>(p->data);
        s->worker->drain_udp(*s);
      }
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
  uv_async_send(&wake_);
}

void Worker::stop() {
  stopping_.store(true);
  uv_async_send(&wake_);
}

void Worker::on_wake() {
  if (stopping_.load()) {
    while (!conns_.empty()) close_conn(*conns_.begin());
    for (auto& s : udp_) uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), nullptr);
    for (auto& l : tcp_) uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    return;
  }
  zones_ = publisher_.current();
  if (zones_ && zones_->states) counters_.steered.ensure(zones_->states->size());  // before answers can name new slots
}

void Worker::drain_udp(UdpSocket& s) {
  const zones::ZoneSet* zones = zones_.get();
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      rx_iov_[i] = {rx_buf_.get() + i * kRxSize, kRxSize};
      msghdr& h = rx_[i].msg_hdr;
      h.msg_name = &peers_[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &rx_iov_[i];
      h.msg_iovlen = 1;
      h.msg_control = s.wildcard ? rx_ctl_.get() + i * kCtlSize : nullptr;
      h.msg_controllen = s.wildcard ? kCtlSize : 0;
      h.msg_flags = 0;
    }
    int n = recvmmsg(s.fd, rx_.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    int out = 0;
    // Rate limiting's clock: the loop's cached time, refreshed per batch
    // (a vDSO clock read, no syscall) since a flood never returns to the loop.
    const bool rrl = zones && zones->rrl.rate;
    if (rrl) uv_update_time(&loop_);
    const uint32_t now_s = rrl ? uint32_t(uv_now(&loop_) / 1000) : 0;
    for (int i = 0; i < n; ++i) {
      const msghdr& h = rx_[i].msg_hdr;
      if (h.msg_flags & MSG_TRUNC) {  // larger than any sane query: not worth an answer
        stats_.dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      uint8_t* resp = tx_buf_.get() + out * kTxSize;
      set_source(ctx_, peers_[i]);
      size_t len = zones ? answer(*zones, {rx_buf_.get() + i * kRxSize, rx_[i].msg_len}, {resp, kTxSize},
                                  Transport::kUdp, answer_opts_, ctx_)
                         : 0;
      if (len == 0) {
        stats_.dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (rrl) {
        Rrl::Verdict v = rrl_.check(zones->rrl, ctx_, resp, len, now_s);
        if (v == Rrl::Verdict::kDrop) {
          if (ctx_.counters) QueryCounters::bump(ctx_.counters->rrl_dropped);
          continue;
        }
        if (v == Rrl::Verdict::kSlip) {
          len = Rrl::truncate(resp, ctx_);
          if (ctx_.counters) QueryCounters::bump(ctx_.counters->rrl_slipped);
        }
      }
      tx_iov_[out] = {resp, len};
      msghdr& t = tx_[out].msg_hdr;
      t.msg_name = &peers_[i];
      t.msg_namelen = h.msg_namelen;
      t.msg_iov = &tx_iov_[out];
      t.msg_iovlen = 1;
      t.msg_control = nullptr;
      t.msg_controllen = 0;
      t.msg_flags = 0;
      if (s.wildcard && h.msg_controllen > 0) {
        // Reply from the address the query was sent to (multi-homed hosts).
        uint8_t* ctl = tx_ctl_.get() + out * kCtlSize;
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
    for (int sent = 0; sent < out;) {
      int r = sendmmsg(s.fd, tx_.data() + sent, static_cast<unsigned>(out - sent), MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        // Send buffer full or peer unreachable: skip this datagram, keep the rest.
        stats_.dropped.fetch_add(1, std::memory_order_relaxed);
        ++sent;
        continue;
      }
      sent += r;
    }
    if (n < kBatch) return;
  }
}

}  // namespace vane::server
