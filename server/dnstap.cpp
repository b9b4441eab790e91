#include "dnstap.h"

#include <fstrm.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <future>
#include <thread>
#include <utility>
#include <cstring>

#include "dnstap.pb-c.h"

namespace vane::server {

namespace {

constexpr char kContentType[] = "protobuf:dnstap.Dnstap";

ProtobufCBinaryData bytes(const void* p, size_t n) { return {n, static_cast<uint8_t*>(const_cast<void*>(p))}; }

// Address bytes and port of a socket address (v4-mapped IPv6 stays IPv6, as the socket saw it).
struct Addr {
  const void* bytes = nullptr;
  uint32_t len = 0, port = 0;
  bool v6 = false;
};
Addr addr_of(const sockaddr_storage* ss) {
  if (ss && ss->ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(ss);
    return {&a->sin_addr, 4, ntohs(a->sin_port), false};
  }
  if (ss && ss->ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(ss);
    return {&a->sin6_addr, 16, ntohs(a->sin6_port), true};
  }
  return {};
}

// Protocol Buffers' wire format, the four pieces a dnstap message needs.
// Every field number here is below 16: a tag is one byte.
enum Wire : uint8_t { kVarint = 0, kLength = 2, kFixed32 = 5 };
constexpr uint8_t tag(unsigned field, Wire w) { return uint8_t(field << 3 | w); }
constexpr size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}
uint8_t* put_varint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) *p++ = uint8_t(v | 0x80), v >>= 7;
  *p++ = uint8_t(v);
  return p;
}
uint8_t* put_uint(uint8_t* p, unsigned field, uint64_t v) {
  *p++ = tag(field, kVarint);
  return put_varint(p, v);
}
uint8_t* put_fixed32(uint8_t* p, unsigned field, uint32_t v) {
  *p++ = tag(field, kFixed32);
  for (int i = 0; i < 4; ++i) *p++ = uint8_t(v >> 8 * i);
  return p;
}
uint8_t* put_bytes(uint8_t* p, unsigned field, const void* b, size_t n) {
  *p++ = tag(field, kLength);
  p = put_varint(p, n);
  if (n) std::memcpy(p, b, n);
  return p + n;
}
constexpr size_t uint_size(uint64_t v) { return 1 + varint_size(v); }
constexpr size_t bytes_size(size_t n) { return 1 + varint_size(n) + n; }

std::string packed(const Dnstap__Dnstap& d) {
  std::string out(dnstap__dnstap__get_packed_size(&d), '\0');
  dnstap__dnstap__pack(&d, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

}  // namespace

DnstapEncoder::DnstapEncoder(const DnstapSpec& spec) {
  Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
  d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
  tail_ = packed(d);
  if (!spec.identity.empty()) d.has_identity = true, d.identity = bytes(spec.identity.data(), spec.identity.size());
  if (!spec.version.empty()) d.has_version = true, d.version = bytes(spec.version.data(), spec.version.size());
  head_ = packed(d);
  head_.resize(head_.size() - tail_.size());  // fields 1-2; field 15 comes last
}

size_t DnstapEncoder::message_size(int type, const DnstapEvent& e) const {
  Addr peer = addr_of(e.peer), local = addr_of(e.local);
  size_t n = uint_size(uint64_t(type)) + 2 + 2;  // type, socket_family, socket_protocol
  if (peer.len) n += bytes_size(peer.len);
  if (local.len) n += bytes_size(local.len);
  if (peer.len) n += uint_size(peer.port);
  if (local.len) n += uint_size(local.port);
  n += uint_size(uint64_t(e.query_time.tv_sec)) + 5;
  if (type == DNSTAP__MESSAGE__TYPE__AUTH_QUERY) return n + bytes_size(e.query.size());
  return n + uint_size(uint64_t(e.response_time.tv_sec)) + 5 + bytes_size(e.response.size());
}

DnstapEncoder::Size DnstapEncoder::size(int type, const DnstapEvent& e) const {
  size_t m = message_size(type, e), n = head_.size() + tail_.size() + bytes_size(m);
  return {e.extra.empty() ? n : n + bytes_size(e.extra.size()), m};
}

void DnstapEncoder::write(int type, const DnstapEvent& e, const Size& size, uint8_t* p) const {
  std::memcpy(p, head_.data(), head_.size());
  p += head_.size();
  if (!e.extra.empty()) p = put_bytes(p, 3, e.extra.data(), e.extra.size());
  *p++ = tag(14, kLength);
  p = put_varint(p, size.message);
  Addr peer = addr_of(e.peer), local = addr_of(e.local);
  p = put_uint(p, 1, uint64_t(type));
  p = put_uint(p, 2, (local.len ? local.v6 : peer.v6) ? DNSTAP__SOCKET_FAMILY__INET6 : DNSTAP__SOCKET_FAMILY__INET);
  p = put_uint(p, 3, e.tcp ? DNSTAP__SOCKET_PROTOCOL__TCP : DNSTAP__SOCKET_PROTOCOL__UDP);
  if (peer.len) p = put_bytes(p, 4, peer.bytes, peer.len);
  if (local.len) p = put_bytes(p, 5, local.bytes, local.len);
  if (peer.len) p = put_uint(p, 6, peer.port);
  if (local.len) p = put_uint(p, 7, local.port);
  p = put_uint(p, 8, uint64_t(e.query_time.tv_sec));
  p = put_fixed32(p, 9, uint32_t(e.query_time.tv_nsec));
  if (type == DNSTAP__MESSAGE__TYPE__AUTH_QUERY) {
    p = put_bytes(p, 10, e.query.data(), e.query.size());
  } else {
    p = put_uint(p, 12, uint64_t(e.response_time.tv_sec));
    p = put_fixed32(p, 13, uint32_t(e.response_time.tv_nsec));
    p = put_bytes(p, 14, e.response.data(), e.response.size());
  }
  std::memcpy(p, tail_.data(), tail_.size());
}

uint8_t* DnstapRing::take(size_t len) {
  // Each message is preceded by where it ends (the tail's next position),
  // and stays whole: one that would cross the end starts at the beginning.
  uint64_t need = (sizeof(uint64_t) + len + 7) & ~uint64_t(7), pos = head_;
  if (pos % kBytes + need > kBytes) pos += kBytes - pos % kBytes;
  if (need > kBytes / 4 || pos + need - tail_.load(std::memory_order_acquire) > kBytes) return nullptr;
  uint8_t* p = mem_.get() + pos % kBytes;
  uint64_t end = pos + need;
  std::memcpy(p, &end, sizeof end);
  undo_ = std::exchange(head_, end);
  return p + sizeof end;
}

void DnstapRing::give_back(void* buf, void* ring) {
  uint64_t end;
  std::memcpy(&end, static_cast<uint8_t*>(buf) - sizeof end, sizeof end);
  static_cast<DnstapRing*>(ring)->tail_.store(end, std::memory_order_release);
}

Result<std::shared_ptr<DnstapSink>> DnstapSink::open(const DnstapSpec& spec, unsigned queues) {
  std::shared_ptr<DnstapSink> s(new DnstapSink);
  s->spec_ = spec;
  if (s->spec_.identity.empty()) {  // as Knot and NSD: the host's name
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    s->spec_.identity = host;
  }
  if (s->spec_.version.empty()) s->spec_.version = "vane";
  s->encoder_ = std::make_unique<DnstapEncoder>(s->spec_);
  fstrm_writer_options* wopt = fstrm_writer_options_init();
  fstrm_writer_options_add_content_type(wopt, kContentType, sizeof kContentType - 1);
  fstrm_writer* w = nullptr;
  if (!spec.socket.empty()) {
    fstrm_unix_writer_options* u = fstrm_unix_writer_options_init();
    fstrm_unix_writer_options_set_socket_path(u, spec.socket.c_str());
    w = fstrm_unix_writer_init(u, wopt);
    fstrm_unix_writer_options_destroy(&u);
  } else if (!spec.file.empty()) {
    fstrm_file_options* f = fstrm_file_options_init();
    fstrm_file_options_set_file_path(f, spec.file.c_str());
    w = fstrm_file_writer_init(f, wopt);
    fstrm_file_options_destroy(&f);
  } else {
    std::string host = spec.tcp.substr(0, spec.tcp.rfind(':')), port = spec.tcp.substr(spec.tcp.rfind(':') + 1);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    fstrm_tcp_writer_options* t = fstrm_tcp_writer_options_init();
    fstrm_tcp_writer_options_set_socket_address(t, host.c_str());
    fstrm_tcp_writer_options_set_socket_port(t, port.c_str());
    w = fstrm_tcp_writer_init(t, wopt);
    fstrm_tcp_writer_options_destroy(&t);
  }
  fstrm_writer_options_destroy(&wopt);
  if (!w) return Error{"", 0, "dnstap: cannot set up a writer for " + spec.sink()};
  fstrm_iothr_options* io = fstrm_iothr_options_init();
  fstrm_iothr_options_set_num_input_queues(io, queues);
  fstrm_iothr_options_set_queue_model(io, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
  fstrm_iothr_options_set_input_queue_size(io, 8192);  // per DNS thread; a power of 2
  // The I/O thread is woken after 64 queued messages (or its 1 s tick), and
  // writes up to 64 KiB at a time: a wake-up and a write per dozens of
  // messages, not per message.
  fstrm_iothr_options_set_queue_notify_threshold(io, 64);
  fstrm_iothr_options_set_buffer_hint(io, 65536);
  fstrm_iothr_options_set_output_queue_size(io, 512);  // messages per write (its maximum)
  fstrm_iothr_options_set_reopen_interval(io, 1);     // seconds between reconnects
  fstrm_iothr_options_set_flush_timeout(io, 1);
  // The I/O thread runs at SCHED_IDLE: it writes when a core has nothing
  // better to do and never takes one from a DNS thread. At the default
  // policy, sharing a core with a worker, it held answers for whole time
  // slices (p99 at 40 000 q/s: 74 us without dnstap, 1.5 ms with). fstrm
  // starts it with the policy of the thread that asks: one set to idle.
  std::thread([&] {
    sched_param none{};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &none);
    s->iothr_ = fstrm_iothr_init(io, &w);
  }).join();
  fstrm_iothr_options_destroy(&io);
  if (!s->iothr_) {
    if (w) fstrm_writer_destroy(&w);
    return Error{"", 0, "dnstap: cannot start the I/O thread for " + spec.sink()};
  }
  s->nqueues_ = queues;
  s->rings_ = std::shared_ptr<std::unique_ptr<DnstapRing>[]>(new std::unique_ptr<DnstapRing>[queues]);
  for (unsigned i = 0; i < queues; ++i) s->rings_[i] = std::make_unique<DnstapRing>();
  s->queues_ = std::make_unique<fstrm_iothr_queue*[]>(queues);
  for (unsigned i = 0; i < queues; ++i) s->queues_[i] = fstrm_iothr_get_input_queue_idx(s->iothr_, i);
  return s;
}

DnstapSink::~DnstapSink() { close(std::chrono::milliseconds(200)); }

void DnstapSink::close(std::chrono::milliseconds wait) {
  fstrm_iothr* io = std::exchange(iothr_, nullptr);
  if (!io) return;
  // fstrm_iothr_destroy flushes what is queued, then joins its thread —
  // which never returns while a reader holds the connection without
  // reading. So it runs on a thread of its own, waited for `wait` at most.
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  std::thread([io, done, rings = rings_]() mutable {
    fstrm_iothr_destroy(&io);  // returns buffers into `rings` to the end
    done->set_value();
  }).detach();
  finished.wait_for(wait);
}

bool DnstapSink::submit(unsigned q, int type, const DnstapEvent& e) {
  DnstapEncoder::Size size = encoder_->size(type, e);
  size_t len = size.bytes;
  // fstrm takes its buffers whole and hands them back once written.
  DnstapRing* ring = rings_[q].get();
  uint8_t* buf = ring->take(len);
  if (!buf) return false;
  encoder_->write(type, e, size, buf);
  if (fstrm_iothr_submit(iothr_, queues_[q], buf, len, DnstapRing::give_back, ring) != fstrm_res_success) {
    ring->untake();
    return false;
  }
  return true;
}

unsigned DnstapSink::log(unsigned q, const DnstapEvent& e, uint64_t& dropped) {
  if (q >= nqueues_) return 0;
  unsigned sent = 0;
  for (int type : {int(DNSTAP__MESSAGE__TYPE__AUTH_QUERY), int(DNSTAP__MESSAGE__TYPE__AUTH_RESPONSE)}) {
    if (type == DNSTAP__MESSAGE__TYPE__AUTH_QUERY ? !spec_.log_queries : !spec_.log_responses) continue;
    if (submit(q, type, e)) {
      ++sent;
    } else {
      ++dropped;
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return sent;
}

}  // namespace vane::server
