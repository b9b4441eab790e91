// A DNS worker: one thread, one libuv loop, its own SO_REUSEPORT UDP and TCP
// sockets and its own buffers. Shares with other workers only the snapshot
// publisher (touched on reload, not per query) and the TCP connection caps
// (touched on accept/close).
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
#include <vector>

#include "answer.h"
#include "config.h"
#include "rrl.h"
#include "sockets.h"
#include "zone.h"

namespace vane::server {

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
  bool admit(const std::string& client);
  void release(const std::string& client);
  uint32_t open() const { return total_.load(std::memory_order_relaxed); }

 private:
  TcpOptions opts_;
  std::atomic<uint32_t> total_{0};
  std::mutex mu_;
  std::map<std::string, uint32_t> per_client_;
};

struct WorkerStats {  // written by one worker, read by anyone (relaxed)
  std::atomic<uint64_t> udp_queries{0};
  std::atomic<uint64_t> tcp_queries{0};
  std::atomic<uint64_t> dropped{0};
};

class TcpConn;

class Worker {
 public:
  Worker(unsigned id, WorkerSockets sockets, SnapshotPublisher& publisher, TcpAdmission& admission,
         const AnswerOptions& answer_opts, const TcpOptions& tcp_opts);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void refresh();  // pick up the newest snapshot (any thread)
  void stop();     // close everything and end the thread (any thread)
  const WorkerStats& stats() const { return stats_; }
  const QueryCounters& counters() const { return counters_; }

 private:
  friend class TcpConn;
  static constexpr int kBatch = 64;
  static constexpr size_t kRxSize = 4096;
  static constexpr size_t kTxSize = 4096;
  static constexpr size_t kCtlSize = 64;

  struct UdpSocket {
    uv_poll_t poll;
    Worker* worker;
    int fd;
    bool wildcard;
  };
  struct TcpListener {
    uv_tcp_t tcp;
    Worker* worker;
  };

  void run();
  void drain_udp(UdpSocket& s);
  void on_wake();
  void on_accept(TcpListener& l);
  void close_conn(TcpConn* c);

  unsigned id_;
  WorkerSockets sockets_;
  SnapshotPublisher& publisher_;
  TcpAdmission& admission_;
  AnswerOptions answer_opts_;
  TcpOptions tcp_opts_;
  std::shared_ptr<const zones::ZoneSet> zones_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  uv_loop_t loop_;
  uv_async_t wake_;
  std::vector<std::unique_ptr<UdpSocket>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::unordered_set<TcpConn*> conns_;
  QueryContext ctx_;
  QueryCounters counters_;
  Rrl rrl_;
  WorkerStats stats_;

  // Batch state for recvmmsg/sendmmsg, reused for every batch.
  std::array<mmsghdr, kBatch> rx_{};
  std::array<mmsghdr, kBatch> tx_{};
  std::array<iovec, kBatch> rx_iov_{};
  std::array<iovec, kBatch> tx_iov_{};
  std::array<sockaddr_storage, kBatch> peers_{};
  std::unique_ptr<uint8_t[]> rx_buf_;
  std::unique_ptr<uint8_t[]> tx_buf_;
  std::unique_ptr<uint8_t[]> rx_ctl_;
  std::unique_ptr<uint8_t[]> tx_ctl_;
  std::unique_ptr<uint8_t[]> tcp_scratch_;  // one 64 KiB answer buffer for all TCP connections
};

}  // namespace vane::server
