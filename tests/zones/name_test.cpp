// Wire-name parsing: compression, hostile pointers, limits, text round trips.
#include "dns/name.h"

#include <gtest/gtest.h>

#include <vector>

namespace vane::dns {
namespace {

std::vector<uint8_t> header() { return std::vector<uint8_t>(12, 0); }

TEST(ReadName, PlainName_IsLowercasedWithLabelOffsets) {
  auto p = header();
  p.insert(p.end(), {3, 'W', 'w', 'W', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0});
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), p.size());
  EXPECT_EQ(to_text(n.wire()), "www.example.com.");
  EXPECT_EQ(n.labels, 3);
  EXPECT_EQ(to_text(n.suffix(1)), "example.com.");
  EXPECT_EQ(to_text(n.suffix(3)), ".");
}

TEST(ReadName, CompressionPointer_IsFollowedBackwards) {
  auto p = header();
  p.insert(p.end(), {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0});  // at 12
  size_t at = p.size();
  p.insert(p.end(), {3, 'w', 'w', 'w', 0xC0, 12});
  NameBuf n;
  EXPECT_EQ(read_name(p, at, n), at + 6);
  EXPECT_EQ(to_text(n.wire()), "www.example.com.");
}

TEST(ReadName, PointerLoop_IsRejected) {
  auto p = header();
  p.insert(p.end(), {1, 'a', 0xC0, 12});  // a. -> itself
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(ReadName, ForwardPointer_IsRejected) {
  auto p = header();
  p.insert(p.end(), {0xC0, 14, 1, 'a', 0});
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(ReadName, PointerIntoHeader_IsRejected) {
  auto p = header();
  p.insert(p.end(), {1, 'a', 0xC0, 0});  // header byte 0 happens to be 0 (root)
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(ReadName, PointerPastEnd_IsRejected) {
  auto p = header();
  p.insert(p.end(), {0xC0});
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(ReadName, TruncatedLabel_IsRejected) {
  auto p = header();
  p.insert(p.end(), {5, 'a', 'b'});
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(ReadName, NameOver255Bytes_IsRejected) {
  auto p = header();
  for (int i = 0; i < 5; ++i) {
    p.push_back(63);
    p.insert(p.end(), 63, 'x');
  }
  p.push_back(0);
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(ReadName, MaximalName_Of255BytesIsAccepted) {
  auto p = header();
  for (int i = 0; i < 3; ++i) {
    p.push_back(63);
    p.insert(p.end(), 63, 'x');
  }
  p.push_back(61);
  p.insert(p.end(), 61, 'y');
  p.push_back(0);  // 3*64 + 62 + 1 = 255
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), p.size());
  EXPECT_EQ(n.len, 255);
}

TEST(ReadName, ExtendedLabelType_IsRejected) {
  auto p = header();
  p.insert(p.end(), {0x41, 'a', 0});
  NameBuf n;
  EXPECT_EQ(read_name(p, 12, n), 0u);
}

TEST(FromText, EscapesAndTrailingDot) {
  NameBuf n;
  ASSERT_TRUE(from_text("a\\.b.Example.COM.", n));
  EXPECT_EQ(n.labels, 3);
  EXPECT_EQ(n.data[0], 3);
  EXPECT_EQ(to_text(n.wire()), "a\\.b.example.com.");
  ASSERT_TRUE(from_text("\\065.test", n));
  EXPECT_EQ(to_text(n.wire()), "a.test.");
  EXPECT_FALSE(from_text("a..b", n));
  EXPECT_FALSE(from_text(std::string(64, 'x') + ".test", n));
}

TEST(Subdomain, ComparesWholeLabels) {
  NameBuf a, b, c;
  from_text("www.example.com", a);
  from_text("example.com", b);
  from_text("ample.com", c);
  EXPECT_TRUE(is_subdomain(a.wire(), b.wire()));
  EXPECT_TRUE(is_subdomain(b.wire(), b.wire()));
  EXPECT_FALSE(is_subdomain(b.wire(), a.wire()));
  EXPECT_FALSE(is_subdomain(b.wire(), c.wire()));
}

TEST(HashName, EqualNamesHashEqual) {
  NameBuf a, b;
  from_text("WWW.example.com", a);
  from_text("www.EXAMPLE.com", b);
  EXPECT_EQ(hash_name(a.wire()), hash_name(b.wire()));
}

}  // namespace
}  // namespace vane::dns
