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

// One exchange's Dnstap message, as protobuf bytes. What is the same for
// every message of a sink (identity, version, the outer type) is packed once
// by protobuf-c; the fields of the exchange are written straight into the
// buffer in field-number order — the same bytes protobuf-c's generic packer
// gives (tests/server/dnstap_test.cpp compares them), at a tenth of its cost
// (two passes over the schema per message were 10 % of a worker).
class DnstapEncoder {
 public:
  explicit DnstapEncoder(const DnstapSpec& spec);
  // A message's length, and its inner Message's (which write() needs first).
  struct Size {
    size_t bytes, message;
  };
  // `type`: AUTH_QUERY (1) or AUTH_RESPONSE (2).
  Size size(int type, const DnstapEvent& e) const;
  // Writes the size(type, e).bytes bytes of the message at `out`.
  void write(int type, const DnstapEvent& e, const Size& size, uint8_t* out) const;

 private:
  size_t message_size(int type, const DnstapEvent& e) const;
  std::string head_, tail_;  // Dnstap's fields 1-2 (identity, version) and 15 (type)
};

// Message buffers of one DNS thread: a ring of bytes, messages written
// back to back and handed back by the I/O thread once written — in the
// order they were queued (one queue per thread, read in order), so giving
// one back only moves the ring's tail past it. No malloc, no lock, no free
// across threads per message, and the memory written and read is the few
// KiB just behind the head (slots a kilobyte apart made the I/O thread's
// copy into the socket 35 % dearer).
class DnstapRing {
 public:
  static constexpr uint64_t kBytes = 4u << 20;  // the queue's 8 192 messages at 512 bytes each
  // A buffer of `len` bytes, or null when the ring is full (the reader is behind).
  uint8_t* take(size_t len);
  void untake() { head_ = undo_; }  // the last take, when fstrm refused the message
  // The I/O thread, done with `buf` (in the order they were taken).
  static void give_back(void* buf, void* ring);

 private:
  std::unique_ptr<uint8_t[]> mem_{new uint8_t[kBytes]};
  uint64_t head_ = 0, undo_ = 0;   // the DNS thread's
  std::atomic<uint64_t> tail_{0};  // the I/O thread's: everything before it is free
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
  DnstapSpec spec_;
  std::unique_ptr<DnstapEncoder> encoder_;
  fstrm_iothr* iothr_ = nullptr;
  std::shared_ptr<std::unique_ptr<DnstapRing>[]> rings_;  // outlive the I/O thread, which returns into them
  std::unique_ptr<fstrm_iothr_queue*[]> queues_;
  unsigned nqueues_ = 0;
  std::atomic<uint64_t> dropped_{0};
  mutable std::atomic<uint64_t> seen_{0};
};

}  // namespace vane::server
