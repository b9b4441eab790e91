// Query log (DESIGN.md "Query log (dnstap)"): AUTH_QUERY and AUTH_RESPONSE
// messages in dnstap's protobuf, written as Frame Streams by libfstrm's
// I/O thread to a unix socket, a file or a TCP reader.
//
// A worker never waits for it: each has its own bounded queue in the I/O
// thread (single producer, single consumer); when that queue is full — the
// reader is slow, gone, or never read — the message is dropped and counted.
// The I/O thread reconnects to a reader that went away. One sink lives in
// each zone snapshot, so a reload turns it on, off or points it elsewhere.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "config.h"
#include "error.h"

struct fstrm_iothr;
struct fstrm_iothr_queue;

namespace vane::server {


// What one logged exchange is made of (the worker's own buffers).
struct DnstapEvent {
  bool tcp = false;
  const sockaddr_storage* peer = nullptr;   // the client
  const sockaddr_storage* local = nullptr;  // the address it asked
  std::span<const uint8_t> query, response;
  timespec query_time{}, response_time{};
  std::string_view extra;  // the steering decision, or empty
};

class DnstapSink {
 public:
  // `queues`: one per DNS thread (UDP and TCP threads alike), by index.
  static Result<std::shared_ptr<DnstapSink>> open(const DnstapSpec& spec, unsigned queues);
  ~DnstapSink();
  DnstapSink(const DnstapSink&) = delete;
  DnstapSink& operator=(const DnstapSink&) = delete;

  const DnstapSpec& spec() const { return spec_; }
  // Flushes and closes (once no DNS thread logs any more), waiting `wait`
  // at most: a reader that never reads holds no one up for longer.
  void close(std::chrono::milliseconds wait);
  // Whether this query (the worker's `tick`-th) is one to log.
  bool sampled(uint64_t& tick) const { return spec_.sample <= 1 || ++tick % spec_.sample == 0; }
  // Packs and queues the query and/or response messages on queue `q`.
  // Returns how many were queued; `dropped` counts those a full queue refused.
  unsigned log(unsigned q, const DnstapEvent& e, uint64_t& dropped);
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Whether messages were dropped since the last time this was asked (status).
  bool dropped_recently() const {
    uint64_t now = dropped_.load(std::memory_order_relaxed);
    return seen_.exchange(now, std::memory_order_relaxed) != now;
  }

 private:
  DnstapSink() = default;
  bool submit(unsigned q, int type, const DnstapEvent& e);
  // Message buffers of one DNS thread, handed back by the I/O thread when
  // written: a ring of free slots with one producer (the I/O thread) and
  // one consumer (the DNS thread) — no malloc, no lock, no free across
  // threads per message. A message larger than a slot is malloc'd.
  struct Pool {
    static constexpr uint32_t kSlots = 2048, kSlotSize = 1024;
    std::unique_ptr<uint8_t[]> mem{new uint8_t[size_t(kSlots) * kSlotSize]};
    std::unique_ptr<std::atomic<uint32_t>[]> ring{new std::atomic<uint32_t>[kSlots]};
    std::atomic<uint64_t> head{0}, tail{0};  // taken up to head, returned up to tail
    Pool();
    uint8_t* take();
    static void give_back(void* buf, void* pool);
  };
  DnstapSpec spec_;
  fstrm_iothr* iothr_ = nullptr;
  std::shared_ptr<std::unique_ptr<Pool>[]> pools_;  // outlive the I/O thread, which returns into them
  std::unique_ptr<fstrm_iothr_queue*[]> queues_;
  unsigned nqueues_ = 0;
  std::atomic<uint64_t> dropped_{0};
  mutable std::atomic<uint64_t> seen_{0};
};

}  // namespace vane::server
