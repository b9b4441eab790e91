// DNS semantics of DESIGN.md, one test per rule, against the real vaned over
// UDP and TCP on 127.0.0.1. Each test asserts the whole response.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "dns_client.h"
#include "process.h"

namespace vane::test {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Semantics : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    vaned_ = nullptr;
    for (const char* f : {"example.com.zone", "included.zone", "sub.example.com.zone"})
      dir_->write(f, slurp(std::string(VANE_TEST_DATA) + "/" + f));
    try {
      vaned_ = new Vaned(*dir_, R"(
listen: ["127.0.0.1:0", "[::1]:0"]
threads: 2
zones:
  - { name: example.com, file: example.com.zone }
  - { name: sub.example.com, file: sub.example.com.zone }
)");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  // A vaned that failed to start makes every test fail, never skip.
  void SetUp() override { ASSERT_NE(vaned_, nullptr) << setup_error_; }
  static void TearDownTestSuite() {
    delete vaned_;
    delete dir_;
  }

  static Response ask(const std::string& name, const std::string& type, QueryOpts o = {}) {
    auto r = query("127.0.0.1", vaned_->port(), name, type, o);
    EXPECT_TRUE(r.has_value()) << "no answer for " << name << " " << type;
    return r.value_or(Response{});
  }

  static TempDir* dir_;
  static Vaned* vaned_;
  static inline std::string setup_error_;
};
TempDir* Semantics::dir_;
Vaned* Semantics::vaned_;

const char* kSoaNeg =
    "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2026112401 7200 3600 1209600 300";

TEST_F(Semantics, PositiveAnswer_IsAuthoritativeWithRecordTtl) {
  Response r = ask("www.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q www.example.com. IN A\n"
            "AN www.example.com. 600 IN A 192.0.2.10\n"
            "AN www.example.com. 600 IN A 192.0.2.11\n");
}

TEST_F(Semantics, NxDomain_CarriesSoaWithNegativeTtl) {
  Response r = ask("nope.example.com", "A");
  EXPECT_EQ(render(r), std::string("rcode=NXDOMAIN flags=qr aa rd edns=no\n"
                                   "Q nope.example.com. IN A\n"
                                   "NS ") +
                           kSoaNeg + "\n");
}

TEST_F(Semantics, NoData_IsNoErrorWithSoa) {
  Response r = ask("mail.example.com", "AAAA");
  EXPECT_EQ(render(r), std::string("rcode=NOERROR flags=qr aa rd edns=no\n"
                                   "Q mail.example.com. IN AAAA\n"
                                   "NS ") +
                           kSoaNeg + "\n");
}

TEST_F(Semantics, EmptyNonTerminal_IsNoDataNotNxDomain) {
  for (const char* name : {"c.deep.example.com", "b.c.deep.example.com", "ent.wild.example.com"}) {
    Response r = ask(name, "A");
    EXPECT_EQ(r.rcode, "NOERROR") << name;
    EXPECT_TRUE(r.aa);
    EXPECT_TRUE(r.answer.empty()) << name;
    ASSERT_EQ(r.authority.size(), 1u);
    EXPECT_EQ(r.authority[0], kSoaNeg);
  }
}

TEST_F(Semantics, CnameChain_IsFollowedInsideTheZone) {
  Response r = ask("alias2.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q alias2.example.com. IN A\n"
            "AN alias2.example.com. 3600 IN CNAME alias.example.com.\n"
            "AN alias.example.com. 3600 IN CNAME www.example.com.\n"
            "AN www.example.com. 600 IN A 192.0.2.10\n"
            "AN www.example.com. 600 IN A 192.0.2.11\n");
}

TEST_F(Semantics, Cname_QueriedForCnameType_IsNotFollowed) {
  Response r = ask("alias.example.com", "CNAME");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q alias.example.com. IN CNAME\n"
            "AN alias.example.com. 3600 IN CNAME www.example.com.\n");
}

TEST_F(Semantics, Cname_ToMissingName_IsNxDomainWithTheCname) {
  // RFC 6604 §3: the rcode is that of the last name in the chain.
  Response r = ask("dangling.example.com", "A");
  EXPECT_EQ(render(r), std::string("rcode=NXDOMAIN flags=qr aa rd edns=no\n"
                                   "Q dangling.example.com. IN A\n"
                                   "AN dangling.example.com. 3600 IN CNAME nothing.example.com.\n"
                                   "NS ") +
                           kSoaNeg + "\n");
}

TEST_F(Semantics, Cname_OutsideServedZones_StopsAtTheCname) {
  Response r = ask("outside.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q outside.example.com. IN A\n"
            "AN outside.example.com. 3600 IN CNAME www.example.org.\n");
}

TEST_F(Semantics, Cname_IntoChildZone_FollowsAcrossZones) {
  Response r = ask("tochild.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q tochild.example.com. IN A\n"
            "AN tochild.example.com. 3600 IN CNAME www.sub.example.com.\n"
            "AN www.sub.example.com. 1800 IN A 192.0.2.202\n");
}

TEST_F(Semantics, CnameLoop_EndsWithoutHanging) {
  Response r = ask("loop1.example.com", "A");
  EXPECT_EQ(r.rcode, "NOERROR");
  EXPECT_TRUE(r.aa);
  ASSERT_GE(r.answer.size(), 2u);
  EXPECT_EQ(r.answer[0], "loop1.example.com. 3600 IN CNAME loop2.example.com.");
  EXPECT_EQ(r.answer[1], "loop2.example.com. 3600 IN CNAME loop1.example.com.");
  EXPECT_TRUE(r.authority.empty());
}

TEST_F(Semantics, Dname_BelowTheOwner_SynthesizesACnameWithTheDnameTtl) {
  Response r = ask("host.old.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q host.old.example.com. IN A\n"
            "AN old.example.com. 3600 IN DNAME new.example.com.\n"
            "AN host.old.example.com. 3600 IN CNAME host.new.example.com.\n"
            "AN host.new.example.com. 3600 IN A 192.0.2.63\n");
  // Two labels below, and a CNAME after the rewrite.
  r = ask("mail.old.example.com", "A");
  ASSERT_EQ(r.answer.size(), 5u);
  EXPECT_EQ(r.answer[1], "mail.old.example.com. 3600 IN CNAME mail.new.example.com.");
  EXPECT_EQ(r.answer[2], "mail.new.example.com. 3600 IN CNAME www.example.com.");
  // Nothing at the target: NXDOMAIN with the DNAME, the CNAME and the SOA.
  r = ask("a.b.old.example.com", "A");
  EXPECT_EQ(render(r), std::string("rcode=NXDOMAIN flags=qr aa rd edns=no\n"
                                   "Q a.b.old.example.com. IN A\n"
                                   "AN old.example.com. 3600 IN DNAME new.example.com.\n"
                                   "AN a.b.old.example.com. 3600 IN CNAME a.b.new.example.com.\n"
                                   "NS ") + kSoaNeg + "\n");
}

TEST_F(Semantics, Dname_TheOwnerItself_AnswersItsOwnData) {
  EXPECT_EQ(render(ask("old.example.com", "A")),
            "rcode=NOERROR flags=qr aa rd edns=no\nQ old.example.com. IN A\nAN old.example.com. 3600 IN A 192.0.2.60\n");
  EXPECT_EQ(render(ask("old.example.com", "DNAME")),
            "rcode=NOERROR flags=qr aa rd edns=no\nQ old.example.com. IN DNAME\n"
            "AN old.example.com. 3600 IN DNAME new.example.com.\n");
}

TEST_F(Semantics, Dname_QueriedForCname_StopsAtTheSynthesizedCname) {
  Response r = ask("host.old.example.com", "CNAME");
  ASSERT_EQ(r.answer.size(), 2u);
  EXPECT_EQ(r.answer[1], "host.old.example.com. 3600 IN CNAME host.new.example.com.");
  EXPECT_TRUE(r.authority.empty());
}

TEST_F(Semantics, Dname_OutOfOurZones_StopsAtTheCname) {
  Response r = ask("www.away.example.com", "A");
  EXPECT_EQ(render(r), "rcode=NOERROR flags=qr aa rd edns=no\nQ www.away.example.com. IN A\n"
                       "AN away.example.com. 3600 IN DNAME example.org.\n"
                       "AN www.away.example.com. 3600 IN CNAME www.example.org.\n");
}

TEST_F(Semantics, Dname_SubstitutionLongerThan255_IsYxDomain) {
  std::string name = std::string(50, 'a') + "." + std::string(50, 'b') + ".tolong.example.com";
  Response r = ask(name, "A", {.tcp = true});
  EXPECT_EQ(r.rcode, "YXDOMAIN");
  EXPECT_TRUE(r.aa);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_NE(r.answer[0].find(" IN DNAME "), std::string::npos);
  EXPECT_TRUE(r.authority.empty());
}

TEST_F(Semantics, Dname_PointingBelowItself_EndsWithoutHanging) {
  // dloop DNAME x.dloop: every rewrite adds a label, until the chain limit.
  Response r = ask("a.dloop.example.com", "A", {.tcp = true});
  EXPECT_TRUE(r.rcode == "NOERROR" || r.rcode == "YXDOMAIN") << r.rcode;
  ASSERT_GE(r.answer.size(), 2u);
  EXPECT_EQ(r.answer[0], "dloop.example.com. 3600 IN DNAME x.dloop.example.com.");
  EXPECT_EQ(r.answer[1], "a.dloop.example.com. 3600 IN CNAME a.x.dloop.example.com.");
  EXPECT_LE(r.answer.size(), 17u);  // the DNAME once, a CNAME per hop
  for (size_t i = 1; i < r.answer.size(); ++i) EXPECT_NE(r.answer[i].find(" IN CNAME "), std::string::npos);
}

TEST_F(Semantics, Wildcard_SynthesizesWithTheQueryName) {
  Response r = ask("anything.wild.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q anything.wild.example.com. IN A\n"
            "AN anything.wild.example.com. 3600 IN A 192.0.2.99\n");
  r = ask("x.y.wild.example.com", "TXT");  // several labels below the wildcard's parent
  EXPECT_EQ(r.answer, std::vector<std::string>{"x.y.wild.example.com. 3600 IN TXT \"wildcard\""});
}

TEST_F(Semantics, Wildcard_NoDataForMissingType) {
  Response r = ask("anything.wild.example.com", "MX");
  EXPECT_EQ(r.rcode, "NOERROR");
  EXPECT_TRUE(r.answer.empty());
  EXPECT_EQ(r.authority, std::vector<std::string>{kSoaNeg});
}

TEST_F(Semantics, Wildcard_DoesNotMatchBelowAnExistingName) {
  // RFC 4592 §2.2.1: ent.wild exists (empty non-terminal), so x.ent.wild's
  // closest encloser is ent.wild, which has no wildcard child.
  Response r = ask("x.ent.wild.example.com", "A");
  EXPECT_EQ(r.rcode, "NXDOMAIN");
  EXPECT_EQ(r.authority, std::vector<std::string>{kSoaNeg});
}

TEST_F(Semantics, Wildcard_DoesNotMatchTheEmptyNonTerminalItself) {
  Response r = ask("ent.wild.example.com", "A");
  EXPECT_EQ(r.rcode, "NOERROR");
  EXPECT_TRUE(r.answer.empty());
}

TEST_F(Semantics, WildcardCname_IsFollowed) {
  Response r = ask("foo.cwild.example.com", "A");
  EXPECT_EQ(r.answer,
            (std::vector<std::string>{"foo.cwild.example.com. 3600 IN CNAME www.example.com.",
                                      "www.example.com. 600 IN A 192.0.2.10", "www.example.com. 600 IN A 192.0.2.11"}));
  r = ask("towild.example.com", "A");
  EXPECT_EQ(r.answer, (std::vector<std::string>{"towild.example.com. 3600 IN CNAME host.wild.example.com.",
                                                "host.wild.example.com. 3600 IN A 192.0.2.99"}));
}

TEST_F(Semantics, Delegation_IsReferralWithGlueAndNoAa) {
  Response r = ask("host.deleg.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr rd edns=no\n"
            "Q host.deleg.example.com. IN A\n"
            "NS deleg.example.com. 3600 IN NS ns1.deleg.example.com.\n"
            "NS deleg.example.com. 3600 IN NS ns.example.net.\n"
            "AR ns1.deleg.example.com. 3600 IN A 192.0.2.200\n");
  // The cut itself, and glue names under it, are referrals too.
  EXPECT_FALSE(ask("deleg.example.com", "A").aa);
  EXPECT_FALSE(ask("ns1.deleg.example.com", "A").aa);
}

TEST_F(Semantics, Delegation_DsAtTheCutIsAnsweredByTheParent) {
  Response r = ask("deleg.example.com", "DS");
  EXPECT_EQ(r.rcode, "NOERROR");
  EXPECT_TRUE(r.aa);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_NE(r.answer[0].find("deleg.example.com. 3600 IN DS 12345 13 2"), std::string::npos);
}

TEST_F(Semantics, ChildZone_OnSameServer_AnswersAuthoritatively) {
  Response r = ask("www.sub.example.com", "A");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q www.sub.example.com. IN A\n"
            "AN www.sub.example.com. 1800 IN A 192.0.2.202\n");
  r = ask("nope.sub.example.com", "A");
  EXPECT_EQ(r.rcode, "NXDOMAIN");
  EXPECT_EQ(r.authority,
            std::vector<std::string>{
                "sub.example.com. 60 IN SOA ns1.sub.example.com. hostmaster.example.com. 7 3600 600 86400 60"});
}

TEST_F(Semantics, OutOfZone_IsRefusedWithoutAa) {
  Response r = ask("www.example.org", "A");
  EXPECT_EQ(render(r),
            "rcode=REFUSED flags=qr rd edns=no\n"
            "Q www.example.org. IN A\n");
  EXPECT_EQ(ask("com", "NS").rcode, "REFUSED");
}

TEST_F(Semantics, MxAnswer_AddsInZoneAddressesAsAdditional) {
  Response r = ask("example.com", "MX");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q example.com. IN MX\n"
            "AN example.com. 3600 IN MX 10 mail.example.com.\n"
            "AN example.com. 3600 IN MX 20 mail2.example.net.\n"
            "AR mail.example.com. 3600 IN A 192.0.2.25\n");
}

TEST_F(Semantics, ApexNs_AddsGlueForInZoneServers) {
  Response r = ask("example.com", "NS");
  EXPECT_EQ(render(r),
            "rcode=NOERROR flags=qr aa rd edns=no\n"
            "Q example.com. IN NS\n"
            "AN example.com. 3600 IN NS ns1.example.com.\n"
            "AN example.com. 3600 IN NS ns2.example.net.\n"
            "AR ns1.example.com. 3600 IN A 192.0.2.53\n"
            "AR ns1.example.com. 3600 IN AAAA 2001:db8::53\n");
}

TEST_F(Semantics, UnknownType_IsServedInRfc3597Form) {
  Response r = ask("unknown.example.com", "TYPE65400");
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(r.answer[0], "unknown.example.com. 3600 IN TYPE65400 \\# 4 0a000001");
}

TEST_F(Semantics, Escapes_InTxtSurviveLoading) {
  Response r = ask("escaped.example.com", "TXT");
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(r.answer[0], "escaped.example.com. 3600 IN TXT \"semi;colon\" \"quote\\\"d\" \"byte\\255x\"");
}

TEST_F(Semantics, Include_RecordsAreServed) {
  EXPECT_EQ(ask("inc.example.com", "A").answer, std::vector<std::string>{"inc.example.com. 3600 IN A 192.0.2.150"});
}

TEST_F(Semantics, QuestionCase_IsEchoed) {
  // 0x20 (draft-vixie-dnsext-dns0x20): the client checks its own mixed case.
  auto raw = exchange_raw("127.0.0.1", vaned_->port(), make_query("wWw.ExAmPlE.cOm", "A", {}, 77), false);
  ASSERT_TRUE(raw);
  std::string wire(raw->begin(), raw->end());
  EXPECT_NE(wire.find("\x03wWw\x07"
                      "ExAmPlE\x03"
                      "cOm"),
            std::string::npos);
  auto r = parse_response(*raw);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer.size(), 2u);
}

TEST_F(Semantics, UppercaseOwnerInFile_MatchesAnyCase) {
  EXPECT_EQ(ask("www2.example.com", "A").answer, std::vector<std::string>{"www2.example.com. 3600 IN A 192.0.2.12"});
}

TEST_F(Semantics, Any_OverUdpIsOneRrsetAndOverTcpIsAll) {
  // RFC 8482 §4.2: a subset over UDP; over TCP we give everything.
  Response udp = ask("example.com", "ANY");
  EXPECT_EQ(udp.rcode, "NOERROR");
  EXPECT_TRUE(udp.aa);
  EXPECT_EQ(udp.answer.size(), 2u);  // the NS RRset (lowest type first)
  QueryOpts tcp;
  tcp.tcp = true;
  Response all = ask("example.com", "ANY", tcp);
  EXPECT_EQ(all.answer.size(), 2u /*NS*/ + 1 /*SOA*/ + 2 /*MX*/ + 1 /*TXT*/ + 1 /*CAA*/);
  EXPECT_EQ(ask("nope.example.com", "ANY").rcode, "NXDOMAIN");
}

TEST_F(Semantics, Edns_ResponseCarriesOptAndOurPayloadSize) {
  QueryOpts o;
  o.edns = true;
  o.udp_size = 4096;
  Response r = ask("www.example.com", "A", o);
  EXPECT_TRUE(r.edns);
  EXPECT_EQ(r.edns_udp_size, 1232);
  EXPECT_EQ(r.answer.size(), 2u);
}

TEST_F(Semantics, Edns_VersionAboveZeroIsBadvers) {
  QueryOpts o;
  o.edns = true;
  o.edns_version = 1;
  Response r = ask("www.example.com", "A", o);
  EXPECT_EQ(r.rcode, "BADVERS");
  EXPECT_TRUE(r.edns);
  EXPECT_TRUE(r.answer.empty());
  EXPECT_TRUE(r.authority.empty());
}

TEST_F(Semantics, LargeAnswer_TruncatesOverUdpAndIsWholeOverTcp) {
  Response udp = ask("big.example.com", "TXT");
  EXPECT_TRUE(udp.tc);
  EXPECT_TRUE(udp.answer.empty());
  EXPECT_LE(udp.size, 512u);
  QueryOpts e;
  e.edns = true;
  e.udp_size = 1232;
  Response edns = ask("big.example.com", "TXT", e);
  EXPECT_TRUE(edns.tc);
  EXPECT_LE(edns.size, 1232u);
  QueryOpts t;
  t.tcp = true;
  Response tcp = ask("big.example.com", "TXT", t);
  EXPECT_FALSE(tcp.tc);
  EXPECT_EQ(tcp.answer.size(), 40u);
  EXPECT_GT(tcp.size, 1232u);
}

TEST_F(Semantics, Compression_KeepsAnswersSmall) {
  // Question 33 bytes + 2 × (pointer 2 + 10 + 4): owner names must be pointers.
  Response r = ask("www.example.com", "A");
  EXPECT_EQ(r.size, 12u + 21u + 2u * 16u);
}

TEST_F(Semantics, NonInClass_IsRefused) {
  QueryOpts o;
  o.qclass = 3;  // CH
  Response r = ask("version.bind", "TXT", o);
  EXPECT_EQ(r.rcode, "REFUSED");
}

TEST_F(Semantics, ZoneTransfer_IsRefused) {
  QueryOpts o;
  o.tcp = true;
  EXPECT_EQ(ask("example.com", "AXFR", o).rcode, "REFUSED");
}

TEST_F(Semantics, Ipv6Listener_AnswersTheSame) {
  auto r = query("::1", vaned_->port(), "www.example.com", "AAAA");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer, std::vector<std::string>{"www.example.com. 3600 IN AAAA 2001:db8::10"});
}

}  // namespace
}  // namespace vane::test
