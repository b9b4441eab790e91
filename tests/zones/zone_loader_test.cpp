// Master-file loading: directives, names, error locations, compiled structure.
#include "zone_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "process.h"

namespace vane::zones {
namespace {

Result<std::unique_ptr<Zone>> load_text(const std::string& origin, const std::string& text) {
  return load_zone(ZoneSource{origin, "test.zone", text, {}});
}

const char* kSoa = "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 120\n";

uint32_t find(const Zone& z, const char* name) {
  dns::NameBuf n;
  dns::from_text(name, n);
  return z.find(n.wire());
}

TEST(ZoneLoader, RelativeNamesOriginAndTtl) {
  auto z = load_text("example.com", std::string("$TTL 99\n") + kSoa +
                                        "www IN A 192.0.2.1\n"
                                        "$ORIGIN sub\n"
                                        "host 60 IN A 192.0.2.2\n"
                                        "     IN AAAA 2001:db8::2\n"  // blank owner: previous
                                        "full.example.com. IN A 192.0.2.3\n");
  ASSERT_TRUE(z) << z.error().to_string();
  const Zone& zone = **z;
  EXPECT_EQ(zone.serial(), 1u);
  EXPECT_EQ(zone.negative_ttl(), 120u);
  EXPECT_EQ(zone.record_count(), 5u);
  uint32_t www = find(zone, "www.example.com");
  ASSERT_NE(www, kNone);
  EXPECT_EQ(zone.find_rrset(www, dns::kTypeA)->ttl, 99u);
  uint32_t host = find(zone, "host.sub.example.com");
  ASSERT_NE(host, kNone);
  EXPECT_EQ(zone.rrsets(host).size(), 2u);
  EXPECT_NE(find(zone, "full.example.com"), kNone);
  // sub.example.com exists only as an empty non-terminal.
  uint32_t sub = find(zone, "sub.example.com");
  ASSERT_NE(sub, kNone);
  EXPECT_TRUE(zone.node(sub).flags & kNodeEmpty);
}

TEST(ZoneLoader, DuplicateRecordsFormOneSet) {
  auto z = load_text("example.com", std::string(kSoa) + "a IN A 192.0.2.1\na IN A 192.0.2.1\na IN A 192.0.2.2\n");
  ASSERT_TRUE(z);
  EXPECT_EQ((*z)->find_rrset(find(**z, "a.example.com"), dns::kTypeA)->count, 2);
}

// Found by fuzz_zone (UBSan: memcmp with a null pointer): records with empty
// rdata, repeated, before any other rdata is stored.
TEST(ZoneLoader, EmptyRdataRecords_AreComparedSafelyAndDeduplicated) {
  auto z = load_text("example.com", "x IN TYPE65400 \\# 0\nx IN TYPE65400 \\# 0\n" + std::string(kSoa));
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_EQ((*z)->find_rrset(find(**z, "x.example.com"), 65400)->count, 1);
}

// Found by fuzz_zone: a directive shorter than its keyword ("$I") was read
// past the end of the record (the argument started at line + 8).
TEST(ZoneLoader, ShortDirectives_AreUnknownNotReadPastTheirEnd) {
  for (const char* d : {"$I", "$O", "$T", "$", "$INCLUD x", "$ORIGINexample.net."}) {
    auto z = load_text("example.com", std::string(kSoa) + d + "\n");
    ASSERT_FALSE(z) << d;
    EXPECT_NE(z.error().message.find("unknown directive"), std::string::npos) << z.error().message;
  }
  auto z = load_text("example.com", std::string("$ORIGIN\texample.com.\n$TTL 60\n") + kSoa);
  EXPECT_TRUE(z) << z.error().to_string();
}

TEST(ZoneLoader, DnameScope_MarksTheOwnerAndWhatIsBelowIt) {
  auto z = load_text("example.com", std::string(kSoa) + "old IN DNAME new\nnew IN A 192.0.2.1\n");
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_TRUE((*z)->node(find(**z, "old.example.com")).flags & kNodeDnameScope);
  EXPECT_FALSE((*z)->node(find(**z, "new.example.com")).flags & kNodeDnameScope);
  dns::NameBuf q;
  dns::from_text("a.b.old.example.com", q);
  EXPECT_EQ((*z)->dname_above(q, find(**z, "old.example.com")), find(**z, "old.example.com"));
  dns::from_text("old.example.com", q);  // the owner itself is not rewritten
  EXPECT_EQ((*z)->dname_above(q, find(**z, "old.example.com")), kNone);
}

TEST(ZoneLoader, DelegationMarksCutsForNodesBelow) {
  auto z = load_text("example.com", std::string(kSoa) + "@ IN NS ns\nchild IN NS ns.child\nns.child IN A 192.0.2.9\n");
  ASSERT_TRUE(z);
  uint32_t child = find(**z, "child.example.com");
  EXPECT_TRUE((*z)->node(child).flags & kNodeDelegation);
  EXPECT_EQ((*z)->node(find(**z, "ns.child.example.com")).cut, child);
  EXPECT_EQ((*z)->node((*z)->apex()).cut, kNone);  // apex NS is not a cut
}

TEST(ZoneLoader, WildcardParentIsFlagged) {
  auto z = load_text("example.com", std::string(kSoa) + "*.w IN A 192.0.2.1\n");
  ASSERT_TRUE(z);
  uint32_t w = find(**z, "w.example.com");
  ASSERT_NE(w, kNone);
  EXPECT_NE((*z)->wildcard_of(w), kNone);
}

TEST(ZoneLoader, SyntaxError_NamesFileAndLine) {
  auto z = load_text("example.com", std::string(kSoa) + "\n; comment\nbad IN A not-an-address\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().file, "test.zone");
  EXPECT_EQ(z.error().line, 4);
}

TEST(ZoneLoader, MultiLineRecord_ErrorAfterItHasTheRightLine) {
  auto z = load_text("example.com", "@ IN SOA ns hostmaster (\n 1 3600\n 600 86400\n 120 )\nx IN BOGUS 1\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 5);
}

TEST(ZoneLoader, CommentAfterClosingParenthesis_EndsTheRecord) {
  auto z = load_text("example.com",
                     "@ IN SOA ns hostmaster ( ; serial below\n 1 ; serial\n 3600 600 86400 120 ) ; end\n"
                     "@ IN NS ns ; trailing\n"
                     "ns IN A 192.0.2.53\n");
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_NE(find(**z, "ns.example.com"), kNone);
}

TEST(ZoneLoader, QuotedSemicolonAndEscapes_ReachLdnsIntact) {
  auto z = load_text("example.com", std::string(kSoa) + "t IN TXT \"a;b (c)\" \"d\\\"e\"\nx\\.y IN A 192.0.2.1\n");
  ASSERT_TRUE(z) << z.error().to_string();
  uint32_t t = find(**z, "t.example.com");
  ASSERT_NE(t, kNone);
  const RRset* rs = (*z)->find_rrset(t, 16);
  ASSERT_NE(rs, nullptr);
  const uint8_t* rd = (*z)->rdata(*rs);
  // <len>a;b (c)<len>d"e
  std::string wire(reinterpret_cast<const char*>(rd) + 2, dns::get16(rd));
  EXPECT_EQ(wire, std::string("\x07"
                              "a;b (c)"
                              "\x03"
                              "d\"e"));
  dns::NameBuf n;
  ASSERT_TRUE(dns::from_text("x\\.y.example.com.", n));
  EXPECT_NE((*z)->find(n.wire()), kNone);
}

TEST(ZoneLoader, UnbalancedParenthesis_NamesTheLineItOpens) {
  auto z = load_text("example.com", std::string(kSoa) + "\nx IN TXT ( \"a\"\n \"b\"\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 3);
  EXPECT_NE(z.error().message.find("parenthesis"), std::string::npos);
}

TEST(ZoneLoader, UnterminatedQuote_IsAnErrorOnItsLine) {
  auto z = load_text("example.com", std::string(kSoa) + "x IN TXT \"abc\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 2);
}

TEST(ZoneLoader, OutOfZoneRecord_IsAnError) {
  auto z = load_text("example.com", std::string(kSoa) + "www.example.org. IN A 192.0.2.1\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 2);
  EXPECT_NE(z.error().message.find("outside the zone"), std::string::npos);
}

TEST(ZoneLoader, CnameBesideOtherData_IsAnError) {
  auto z = load_text("example.com", std::string(kSoa) + "a IN A 192.0.2.1\na IN CNAME b\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 3);
  EXPECT_NE(z.error().message.find("CNAME and other data"), std::string::npos);
}

TEST(ZoneLoader, MissingSoa_IsAnError) {
  auto z = load_text("example.com", "www IN A 192.0.2.1\n");
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message.find("no SOA"), std::string::npos);
}

TEST(ZoneLoader, SoaBelowApex_IsAnError) {
  auto z = load_text("example.com", std::string(kSoa) + "x IN SOA ns hostmaster 1 2 3 4 5\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 2);
}

TEST(ZoneLoader, NonInClass_IsAnError) {
  auto z = load_text("example.com", std::string(kSoa) + "x CH TXT \"hi\"\n");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 2);
}

TEST(ZoneLoader, UnknownTypeInRfc3597Form_IsKept) {
  auto z = load_text("example.com", std::string(kSoa) + "x IN TYPE65400 \\# 3 010203\n");
  ASSERT_TRUE(z) << z.error().to_string();
  const RRset* rs = (*z)->find_rrset(find(**z, "x.example.com"), 65400);
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(dns::get16((*z)->rdata(*rs)), 3);
}

TEST(ZoneLoader, Include_IsRelativeToTheIncludingFileAndRestoresOrigin) {
  test::TempDir dir;
  dir.write("inc/part.zone", "host IN A 192.0.2.7\n");
  std::string main = dir.write(
      "main.zone", std::string(kSoa) + "$INCLUDE inc/part.zone sub.example.com.\n" + "after IN A 192.0.2.8\n");
  auto z = load_zone(ZoneSource{"example.com", main, "", {}});
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_NE(find(**z, "host.sub.example.com"), kNone);
  EXPECT_NE(find(**z, "after.example.com"), kNone);
}

TEST(ZoneLoader, IncludeError_NamesTheIncludedFile) {
  test::TempDir dir;
  std::string part = dir.write("part.zone", "ok IN A 192.0.2.7\nbroken IN A x\n");
  std::string main = dir.write("main.zone", std::string(kSoa) + "$INCLUDE part.zone\n");
  auto z = load_zone(ZoneSource{"example.com", main, "", {}});
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().file, part);
  EXPECT_EQ(z.error().line, 2);
}

TEST(ZoneLoader, IncludeLoop_IsAnError) {
  test::TempDir dir;
  std::string main = dir.write("main.zone", std::string(kSoa) + "$INCLUDE main.zone\n");
  auto z = load_zone(ZoneSource{"example.com", main, "", {}});
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().message.find("nested too deeply"), std::string::npos);
}

TEST(ZoneLoader, MissingFile_IsAnError) {
  auto z = load_zone(ZoneSource{"example.com", "/nonexistent/zone", "", {}});
  ASSERT_FALSE(z);
  EXPECT_NE(z.error().to_string().find("/nonexistent/zone: cannot open"), std::string::npos);
}

TEST(ZoneLoader, ManyRecords_AllFindable) {
  std::string text = kSoa;
  for (int i = 0; i < 20000; ++i)
    text +=
        "h" + std::to_string(i) + " IN A 10.0." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + "\n";
  auto z = load_text("example.com", text);
  ASSERT_TRUE(z);
  EXPECT_EQ((*z)->record_count(), 20001u);
  for (int i = 0; i < 20000; i += 997) {
    std::string n = "h" + std::to_string(i) + ".example.com";
    EXPECT_NE(find(**z, n.c_str()), kNone) << n;
  }
  EXPECT_EQ(find(**z, "h20000.example.com"), kNone);
}

// Every node with its RRsets, in a canonical text form (names sorted).
std::string dump(const Zone& z) {
  std::vector<std::string> lines;
  for (uint32_t id = 0; id < z.node_count(); ++id) {
    std::string l = dns::to_text(z.name_of(id)) + " flags=" + std::to_string(z.node(id).flags);
    for (const RRset& rs : z.rrsets(id)) {
      l += " | " + std::to_string(rs.type) + " ttl=" + std::to_string(rs.ttl) + " n=" + std::to_string(rs.count) + " ";
      if (!rs.steered)
        for (uint32_t i = 0; i < rs.rdata_size; ++i) l += std::to_string(z.rdata(rs)[i]) + ",";
    }
    lines.push_back(l);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The parallel parse: chunks of any size give the zone one chunk gives.
// Blank owners take the owner of the last named record even across a
// chunk's start; $ORIGIN, $TTL and $INCLUDE apply in file order.
TEST(ZoneLoader, ChunkedParse_GivesTheSameZoneForEveryChunkSize) {
  test::TempDir dir;
  dir.write("part.zone", "  IN TXT \"blank first in an include\"\ninc IN A 192.0.2.50\n   IN AAAA 2001:db8::50\n");
  std::string text = std::string("$TTL 100\n") + kSoa +
                     "@ IN NS ns\nns IN A 192.0.2.1\n"
                     "a IN A 192.0.2.2\n  IN A 192.0.2.3\n\tIN MX 10 mail\n"
                     "$TTL 200\n  IN TXT \"still a, after a directive\"\n"
                     "$ORIGIN sub.example.com.\n  IN AAAA 2001:db8::1\n"
                     "b IN CNAME target\nc 50 IN A 192.0.2.4\n  IN TXT \"c's\"\n"
                     "$INCLUDE part.zone inc.example.com.\n"
                     "  IN TXT \"after the include: owner from it\"\n"
                     "$ORIGIN example.com.\n@ IN TXT apex\n  IN MX 20 mail\n"
                     "d IN TXT ( \"multi\"\n  \"line\" )\n";
  for (int i = 0; i < 40; ++i) text += (i % 3 ? "  IN TXT t" : "n" + std::to_string(i) + " IN A 192.0.2.9\n  IN TXT t") + std::to_string(i) + "\n";
  std::string file = dir.write("main.zone", text);
  auto one = load_zone(ZoneSource{"example.com", file, "", {}});
  ASSERT_TRUE(one) << one.error().to_string();
  std::string want = dump(**one);
  EXPECT_NE(find(**one, "c.sub.example.com"), kNone);
  EXPECT_NE(find(**one, "inc.inc.example.com"), kNone);
  for (size_t chunk : {1, 2, 3, 5, 7, 64}) {
    ZoneSource src{"example.com", file, "", {}};
    src.parse_chunk = chunk;
    auto z = load_zone(src);
    ASSERT_TRUE(z) << "chunk " << chunk << ": " << z.error().to_string();
    EXPECT_EQ(dump(**z), want) << "chunk " << chunk;
  }
}

// A file under 64 KiB is read into memory, not mapped: the pages of text
// already merged are not released there (that would zero them), so a chunk
// whose first record has a blank owner pages back in an owner named kilobytes
// earlier.
TEST(ZoneLoader, ChunkedParse_AFileReadIntoMemory_KeepsAnOwnerNamedPagesBefore) {
  test::TempDir dir;
  std::string text = std::string("$TTL 100\n") + kSoa + "@ IN NS ns\nns IN A 192.0.2.1\n";
  for (int i = 0; i < 200; ++i) text += "n" + std::to_string(i) + " IN A 192.0.2.9\n";
  text += "a IN A 192.0.2.2\n";
  for (int i = 0; i < 600; ++i) text += "  IN TXT \"blank owner, line " + std::to_string(i) + "\"\n";
  ASSERT_GT(text.size(), 20000u);
  ASSERT_LT(text.size(), 60000u);
  std::string file = dir.write("main.zone", text);
  auto whole = load_zone(ZoneSource{"example.com", file, "", {}});
  ASSERT_TRUE(whole) << whole.error().to_string();
  std::string want = dump(**whole);
  for (size_t chunk : {5, 64}) {
    ZoneSource src{"example.com", file, "", {}};
    src.parse_chunk = chunk;
    auto z = load_zone(src);
    ASSERT_TRUE(z) << "chunk " << chunk << ": " << z.error().to_string();
    EXPECT_EQ(dump(**z), want) << "chunk " << chunk;
  }
}

// Errors keep their file:line whichever chunk or thread meets them, and the
// first by position is reported even when a later chunk fails first.
TEST(ZoneLoader, ChunkedParse_ReportsTheFirstErrorByPosition) {
  std::string text = kSoa;
  for (int i = 0; i < 30; ++i) text += "h" + std::to_string(i) + " IN A 192.0.2.1\n";
  text += "bad IN A not-an-address\n";                       // line 32
  for (int i = 0; i < 30; ++i) text += "x" + std::to_string(i) + " IN A 192.0.2.1\n";
  text += "other.example.net. IN A 192.0.2.1\nworse IN A x\n";  // lines 63, 64
  for (size_t chunk : {0, 1, 4, 31, 33}) {
    ZoneSource src{"example.com", "test.zone", text, {}};
    src.parse_chunk = chunk;
    auto z = load_zone(src);
    ASSERT_FALSE(z);
    EXPECT_EQ(z.error().line, 32) << "chunk " << chunk << ": " << z.error().to_string();
  }
  // Out-of-zone (found when merging) before a later syntax error.
  std::string text2 = std::string(kSoa) + "a.example.net. IN A 192.0.2.1\n" + "b IN A x\n";
  for (size_t chunk : {0, 1, 2}) {
    ZoneSource src{"example.com", "test.zone", text2, {}};
    src.parse_chunk = chunk;
    auto z = load_zone(src);
    ASSERT_FALSE(z);
    EXPECT_EQ(z.error().line, 2) << z.error().to_string();
    EXPECT_NE(z.error().message.find("outside the zone"), std::string::npos);
  }
  // A directive's error after bad records: the record comes first.
  std::string text3 = std::string(kSoa) + "b IN A x\n$ORIGIN bad..name\n";
  ZoneSource src{"example.com", "test.zone", text3, {}};
  src.parse_chunk = 1;
  auto z = load_zone(src);
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().line, 2);
}

// A small zone file that $INCLUDEs a large one: the helpers start when the
// first chunk fills, and the records after the include still count.
TEST(ZoneLoader, SmallFileIncludingALargeOne_IsParsedWhole) {
  test::TempDir d;
  std::string big;
  for (int i = 0; i < 40000; ++i) big += "h" + std::to_string(i) + " IN A 10.0." + std::to_string(i / 256 % 256) + "." +
                                         std::to_string(i % 256) + "\n";
  d.write("big.inc", big);
  std::string main = d.write("main.zone", std::string(kSoa) + "@ IN NS ns\nns IN A 192.0.2.1\n$INCLUDE big.inc\n"
                                                              "after IN A 192.0.2.2\nbad IN A\n");
  auto z = load_zone(ZoneSource{"example.com", main, "", {}});
  ASSERT_FALSE(z);  // the first error by position, after 40 000 included records
  EXPECT_EQ(z.error().line, 6) << z.error().to_string();
  d.write("main.zone", std::string(kSoa) + "@ IN NS ns\nns IN A 192.0.2.1\n$INCLUDE big.inc\nafter IN A 192.0.2.2\n");
  z = load_zone(ZoneSource{"example.com", main, "", {}});
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_EQ((*z)->record_count(), 40004u);
  EXPECT_NE(find(**z, "h39999.example.com"), kNone);
  EXPECT_NE(find(**z, "after.example.com"), kNone);
}

// A large zone in owner order, each owner's types out of order (TXT before
// A): the builder sorts each owner's records in place and gives back the
// pages of the pending list and rdata behind it (every 64k records) — no
// rdata may be lost on the way.
TEST(ZoneLoader, LargeZoneInOwnerOrder_TypesSortedPerOwner_NothingLostBehindTheRelease) {
  std::string text = std::string(kSoa) + "@ IN NS ns\nns IN A 192.0.2.1\n";
  const int n = 70000;
  for (int i = 0; i < n; ++i)
    text += "h" + std::to_string(i) + " IN TXT \"t" + std::to_string(i) + "\"\nh" + std::to_string(i) + " IN A 10." +
            std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + "\n";
  auto z = load_text("example.com", text);
  ASSERT_TRUE(z) << z.error().to_string();
  for (int i : {0, 1, 65535, 65536, 65537, 69999}) {
    dns::NameBuf nb;
    dns::from_text("h" + std::to_string(i) + ".example.com", nb);
    uint32_t id = (*z)->find(nb.wire());
    ASSERT_NE(id, kNone) << i;
    auto rrsets = (*z)->rrsets(id);
    ASSERT_EQ(rrsets.size(), 2u);
    EXPECT_EQ(rrsets[0].type, dns::kTypeA);
    const uint8_t* a = (*z)->rdata(rrsets[0]);
    EXPECT_EQ(dns::get16(a), 4);
    EXPECT_EQ(a[3], i / 65536);
    EXPECT_EQ(a[5], i % 256) << i;
    const uint8_t* t = (*z)->rdata(rrsets[1]);
    std::string want = "t" + std::to_string(i);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t + 3), t[2]), want) << i;
  }
}

}  // namespace
}  // namespace vane::zones
