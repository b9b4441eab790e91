// A UDP socket's io_uring: one multishot recvmsg with kernel-provided
// buffers receives every datagram (no receive syscall at all), and the
// answers go out as sendmsg entries submitted by the same io_uring_enter that
// waits for the next datagrams — one syscall per batch instead of
// recvmmsg + sendmmsg. Owned by the socket's thread (SINGLE_ISSUER,
// DEFER_TASKRUN: the kernel does the receive work when that thread waits).
// Other threads wake a waiting receive() by writing to an eventfd that the
// ring keeps a read on, so the wait needs no timeout.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace vane::server {

class UdpRing {
 public:
  static constexpr unsigned kBuffers = 256;  // provided receive buffers (a power of two)
  static constexpr size_t kNameSize = sizeof(sockaddr_storage);

  // A datagram received into buffer `bid`, its parts inside that buffer.
  struct Datagram {
    uint8_t* payload;
    uint32_t len;
    const sockaddr* name;
    uint32_t namelen;
    uint8_t* control;
    uint32_t controllen;
    int flags;  // MSG_TRUNC when the datagram was larger than the buffer
    uint16_t bid;
  };

  // Empty when io_uring with multishot recvmsg and provided buffers works
  // here (tried on a loopback socket of its own), else why not.
  static std::string probe();

  UdpRing() = default;
  ~UdpRing();
  UdpRing(const UdpRing&) = delete;
  UdpRing& operator=(const UdpRing&) = delete;

  // Sets up the ring on `fd` (payload up to `payload` bytes, `control`
  // bytes of ancillary data per datagram). `wake_fd`: an eventfd, owned by
  // the caller and open while the ring is, whose every write makes the
  // receive() waiting then, or the next one, return (-1: none). A write
  // is never lost: it stays in the eventfd until the ring reads it.
  // False with `why` on failure.
  bool open(int fd, size_t payload, size_t control, int wake_fd, std::string& why);

  // Submits the queued sends and the receive, then waits up to `timeout_ms`
  // (-1: until woken) for every send to complete and at least one datagram
  // (none if one is already waiting). Fills `out` with up to `max`
  // datagrams, in order. Returns how many, 0 on timeout or a wake, -1 when
  // the ring cannot go on (`why`).
  int receive(Datagram* out, int max, int timeout_ms, std::string& why);

  // Hands `n` datagrams' buffers back to the kernel (after answering them).
  void release(const Datagram* d, int n);

  // Queues a sendmsg of `h` (its buffers must stay untouched until the next
  // receive() returns: it waits for every send). False if the ring is full.
  bool send(const msghdr* h);

  uint64_t send_errors() const { return send_errors_; }

 private:
  struct Completion {
    int32_t res;
    uint32_t flags;
  };
  void arm();
  void arm_wake();  // a read of the wake eventfd
  int enter(unsigned wait, int timeout_ms);  // submit, wait for `wait` completions, harvest them
  void harvest();
  bool parse(const Completion& c, Datagram& d);

  io_uring ring_{};
  bool ring_open_ = false;
  int fd_ = -1;
  io_uring_buf_ring* br_ = nullptr;
  size_t buf_size_ = 0;
  std::unique_ptr<uint8_t[]> bufs_;
  msghdr layout_{};     // name and control sizes of every received datagram
  bool armed_ = false;  // the multishot receive is live
  int wake_fd_ = -1;
  uint64_t wake_count_ = 0;  // the wake read's buffer
  bool wake_armed_ = false;
  int wake_error_ = 0;
  int first_error_ = 0;
  unsigned sends_ = 0;  // submitted or queued, not completed
  // Datagram completions read from the CQ, not yet handed out: each holds
  // a buffer, so there are never more than kBuffers.
  Completion backlog_[kBuffers];
  unsigned head_ = 0, count_ = 0;
  uint64_t send_errors_ = 0;
  bool received_any_ = false;
};

}  // namespace vane::server
