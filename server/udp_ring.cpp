#include "udp_ring.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vane::server {

namespace {

constexpr uint64_t kRecvTag = 1;
constexpr uint64_t kSendTag = 2;
constexpr uint64_t kWakeTag = 3;
constexpr uint16_t kGroup = 0;
constexpr unsigned kEntries = 128;  // a batch of sends (64), the receive and the wake read fit

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

}  // namespace

UdpRing::~UdpRing() {
  if (ring_open_) {
    if (br_) io_uring_unregister_buf_ring(&ring_, kGroup);
    io_uring_queue_exit(&ring_);  // cancels the multishot receive
  }
  if (br_) munmap(br_, kBuffers * sizeof(io_uring_buf));
}

bool UdpRing::open(int fd, size_t payload, size_t control, int wake_fd, std::string& why) {
  fd_ = fd;
  wake_fd_ = wake_fd;
  // The receive work runs in this thread when it waits (DEFER_TASKRUN), not
  // as an interrupt of whatever it is doing; kernels before 6.1 get the
  // plain ring.
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(kEntries, &ring_, &p);
  if (r == -EINVAL) {
    p = {};
    r = io_uring_queue_init_params(kEntries, &ring_, &p);
  }
  if (r < 0) {
    why = errno_text("io_uring_setup", -r);
    return false;
  }
  ring_open_ = true;
  void* mem = mmap(nullptr, kBuffers * sizeof(io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    why = errno_text("mmap", errno);
    return false;
  }
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br_);
  reg.ring_entries = kBuffers;
  reg.bgid = kGroup;
  if ((r = io_uring_register_buf_ring(&ring_, &reg, 0)) < 0) {
    munmap(br_, kBuffers * sizeof(io_uring_buf));
    br_ = nullptr;
    why = errno_text("provided buffer ring", -r);
    return false;
  }
  layout_.msg_namelen = kNameSize;
  layout_.msg_controllen = control;
  // Each buffer: the kernel's header, the peer's address, the ancillary
  // data, the datagram; each a multiple of 16 bytes from new[]'s 16-byte
  // aligned start, so that the cmsghdrs are aligned.
  buf_size_ = (sizeof(io_uring_recvmsg_out) + kNameSize + control + payload + 15) & ~size_t(15);
  bufs_.reset(new uint8_t[kBuffers * buf_size_]);
  for (unsigned i = 0; i < kBuffers; ++i)
    io_uring_buf_ring_add(br_, bufs_.get() + i * buf_size_, unsigned(buf_size_), uint16_t(i),
                          io_uring_buf_ring_mask(kBuffers), int(i));
  io_uring_buf_ring_advance(br_, kBuffers);
  arm();
  if (wake_fd_ >= 0) arm_wake();
  return true;
}

void UdpRing::arm_wake() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) return;  // armed on the next receive()
  io_uring_prep_read(sqe, wake_fd_, &wake_count_, sizeof wake_count_, 0);
  io_uring_sqe_set_data64(sqe, kWakeTag);
  wake_armed_ = true;
}

void UdpRing::arm() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) return;  // the queue is full of sends: armed on the next receive()
  io_uring_prep_recvmsg_multishot(sqe, fd_, &layout_, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kGroup;
  io_uring_sqe_set_data64(sqe, kRecvTag);
  armed_ = true;
}

bool UdpRing::send(const msghdr* h) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) return false;
  io_uring_prep_sendmsg(sqe, fd_, h, MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, kSendTag);
  ++sends_;
  return true;
}

void UdpRing::harvest() {
  io_uring_cqe* cqe;
  unsigned seen = 0, head;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    if (cqe->user_data == kWakeTag) {
      wake_armed_ = false;  // read: the wait ends, and the next receive() reads again
      if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) wake_error_ = -cqe->res;
      continue;
    }
    if (cqe->user_data == kSendTag) {
      --sends_;
      if (cqe->res < 0) ++send_errors_;  // send buffer full, or the peer unreachable: that answer is lost
      continue;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) armed_ = false;  // ended (out of buffers, or an error): arm again
    if (cqe->res < 0) {
      if (!received_any_ && first_error_ == 0 && cqe->res != -ENOBUFS) first_error_ = -cqe->res;
      continue;
    }
    received_any_ = true;
    backlog_[(head_ + count_++) % kBuffers] = {cqe->res, cqe->flags};
  }
  io_uring_cq_advance(&ring_, seen);
}

int UdpRing::enter(unsigned wait, int timeout_ms) {
  __kernel_timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000LL};
  io_uring_cqe* cqe = nullptr;
  int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait, timeout_ms >= 0 ? &ts : nullptr, nullptr);
  harvest();
  return r;
}

int UdpRing::receive(Datagram* out, int max, int timeout_ms, std::string& why) {
  if (!armed_) {
    if (count_ < kBuffers / 2) arm();  // with buffers to receive into
  }
  if (wake_fd_ >= 0 && !wake_armed_) arm_wake();
  // Wait for every send (they finish during the submit unless the socket's
  // buffer is full) and, unless datagrams are waiting already, one more.
  int r = enter(sends_ + (count_ ? 0 : 1), count_ ? -1 : timeout_ms);
  while (sends_ > 0 && (r >= 0 || r == -ETIME || r == -EINTR)) r = enter(sends_, -1);
  if (first_error_) {
    why = errno_text("multishot recvmsg", first_error_);
    return -1;
  }
  if (wake_error_) {
    why = errno_text("read of the wake eventfd", wake_error_);
    return -1;
  }
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
    why = errno_text("io_uring_enter", -r);
    return -1;
  }
  int n = 0;
  while (n < max && count_ > 0) {
    Completion c = backlog_[head_];
    head_ = (head_ + 1) % kBuffers;
    --count_;
    if (parse(c, out[n])) ++n;
  }
  return n;
}

bool UdpRing::parse(const Completion& c, Datagram& d) {
  if (!(c.flags & IORING_CQE_F_BUFFER)) return false;
  uint16_t bid = uint16_t(c.flags >> IORING_CQE_BUFFER_SHIFT);
  uint8_t* buf = bufs_.get() + size_t(bid) * buf_size_;
  auto* o = io_uring_recvmsg_validate(buf, c.res, &layout_);
  if (!o) {  // shorter than its own header: give the buffer back
    Datagram none{};
    none.bid = bid;
    release(&none, 1);
    return false;
  }
  d.bid = bid;
  d.payload = static_cast<uint8_t*>(io_uring_recvmsg_payload(o, &layout_));
  d.len = io_uring_recvmsg_payload_length(o, c.res, &layout_);
  d.name = static_cast<const sockaddr*>(io_uring_recvmsg_name(o));
  d.namelen = std::min<uint32_t>(o->namelen, kNameSize);
  d.control = static_cast<uint8_t*>(io_uring_recvmsg_name(o)) + kNameSize;
  d.controllen = std::min<uint32_t>(o->controllen, uint32_t(layout_.msg_controllen));
  d.flags = int(o->flags);
  return true;
}

void UdpRing::release(const Datagram* d, int n) {
  for (int i = 0; i < n; ++i)
    io_uring_buf_ring_add(br_, bufs_.get() + size_t(d[i].bid) * buf_size_, unsigned(buf_size_), d[i].bid,
                          io_uring_buf_ring_mask(kBuffers), i);
  io_uring_buf_ring_advance(br_, n);
}

std::string UdpRing::probe() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_text("socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  std::string why;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) < 0) {
    why = errno_text("bind 127.0.0.1", errno);
  } else {
    UdpRing ring;
    if (ring.open(fd, 512, 0, -1, why)) {
      const char byte = 'v';
      sendto(fd, &byte, 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      Datagram d{};
      int n = ring.receive(&d, 1, 1000, why);
      if (n == 1 && d.len == 1 && d.payload[0] == byte) why.clear();
      else if (n >= 0) why = "multishot recvmsg: the probe's datagram did not arrive";
    }
  }
  close(fd);
  return why;
}

}  // namespace vane::server
