// DnstapEncoder writes what protobuf-c's generic packer writes for the same
// message, byte for byte, and protobuf-c reads it back.
#include "dnstap.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "dnstap.pb-c.h"

namespace vane::server {
namespace {

ProtobufCBinaryData bytes(const void* p, size_t n) { return {n, static_cast<uint8_t*>(const_cast<void*>(p))}; }

// The message filled field by field and packed by protobuf-c.
std::vector<uint8_t> reference(const DnstapSpec& spec, int type, const DnstapEvent& e) {
  Dnstap__Message m = DNSTAP__MESSAGE__INIT;
  m.type = Dnstap__Message__Type(type);
  m.has_socket_protocol = true;
  m.socket_protocol = e.tcp ? DNSTAP__SOCKET_PROTOCOL__TCP : DNSTAP__SOCKET_PROTOCOL__UDP;
  bool v6 = false;
  auto fill = [&](const sockaddr_storage* ss, ProtobufCBinaryData& addr, protobuf_c_boolean& has_addr, uint32_t& port,
                  protobuf_c_boolean& has_port) {
    if (!ss) return;
    if (ss->ss_family == AF_INET) {
      auto* a = reinterpret_cast<const sockaddr_in*>(ss);
      addr = bytes(&a->sin_addr, 4), port = ntohs(a->sin_port), v6 = false;
    } else {
      auto* a = reinterpret_cast<const sockaddr_in6*>(ss);
      addr = bytes(&a->sin6_addr, 16), port = ntohs(a->sin6_port), v6 = true;
    }
    has_addr = has_port = true;
  };
  fill(e.peer, m.query_address, m.has_query_address, m.query_port, m.has_query_port);
  fill(e.local, m.response_address, m.has_response_address, m.response_port, m.has_response_port);
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
  if (!spec.identity.empty()) d.has_identity = true, d.identity = bytes(spec.identity.data(), spec.identity.size());
  if (!spec.version.empty()) d.has_version = true, d.version = bytes(spec.version.data(), spec.version.size());
  if (!e.extra.empty()) d.has_extra = true, d.extra = bytes(e.extra.data(), e.extra.size());
  std::vector<uint8_t> out(dnstap__dnstap__get_packed_size(&d));
  dnstap__dnstap__pack(&d, out.data());
  return out;
}

sockaddr_storage address(const char* ip, uint16_t port) {
  sockaddr_storage ss{};
  if (std::string_view(ip).find(':') == std::string_view::npos) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &a->sin6_addr);
  }
  return ss;
}

TEST(DnstapEncoder, SameBytesAsProtobufC) {
  std::mt19937 rng(7);
  const char* ips[] = {"192.0.2.1", "127.0.0.1", "2001:db8::53", "::ffff:198.51.100.7", "::1"};
  std::vector<DnstapSpec> specs(3);
  specs[0].identity = "ns1.example", specs[0].version = "vane";
  specs[1].identity = std::string(200, 'x');  // a two-byte length
  specs[2].version = "v";                     // no identity
  int checked = 0;
  for (const DnstapSpec& spec : specs) {
    DnstapEncoder enc(spec);
    for (int i = 0; i < 400; ++i) {
      sockaddr_storage peer = address(ips[rng() % 5], uint16_t(rng())), local = address(ips[rng() % 5], 53);
      std::vector<uint8_t> query(12 + rng() % 60), response(i % 7 == 0 ? 20000 + rng() % 40000 : 12 + rng() % 500);
      for (auto& b : query) b = uint8_t(rng());
      for (auto& b : response) b = uint8_t(rng());
      std::string extra(i % 3 == 0 ? 0 : rng() % 300, 'e');
      DnstapEvent e;
      e.tcp = i % 2;
      e.peer = i % 11 == 0 ? nullptr : &peer;
      e.local = i % 13 == 0 ? nullptr : &local;
      e.query = query;
      e.response = response;
      e.query_time = {time_t(i % 5 == 0 ? 0 : 1'700'000'000 + rng() % 100'000'000), long(rng() % 1'000'000'000)};
      e.response_time = {e.query_time.tv_sec + 1, long(rng() % 1'000'000'000)};
      e.extra = extra;
      for (int type : {1, 2}) {
        DnstapEncoder::Size size = enc.size(type, e);
        std::vector<uint8_t> want = reference(spec, type, e), got(size.bytes);
        ASSERT_EQ(got.size(), want.size()) << "message " << i << " type " << type;
        enc.write(type, e, size, got.data());
        ASSERT_EQ(got, want) << "message " << i << " type " << type;
        Dnstap__Dnstap* d = dnstap__dnstap__unpack(nullptr, got.size(), got.data());
        ASSERT_NE(d, nullptr);
        ASSERT_NE(d->message, nullptr);
        EXPECT_EQ(int(d->message->type), type);
        dnstap__dnstap__free_unpacked(d, nullptr);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 2400);
}

// The ring hands out whole buffers that never overlap one still in flight,
// refuses when full, and frees in the order it gave.
TEST(DnstapRing, BuffersNeverOverlapWhatIsInFlight) {
  DnstapRing ring;
  std::mt19937 rng(3);
  struct Taken {
    uint8_t* p;
    size_t len;
    uint8_t fill;
  };
  std::vector<Taken> flight;  // oldest first
  size_t head = 0, refused = 0, given = 0;
  for (int i = 0; i < 200'000; ++i) {
    // The I/O thread writes the oldest — or stalls (a slow reader) for a while.
    const bool stalled = i / 20'000 % 2 == 0;
    if (!stalled && flight.size() - head > 0 && rng() % 2 == 0) {
      for (int k = rng() % 64; k >= 0 && head < flight.size(); --k, ++head) {
        const Taken& t = flight[head];
        for (size_t j = 0; j < t.len; ++j) ASSERT_EQ(t.p[j], t.fill) << "overwritten while in flight";
        DnstapRing::give_back(t.p, &ring);
      }
      continue;
    }
    size_t len = i % 500 == 0 ? 65535 : 40 + rng() % 400;
    uint8_t* p = ring.take(len);
    if (!p) {
      ++refused;
      ASSERT_GT(flight.size() - head, 0u) << "refused with nothing in flight";
      continue;
    }
    uint8_t fill = uint8_t(rng());
    std::memset(p, fill, len);
    flight.push_back({p, len, fill});
    ++given;
  }
  EXPECT_GT(refused, 0u);  // it did fill up
  EXPECT_GT(given, 100'000u);
  uint8_t* p = ring.take(100);  // taken back after a refusal by fstrm
  ASSERT_NE(p, nullptr);
  ring.untake();
  EXPECT_EQ(ring.take(100), p);
}

}  // namespace
}  // namespace vane::server
