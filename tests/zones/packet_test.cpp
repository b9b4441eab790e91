// Query parsing against well-formed and hostile packets, and the writer's
// name compression.
#include "dns/packet.h"

#include <gtest/gtest.h>

#include <vector>

namespace vane::dns {
namespace {

std::vector<uint8_t> query(uint16_t qd = 1, uint16_t an = 0, uint16_t ns = 0, uint16_t ar = 0) {
  std::vector<uint8_t> p{0xAB, 0xCD, 0x01, 0x00, uint8_t(qd >> 8), uint8_t(qd), uint8_t(an >> 8), uint8_t(an),
                         uint8_t(ns >> 8), uint8_t(ns), uint8_t(ar >> 8), uint8_t(ar)};
  if (qd) p.insert(p.end(), {3, 'w', 'w', 'w', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1});
  return p;
}

void add_opt(std::vector<uint8_t>& p, uint16_t size, uint8_t version, bool do_bit, std::vector<uint8_t> rdata = {}) {
  p.insert(p.end(), {0, 0, 41, uint8_t(size >> 8), uint8_t(size), 0, version, uint8_t(do_bit ? 0x80 : 0), 0,
                     uint8_t(rdata.size() >> 8), uint8_t(rdata.size())});
  p.insert(p.end(), rdata.begin(), rdata.end());
}

TEST(ParseQuery, SimpleQuery) {
  auto p = query();
  Query q;
  ASSERT_EQ(parse_query(p, q), ParseStatus::kOk);
  EXPECT_EQ(q.id, 0xABCD);
  EXPECT_EQ(q.qtype, kTypeA);
  EXPECT_EQ(q.qclass, kClassIN);
  EXPECT_EQ(to_text(q.qname.wire()), "www.test.");
  EXPECT_FALSE(q.edns);
  EXPECT_EQ(q.question_end, p.size());
}

TEST(ParseQuery, Edns_FieldsAreRead) {
  auto p = query(1, 0, 0, 1);
  add_opt(p, 4096, 0, true, {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8});  // a cookie option
  Query q;
  ASSERT_EQ(parse_query(p, q), ParseStatus::kOk);
  EXPECT_TRUE(q.edns);
  EXPECT_EQ(q.edns_udp_size, 4096);
  EXPECT_TRUE(q.edns_do);
  EXPECT_EQ(q.edns_version, 0);
}

TEST(ParseQuery, Edns_OptionOverrunningRdataIsFormErr) {
  auto p = query(1, 0, 0, 1);
  add_opt(p, 1232, 0, false, {0, 8, 0, 20, 1, 2});
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kFormErr);
}

TEST(ParseQuery, Edns_TwoOptsIsFormErr) {
  auto p = query(1, 0, 0, 2);
  add_opt(p, 1232, 0, false);
  add_opt(p, 1232, 0, false);
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kFormErr);
}

TEST(ParseQuery, Edns_OptNotAtRootIsFormErr) {
  auto p = query(1, 0, 0, 1);
  p.insert(p.end(), {1, 'x', 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0});
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kFormErr);
}

TEST(ParseQuery, ResponseIsDropped) {
  auto p = query();
  p[2] |= 0x80;
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kDrop);
}

TEST(ParseQuery, ShortHeaderIsDropped) {
  std::vector<uint8_t> p{1, 2, 3};
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kDrop);
}

TEST(ParseQuery, BogusCountsAreFormErr) {
  auto p = query(1, 0xFFFF, 0xFFFF, 0xFFFF);
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kFormErr);
  EXPECT_TRUE(q.has_question);  // echoed in the FORMERR
}

TEST(ParseQuery, NoQuestionIsFormErr) {
  auto p = query(0);
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kFormErr);
  EXPECT_FALSE(q.has_question);
}

TEST(ParseQuery, TruncatedQuestionIsFormErr) {
  auto p = query();
  p.resize(p.size() - 3);
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kFormErr);
}

TEST(ParseQuery, OtherOpcodeIsNotImp) {
  auto p = query();
  p[2] = 0x20;  // opcode 4 (NOTIFY)
  Query q;
  EXPECT_EQ(parse_query(p, q), ParseStatus::kNotImp);
}

TEST(ParseQuery, EveryTruncationOfAValidQueryIsHandled) {
  auto full = query(1, 0, 0, 1);
  add_opt(full, 1232, 0, false, {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8});
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> p(full.begin(), full.begin() + long(n));
    Query q;
    ParseStatus st = parse_query(p, q);
    EXPECT_NE(st, ParseStatus::kOk) << "length " << n;
  }
}

TEST(Writer, NamesAreCompressedAgainstTheQuestion) {
  uint8_t buf[512];
  Writer w(buf, sizeof buf);
  uint8_t hdr[12] = {};
  w.put_bytes(hdr, 12);
  const uint8_t q[] = {3, 'W', 'W', 'W', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  ASSERT_TRUE(w.put_question(q, sizeof q));
  size_t before = w.size();
  const uint8_t apex[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  ASSERT_TRUE(w.put_name(apex));
  EXPECT_EQ(w.size() - before, 2u);  // a pointer to "Example.com" in the question
  EXPECT_EQ(buf[before], 0xC0);
  EXPECT_EQ(buf[before + 1], 16);
  const uint8_t mail[] = {4, 'm', 'a', 'i', 'l', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  before = w.size();
  ASSERT_TRUE(w.put_name(mail));
  EXPECT_EQ(w.size() - before, 7u);  // "mail" + pointer
  before = w.size();
  ASSERT_TRUE(w.put_name(mail));
  EXPECT_EQ(w.size() - before, 2u);  // now all of it is known
}

TEST(Writer, FullBufferWritesNothing) {
  uint8_t buf[20];
  Writer w(buf, sizeof buf);
  const uint8_t name[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  ASSERT_TRUE(w.put_name(name));
  size_t at = w.size();
  const uint8_t other[] = {5, 'o', 't', 'h', 'e', 'r', 4, 't', 'e', 's', 't', 0};
  EXPECT_FALSE(w.put_name(other));
  EXPECT_EQ(w.size(), at);
}

}  // namespace
}  // namespace vane::dns
