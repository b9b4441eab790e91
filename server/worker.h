// A DNS worker: its own SO_REUSEPORT UDP and TCP sockets and buffers. TCP
// runs on one thread with a libuv loop; each UDP socket has a thread of its
// own that waits in io_uring_enter (or blocks in recvmmsg) and answers the
// batch — no readiness round trip per batch. Shares with other
// workers only the snapshot publisher (touched on reload, not per query) and
// the TCP connection caps (touched on accept/close).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "answer.h"
#include "config.h"
#include "rrl.h"
#include "sockets.h"
#include "transfer.h"
#include "zone.h"

// Datagrams per receive and send call. During a backlog the first datagram
// of a batch is answered only after the receive has copied the whole batch:
// 16 keeps that wait short (gdnsd's width too). Against 64 it had the lower
// p99 in 22 of 28 paired open-loop rounds, and no higher CPU (bench/RESULTS.md,
// sessions 42-43): the syscalls it adds are 3 per 64 datagrams at most.
#ifndef VANE_UDP_BATCH  // set by CMake (VANE_UDP_BATCH)
#define VANE_UDP_BATCH 16
#endif

namespace vane::server {

// Blocks the signal that wakes UDP threads (worker.cpp, kWakeSignal) in
// the calling thread and the threads it starts from now on; the UDP threads
// unblock it. Called early in main, so that one sent to the process
// interrupts nothing else.
void block_udp_wakes();

// Hands the current ZoneSet to workers. publish() is for the reloader;
// workers copy the pointer when woken, between batches.
class SnapshotPublisher {
 public:
  void publish(std::shared_ptr<const zones::ZoneSet> z) {
    std::lock_guard lock(mu_);
    current_ = std::move(z);
  }
  std::shared_ptr<const zones::ZoneSet> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const zones::ZoneSet> current_;
};

// Server-wide TCP admission: total and per-client connection caps.
class TcpAdmission {
 public:
  explicit TcpAdmission(const TcpOptions& o) : opts_(o) {}
  enum class Verdict { kAdmitted, kServerFull, kClientFull };
  Verdict admit(const std::string& client);
  void release(const std::string& client);
  // `from`'s slot becomes `to`'s, under the lock: at the cap, the slot an
  // eviction frees goes to the client it was made for, not to whichever
  // worker admits next. False (nothing moved) if `to` is at its own cap.
  bool hand_over(const std::string& from, const std::string& to);
  uint32_t held(const std::string& client);  // connections `client` holds now
  uint32_t open() const { return total_.load(std::memory_order_relaxed); }

 private:
  TcpOptions opts_;
  std::atomic<uint32_t> total_{0};
  std::mutex mu_;
  std::map<std::string, uint32_t> per_client_;
};

// NOTIFYs for secondary zones, from the workers to the control plane
// (rare: a lock per NOTIFY, nothing per query).
class NotifyInbox {
 public:
  void set_wake(uv_async_t* wake) {
    std::lock_guard lock(mu_);
    wake_ = wake;
  }
  void post(const std::string& zone) {
    std::lock_guard lock(mu_);
    zones_.push_back(zone);
    if (wake_) uv_async_send(wake_);
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return std::exchange(zones_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> zones_;
  uv_async_t* wake_ = nullptr;
};

struct WorkerStats {  // written by one worker, read by anyone (relaxed)
  std::atomic<uint64_t> udp_queries{0};
  std::atomic<uint64_t> tcp_queries{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> tcp_evicted{0};  // closed at the server-wide cap to let a new client in
};

class TcpConn;

// dnstap's queue of a DNS thread (each has its own: single producer):
// worker `id`'s UDP socket `i`, or its TCP loop when i == udp_sockets.
inline unsigned dnstap_queue(unsigned id, size_t udp_sockets, size_t i) { return unsigned(id * (udp_sockets + 1) + i); }
inline unsigned dnstap_queues(unsigned workers, size_t udp_sockets) { return unsigned(workers * (udp_sockets + 1)); }

class Worker {
 public:
  Worker(unsigned id, WorkerSockets sockets, SnapshotPublisher& publisher, zones::TransferPublisher& transfers,
         NotifyInbox& notifies, TcpAdmission& admission,
         const AnswerOptions& answer_opts, const TcpOptions& tcp_opts, const UdpOptions& udp_opts);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void refresh();  // pick up the newest snapshot (any thread)
  void nudge();    // wake again the UDP threads that have not taken it yet
  void stop();     // close everything and end the thread (any thread)
  const WorkerStats& stats() const { return stats_; }
  // Every thread's counters (TCP's, then each UDP socket's): summed when read.
  std::vector<const QueryCounters*> counters() const;

 private:
  friend class TcpConn;
  static constexpr int kBatch = VANE_UDP_BATCH;  // 16 unless built otherwise (bench/run.sh VANE_BATCHES)
  static constexpr size_t kRxSize = 4096;
  static constexpr size_t kTxSize = 4096;
  static constexpr size_t kCtlSize = 64;

  // One UDP socket and the thread that serves it, with everything per query
  // its own: no field is written by another thread but `refresh`.
  struct UdpSocket {
    Worker* worker;
    unsigned index;  // among the worker's UDP sockets
    int fd;
    bool wildcard;
    std::thread thread;
    std::atomic<bool> refresh{false};  // a newer snapshot is published
    std::atomic<bool> done{false};     // its thread has left run_udp
    Fd ring_wake;                      // io_uring path: an eventfd its ring waits on too
    std::shared_ptr<const zones::ZoneSet> zones;
    QueryContext ctx;
    QueryCounters counters;
    Rrl rrl;
    std::array<mmsghdr, kBatch> rx{};
    std::array<mmsghdr, kBatch> tx{};
    std::array<iovec, kBatch> rx_iov{};
    std::array<iovec, kBatch> tx_iov{};
    std::array<sockaddr_storage, kBatch> peers{};
    sockaddr_storage local{};  // its bound address (dnstap's response address)
    unsigned dnstap_queue = 0;
    uint64_t dnstap_tick = 0;
    std::unique_ptr<uint8_t[]> rx_buf{new uint8_t[kBatch * kRxSize]};
    std::unique_ptr<uint8_t[]> tx_buf{new uint8_t[kBatch * kTxSize]};
    std::unique_ptr<uint8_t[]> rx_ctl{new uint8_t[kBatch * kCtlSize]};
    std::unique_ptr<uint8_t[]> tx_ctl{new uint8_t[kBatch * kCtlSize]};
  };
  struct TcpListener {
    uv_tcp_t tcp;
    Worker* worker;
  };

  void run();
  void run_udp(UdpSocket& s);
  // io_uring; false (with why) when it cannot start or stops working.
  bool run_udp_ring(UdpSocket& s, std::string& why);
  void run_udp_recvmmsg(UdpSocket& s);
  void refresh_udp(UdpSocket& s);  // take a newer snapshot, between batches
  static void wake(UdpSocket& s);  // make its thread look at `refresh` and `stopping_` (any thread)
  // Answers s.rx[0..n) into s.tx; returns how many answers to send.
  int answer_batch(UdpSocket& s, int n);
  // dnstap: logs one exchange on `queue` when the snapshot has a sink and
  // the query is sampled (the decision was kept by the answer path).
  void log_exchange(const zones::ZoneSet& zs, QueryContext& ctx, unsigned queue, bool tcp, const sockaddr_storage& peer,
                    const sockaddr_storage& local, std::span<const uint8_t> query, std::span<const uint8_t> response,
                    const timespec& received, QueryCounters* counters);
  void on_wake();
  void on_accept(TcpListener& l);
  void close_conn(TcpConn* c);
  bool evict_one(TcpConn* newcomer);

  unsigned id_;
  WorkerSockets sockets_;
  SnapshotPublisher& publisher_;
  zones::TransferPublisher& transfers_;
  NotifyInbox& notifies_;
  TcpAdmission& admission_;
  AnswerOptions answer_opts_;
  TcpOptions tcp_opts_;
  UdpOptions udp_opts_;
  std::shared_ptr<const zones::ZoneSet> zones_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  uv_loop_t loop_;
  uv_async_t wake_;
  std::vector<std::unique_ptr<UdpSocket>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::unordered_set<TcpConn*> conns_;
  QueryContext ctx_;  // TCP's (the loop thread)
  unsigned tcp_dnstap_queue_ = 0;
  uint64_t tcp_dnstap_tick_ = 0;
  QueryCounters counters_;
  WorkerStats stats_;
  std::unique_ptr<uint8_t[]> tcp_scratch_;  // one 64 KiB answer buffer for all TCP connections
};

}  // namespace vane::server
