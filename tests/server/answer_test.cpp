// answer() in-process: wire-level details the socket tests cannot see
// (header bits, size limits), and a deterministic fuzz loop that must never
// crash, overrun or emit an unparseable packet (run under ASan in CI).
#include "answer.h"

#include <gtest/gtest.h>

#include <random>

#include "dns_client.h"
#include "zone_loader.h"

namespace vane::server {
namespace {

class AnswerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::vector<std::unique_ptr<zones::Zone>> zs;
    for (auto [name, file] : {std::pair{"example.com", "example.com.zone"}, {"sub.example.com", "sub.example.com.zone"}}) {
      auto z = zones::load_zone({name, std::string(VANE_TEST_DATA) + "/" + file, "", {}});
      ASSERT_TRUE(z) << z.error().to_string();
      zs.push_back(z.take());
    }
    set_ = new zones::ZoneSet(std::move(zs));
  }
  static void TearDownTestSuite() { delete set_; }

  std::vector<uint8_t> run(const std::vector<uint8_t>& q, Transport t = Transport::kUdp, size_t cap = 65535) {
    std::vector<uint8_t> out(cap);
    size_t n = answer(*set_, q, out, t, AnswerOptions{}, ctx_);
    out.resize(n);
    return out;
  }

  static zones::ZoneSet* set_;
  QueryContext ctx_;
};
zones::ZoneSet* AnswerTest::set_;

TEST_F(AnswerTest, BadVers_PutsExtendedRcodeInOpt) {
  auto q = test::make_query("www.example.com", "A", {.edns = true, .edns_version = 3}, 1);
  auto r = run(q);
  ASSERT_GE(r.size(), 12u + 11u);
  EXPECT_EQ(r[3] & 0x0F, 0);          // lower 4 bits of 16 are zero
  EXPECT_EQ(r[r.size() - 6], 1);      // OPT extended rcode: 16 >> 4
  EXPECT_EQ(r[r.size() - 5], 0);      // we speak version 0
}

TEST_F(AnswerTest, DoBit_IsEchoed) {
  auto r = run(test::make_query("www.example.com", "A", {.edns = true, .do_bit = true}, 1));
  EXPECT_EQ(r[r.size() - 4] & 0x80, 0x80);
}

TEST_F(AnswerTest, TinyEdnsBuffer_IsRaisedTo512) {
  // RFC 6891 §6.2.5: values below 512 are treated as 512.
  auto r = run(test::make_query("example.com", "NS", {.edns = true, .udp_size = 100}, 1));
  EXPECT_GT(r.size(), 100u);
  EXPECT_FALSE(r[2] & 0x02);  // fits in 512: no TC
  r = run(test::make_query("big.example.com", "TXT", {.edns = true, .udp_size = 100}, 1));
  EXPECT_LE(r.size(), 512u);
  EXPECT_TRUE(r[2] & 0x02);
}

TEST_F(AnswerTest, UdpAnswers_NeverExceedTheNegotiatedSize) {
  for (const char* name : {"big.example.com", "example.com", "www.example.com", "deleg.example.com"}) {
    for (const char* type : {"TXT", "ANY", "NS", "A"}) {
      EXPECT_LE(run(test::make_query(name, type, {}, 1)).size(), 512u) << name << type;
      EXPECT_LE(run(test::make_query(name, type, {.edns = true, .udp_size = 1232}, 1)).size(), 1232u) << name << type;
    }
  }
}

TEST_F(AnswerTest, ResponseFlags_CopyRdAndCdOnly) {
  auto q = test::make_query("www.example.com", "A", {}, 7);
  q[2] |= 0x01;       // RD already set by make_query; make sure it stays
  q[3] |= 0x10 | 0x20;  // CD and AD in the query
  auto r = run(q);
  EXPECT_EQ(r[2] & 0x81, 0x81);  // QR, RD
  EXPECT_EQ(r[3] & 0x10, 0x10);  // CD copied
  EXPECT_EQ(r[3] & 0x20, 0);     // AD not set: we do not validate
  EXPECT_EQ(r[3] & 0x80, 0);     // RA never: authoritative only
}

TEST_F(AnswerTest, Fuzz_MutatedQueriesNeverBreakTheServer) {
  std::mt19937 rng(42);
  std::vector<std::vector<uint8_t>> seeds;
  for (const char* name : {"www.example.com", "x.wild.example.com", "alias2.example.com", "host.deleg.example.com"})
    for (const char* type : {"A", "ANY", "TXT", "DS"})
      seeds.push_back(test::make_query(name, type, {.edns = true}, 1));
  size_t answered = 0;
  for (int i = 0; i < 200000; ++i) {
    std::vector<uint8_t> p = seeds[rng() % seeds.size()];
    int flips = 1 + int(rng() % 8);
    for (int k = 0; k < flips; ++k) p[rng() % p.size()] = uint8_t(rng());
    if (rng() % 5 == 0) p.resize(rng() % (p.size() + 1));
    if (rng() % 7 == 0) p.insert(p.end(), rng() % 40, uint8_t(rng()));
    Transport t = rng() % 2 ? Transport::kUdp : Transport::kTcp;
    std::vector<uint8_t> out(t == Transport::kUdp ? 4096 : 65535);
    size_t n = answer(*set_, p, out, t, AnswerOptions{}, ctx_);
    ASSERT_LE(n, out.size());
    if (n == 0) continue;
    ++answered;
    out.resize(n);
    if (!test::parse_response(out)) {
      std::string hex;
      for (uint8_t b : p) hex += " " + std::to_string(b);
      std::string rhex;
      for (uint8_t b : out) rhex += " " + std::to_string(b);
      FAIL() << "unparseable response at iteration " << i << "\nquery:" << hex << "\nresponse:" << rhex;
    }
  }
  EXPECT_GT(answered, 100000u);
}

}  // namespace
}  // namespace vane::server
