#include "dnstap.h"

#include <fstrm.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
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
bool addr_of(const sockaddr_storage* ss, ProtobufCBinaryData& addr, uint32_t& port, bool& v6) {
  if (!ss) return false;
  if (ss->ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(ss);
    addr = bytes(&a->sin_addr, 4);
    port = ntohs(a->sin_port);
    v6 = false;
    return true;
  }
  if (ss->ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(ss);
    addr = bytes(&a->sin6_addr, 16);
    port = ntohs(a->sin6_port);
    v6 = true;
    return true;
  }
  return false;
}

}  // namespace

DnstapSink::Pool::Pool() {
  for (uint32_t i = 0; i < kSlots; ++i) ring[i].store(i, std::memory_order_relaxed);
  tail.store(kSlots, std::memory_order_release);
}

uint8_t* DnstapSink::Pool::take() {
  uint64_t h = head.load(std::memory_order_relaxed);
  if (h == tail.load(std::memory_order_acquire)) return nullptr;  // all in flight
  uint32_t slot = ring[h % kSlots].load(std::memory_order_relaxed);
  head.store(h + 1, std::memory_order_release);
  return mem.get() + size_t(slot) * kSlotSize;
}

void DnstapSink::Pool::give_back(void* buf, void* pool) {  // the I/O thread
  auto* p = static_cast<Pool*>(pool);
  uint64_t t = p->tail.load(std::memory_order_relaxed);
  p->ring[t % kSlots].store(uint32_t((static_cast<uint8_t*>(buf) - p->mem.get()) / kSlotSize), std::memory_order_relaxed);
  p->tail.store(t + 1, std::memory_order_release);
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
  fstrm_iothr_options_set_input_queue_size(io, 2048);  // per DNS thread; a power of 2
  // The I/O thread is woken after 64 queued messages (or its 1 s tick), and
  // writes up to 64 KiB at a time: a wake-up and a write per dozens of
  // messages, not per message.
  fstrm_iothr_options_set_queue_notify_threshold(io, 64);
  fstrm_iothr_options_set_buffer_hint(io, 65536);
  fstrm_iothr_options_set_reopen_interval(io, 1);     // seconds between reconnects
  fstrm_iothr_options_set_flush_timeout(io, 1);
  s->iothr_ = fstrm_iothr_init(io, &w);
  fstrm_iothr_options_destroy(&io);
  if (!s->iothr_) {
    if (w) fstrm_writer_destroy(&w);
    return Error{"", 0, "dnstap: cannot start the I/O thread for " + spec.sink()};
  }
  s->nqueues_ = queues;
  s->pools_ = std::shared_ptr<std::unique_ptr<Pool>[]>(new std::unique_ptr<Pool>[queues]);
  for (unsigned i = 0; i < queues; ++i) s->pools_[i] = std::make_unique<Pool>();
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
  std::thread([io, done, pools = pools_]() mutable {
    fstrm_iothr_destroy(&io);  // returns buffers into `pools` to the end
    done->set_value();
  }).detach();
  finished.wait_for(wait);
}

bool DnstapSink::submit(unsigned q, int type, const DnstapEvent& e) {
  Dnstap__Message m = DNSTAP__MESSAGE__INIT;
  m.type = Dnstap__Message__Type(type);
  bool v6 = false;
  m.has_socket_protocol = true;
  m.socket_protocol = e.tcp ? DNSTAP__SOCKET_PROTOCOL__TCP : DNSTAP__SOCKET_PROTOCOL__UDP;
  if (addr_of(e.peer, m.query_address, m.query_port, v6)) m.has_query_address = m.has_query_port = true;
  if (addr_of(e.local, m.response_address, m.response_port, v6)) m.has_response_address = m.has_response_port = true;
  m.has_socket_family = true;
  m.socket_family = v6 ? DNSTAP__SOCKET_FAMILY__INET6 : DNSTAP__SOCKET_FAMILY__INET;
  m.has_query_time_sec = m.has_query_time_nsec = true;
  m.query_time_sec = uint64_t(e.query_time.tv_sec);
  m.query_time_nsec = uint32_t(e.query_time.tv_nsec);
  if (type == DNSTAP__MESSAGE__TYPE__AUTH_QUERY) {
    m.has_query_message = true;
    m.query_message = bytes(e.query.data(), e.query.size());
  } else {
    m.has_response_time_sec = m.has_response_time_nsec = true;
    m.response_time_sec = uint64_t(e.response_time.tv_sec);
    m.response_time_nsec = uint32_t(e.response_time.tv_nsec);
    m.has_response_message = true;
    m.response_message = bytes(e.response.data(), e.response.size());
  }
  Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
  d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
  d.message = &m;
  if (!spec_.identity.empty()) d.has_identity = true, d.identity = bytes(spec_.identity.data(), spec_.identity.size());
  if (!spec_.version.empty()) d.has_version = true, d.version = bytes(spec_.version.data(), spec_.version.size());
  if (!e.extra.empty()) d.has_extra = true, d.extra = bytes(e.extra.data(), e.extra.size());
  size_t len = dnstap__dnstap__get_packed_size(&d);
  // fstrm takes its buffers whole and hands them back once written.
  Pool* pool = pools_[q].get();
  uint8_t* buf = len <= Pool::kSlotSize ? pool->take() : nullptr;
  bool pooled = buf != nullptr;
  if (!buf && !(buf = static_cast<uint8_t*>(malloc(len)))) return false;
  dnstap__dnstap__pack(&d, buf);
  if (fstrm_iothr_submit(iothr_, queues_[q], buf, len, pooled ? Pool::give_back : fstrm_free_wrapper,
                         pooled ? pool : nullptr) != fstrm_res_success) {
    if (pooled)  // not taken by fstrm: un-take it (the ring's slot still holds its index)
      pool->head.store(pool->head.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    else
      free(buf);
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
