// DNSSEC online signing end to end: every answer of the Knot corpus (and
// steered ones) validated by dnspython against the served DNSKEY; a real
// validating Unbound with vane's DS as its trust anchor (AD=1, and SERVFAIL
// with a wrong anchor); answers without DO unchanged; keys across restarts
// and kill -9; the vanectl dnssec verbs.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client.h"
#include "corpus.h"
#include "dns_client.h"
#include "fixtures.h"
#include "process.h"
#include "unbound.h"

namespace vane::test {
namespace {

using nlohmann::json;

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Steered records in the signed zone: weighted over four endpoints (a TTL
// of 1 s so a resolver sees a flip at once), failover, a steered CNAME, and
// a static CNAME into the weighted name.
const char* kRecords = R"(records:
  - name: app4.example.com
    type: A
    ttl: 1
    policy: weighted
    endpoints:
      - { name: a, address: 192.0.2.101, weight: 10 }
      - { name: b, address: 192.0.2.102, weight: 10 }
      - { name: c, address: 192.0.2.103, weight: 10 }
      - { name: d, address: 192.0.2.104, weight: 10 }
  - name: fo.example.com
    type: A
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.111, priority: 1 }
      - { name: standby, address: 198.51.100.111, priority: 2 }
  - name: cdn.example.com
    type: CNAME
    policy: weighted
    endpoints:
      - { name: one, cname: www.example.com, weight: 1 }
      - { name: two, cname: mail.example.com, weight: 1 }
)";

std::string config(const std::string& algorithm = "", bool sign = true) {
  std::string dnssec = sign ? ", dnssec: { signing: online" + (algorithm.empty() ? "" : ", algorithm: " + algorithm) + " }"
                            : "";
  return "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones:\n  - { name: example.com, file: example.com.zone" + dnssec +
         " }\n  - { name: sub.example.com, file: sub.example.com.zone" + dnssec + " }\n" + kRecords;
}

// Twelve types, each at the top of its own bitmap window (k × 256 + 255):
// the NSEC for this owner carries 12 full windows of 34 bytes.
std::string windows_records() {
  std::string r;
  for (int k = 1; k <= 12; ++k) r += "windows IN TYPE" + std::to_string(k * 256 + 255) + " \\# 0\n";
  return r;
}

class Dnssec : public ::testing::Test {
 protected:
  void SetUp() override { write_zones(dir_); }
  static void write_zones(const TempDir& d) {
    for (const char* f : {"included.zone", "sub.example.com.zone"})
      d.write(f, slurp(std::string(VANE_TEST_DATA) + "/" + f));
    d.write("example.com.zone", slurp(std::string(VANE_TEST_DATA) + "/example.com.zone") +
                                    "shop IN CNAME app4\napp4 IN TXT \"beside a steered A\"\n"
                                    + windows_records());
  }
  void start(const std::string& algorithm = "") { vaned_ = std::make_unique<Vaned>(dir_, config(algorithm)); }
  std::string sock() const { return dir_.path() + "/state/admin.sock"; }
  json call(const json& req) {
    auto r = admin::call(sock(), req, 10000);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : json{{"ok", false}, {"error", "transport"}};
  }
  // Runs tests/dnssec/validate.py over `queries`; returns its counts.
  json validate(const std::vector<std::pair<std::string, std::string>>& queries) {
    std::string list;
    for (const auto& [n, t] : queries) list += n + " " + t + "\n";
    std::string file = dir_.write("queries.txt", list);
    Process p({"/bin/sh", "-c",
               std::string("/usr/bin/python3 ") + VANE_SOURCE_DIR + "/tests/dnssec/validate.py 127.0.0.1 " +
                   std::to_string(vaned_->port()) + " example.com sub.example.com < " + file});
    int rc = p.wait(240000);
    std::string out = p.output();
    EXPECT_EQ(rc, 0) << out;
    json counts;
    try {
      counts = json::parse(out.substr(0, out.find('\n')));
    } catch (...) {
      ADD_FAILURE() << "validate.py said: " << out;
    }
    return counts;
  }
  std::vector<std::pair<std::string, std::string>> steered_queries(int repeat) {
    std::vector<std::pair<std::string, std::string>> q;
    for (int i = 0; i < repeat; ++i)
      for (const char* n : {"app4.example.com", "shop.example.com", "cdn.example.com", "fo.example.com"})
        q.emplace_back(n, "A");
    q.emplace_back("app4.example.com", "AAAA");  // NODATA beside a steered A
    q.emplace_back("app4.example.com", "TXT");
    q.emplace_back("fo.example.com", "TXT");
    q.emplace_back("windows.example.com", "A");  // NODATA whose NSEC bitmap spans thirteen windows
    q.emplace_back("example.com", "CDS");
    q.emplace_back("example.com", "CDNSKEY");
    return q;
  }
  // The apex RRset of `type` (CDS, CDNSKEY, DNSKEY) as lowercase rdata lines, sorted.
  std::vector<std::string> apex_set(const std::string& type) {
    auto r = query("127.0.0.1", vaned_->port(), "example.com", type, {.tcp = true, .edns = true, .do_bit = true});
    std::vector<std::string> out;
    for (const auto& rr : r ? r->answer : std::vector<std::string>{}) {
      size_t at = rr.find(" IN " + type + " ");
      if (at == std::string::npos) continue;
      std::string rdata = rr.substr(at + 5 + type.size());
      rdata = rdata.substr(0, rdata.find(" ;"));  // ldns's DNSKEY comment
      for (char& c : rdata) c = char(tolower(static_cast<unsigned char>(c)));
      out.push_back(rdata);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // What `vanectl dnssec ds` prints, as the same lowercase rdata lines.
  std::vector<std::string> ds_for_parent() {
    std::string out;
    EXPECT_EQ(run_ctl(VANECTL_PATH, sock(), {"dnssec", "ds", "example.com"}, out), 0) << out;
    std::vector<std::string> ds;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      if (size_t at = line.find(" IN DS "); at != std::string::npos) ds.push_back(line.substr(at + 7));
    std::sort(ds.begin(), ds.end());
    return ds;
  }
  std::string dnskeys() {
    auto r = query("127.0.0.1", vaned_->port(), "example.com", "DNSKEY", {.tcp = true, .edns = true, .do_bit = true});
    std::string s;
    for (const auto& rr : r ? r->answer : std::vector<std::string>{})
      if (rr.find(" IN DNSKEY ") != std::string::npos) s += rr + "\n";
    return s;
  }
  TempDir dir_;
  std::unique_ptr<Vaned> vaned_;
};

TEST_F(Dnssec, EveryCorpusAnswerAndEverySteeredAnswerValidates_EcdsaP256) {
  start();
  EXPECT_TRUE(vaned_->process().wait_for_output("had no DNSSEC key: made a ecdsap256sha256 CSK", 1000));
  auto queries = corpus_queries();
  for (const auto& q : steered_queries(8)) queries.push_back(q);
  json c = validate(queries);
  EXPECT_EQ(c.value("failures", -1), 0) << c.dump();
  EXPECT_GE(c.value("queries", 0), 850);
  EXPECT_GE(c.value("rrsets_validated", 0), 1500) << c.dump();
  EXPECT_GE(c.value("negative_proofs", 0), 400) << c.dump();
  EXPECT_GE(c.value("additional_validated", 0), 10) << c.dump();
  // The shape of a signed answer: the RRset, then its RRSIG with the original TTL.
  auto http = query("127.0.0.1", vaned_->port(), "www.example.com", "A", {.edns = true, .do_bit = true});
  ASSERT_TRUE(http);
  ASSERT_EQ(http->answer.size(), 3u) << http->to_string();
  EXPECT_NE(http->answer[2].find("RRSIG A 13 3 600"), std::string::npos) << http->to_string();
}

TEST_F(Dnssec, Ed25519ZoneValidates) {
  start("ed25519");
  EXPECT_NE(dnskeys().find("DNSKEY 257 3 15 "), std::string::npos) << dnskeys();
  std::vector<std::pair<std::string, std::string>> q = steered_queries(4);
  for (const auto& name : names()) q.emplace_back(name, "A");
  json c = validate(q);
  EXPECT_EQ(c.value("failures", -1), 0) << c.dump();
  EXPECT_GE(c.value("rrsets_validated", 0), 80) << c.dump();
}

// Signing changes nothing for a query without DO: the same zones served
// unsigned answer byte for byte alike (but the DNSKEY, CDS and CDNSKEY
// RRsets, which only the signed zone has).
TEST_F(Dnssec, WithoutDo_AnswersAreThoseOfTheUnsignedZone) {
  start();
  TempDir plain_dir;
  write_zones(plain_dir);
  Vaned plain(plain_dir, config("", false));
  int compared = 0;
  std::string diffs;
  for (const auto& [name, type] : corpus_queries()) {
    if (type == "ANY" && (name == "example.com" || name == "sub.example.com")) continue;  // the DNSKEY RRset
    for (int mode = 0; mode < 3; ++mode) {
      QueryOpts o{.tcp = mode == 2, .edns = mode >= 1};
      auto s = query("127.0.0.1", vaned_->port(), name, type, o);
      auto u = query("127.0.0.1", plain.port(), name, type, o);
      ASSERT_TRUE(s && u) << name << " " << type;
      ++compared;
      if (render(*s) != render(*u) && diffs.size() < 4000)
        diffs += name + " " + type + "\n--- signed\n" + render(*s) + "--- unsigned\n" + render(*u);
    }
  }
  EXPECT_GE(compared, 2500);
  EXPECT_TRUE(diffs.empty()) << diffs;
  auto k = query("127.0.0.1", plain.port(), "example.com", "DNSKEY", {.edns = true, .do_bit = true});
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->answer.empty()) << k->to_string();
}

TEST_F(Dnssec, ShapesOfSignedAnswers) {
  start();
  QueryOpts d{.edns = true, .do_bit = true};
  // NXDOMAIN as compact denial (RFC 9824): NOERROR, one NSEC with NXNAME.
  auto nx = query("127.0.0.1", vaned_->port(), "nope.example.com", "A", d);
  ASSERT_TRUE(nx);
  EXPECT_EQ(nx->rcode, "NOERROR");
  ASSERT_EQ(nx->authority.size(), 4u) << nx->to_string();
  EXPECT_NE(nx->authority[2].find("nope.example.com. 300 IN NSEC \\000.nope.example.com. RRSIG NSEC TYPE128"),
            std::string::npos)
      << nx->to_string();
  // Without DO: NXDOMAIN as before.
  auto plain = query("127.0.0.1", vaned_->port(), "nope.example.com", "A");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->rcode, "NXDOMAIN");
  EXPECT_EQ(plain->authority.size(), 1u);
  // NODATA: the name's types but the one asked.
  auto nodata = query("127.0.0.1", vaned_->port(), "www.example.com", "TXT", d);
  ASSERT_TRUE(nodata);
  EXPECT_NE(nodata->authority[2].find("IN NSEC \\000.www.example.com. A AAAA SSHFP RRSIG NSEC"), std::string::npos)
      << nodata->to_string();
  // A referral: the DS and its RRSIG; glue unsigned.
  auto ref = query("127.0.0.1", vaned_->port(), "x.deleg.example.com", "A", d);
  ASSERT_TRUE(ref);
  EXPECT_FALSE(ref->aa);
  std::string auth;
  for (const auto& rr : ref->authority) auth += rr + "\n";
  EXPECT_NE(auth.find(" IN DS "), std::string::npos) << auth;
  EXPECT_NE(auth.find(" IN RRSIG DS "), std::string::npos) << auth;
  EXPECT_EQ(auth.find(" IN RRSIG NS "), std::string::npos) << auth;
  // Types in thirteen bitmap windows: window 0 (RRSIG, NSEC) and twelve full ones.
  auto windows = query("127.0.0.1", vaned_->port(), "windows.example.com", "A", {.tcp = true, .edns = true, .do_bit = true});
  ASSERT_TRUE(windows);
  ASSERT_EQ(windows->authority.size(), 4u) << windows->to_string();
  std::string listed = "RRSIG NSEC";
  for (int k = 1; k <= 12; ++k) listed += " TYPE" + std::to_string(k * 256 + 255);
  EXPECT_NE(windows->authority[2].find(listed), std::string::npos) << windows->to_string();
  // The NSEC type asked for at a name that exists: the NSEC made for it.
  auto nsec = query("127.0.0.1", vaned_->port(), "www.example.com", "NSEC", d);
  ASSERT_TRUE(nsec);
  ASSERT_EQ(nsec->answer.size(), 2u) << nsec->to_string();
  EXPECT_NE(nsec->answer[0].find("IN NSEC \\000.www.example.com. A AAAA SSHFP RRSIG NSEC"), std::string::npos)
      << nsec->to_string();
  // An NXNAME query is a format error (RFC 9824 §3.5).
  auto meta = query("127.0.0.1", vaned_->port(), "www.example.com", "TYPE128", d);
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->rcode, "FORMERR");
  // A signed answer too big for the client's UDP size is truncated whole; TCP has it all.
  auto big = query("127.0.0.1", vaned_->port(), "big.example.com", "TXT", d);
  ASSERT_TRUE(big);
  EXPECT_TRUE(big->tc);
  EXPECT_TRUE(big->answer.empty());
  auto big_tcp = query("127.0.0.1", vaned_->port(), "big.example.com", "TXT", {.tcp = true, .edns = true, .do_bit = true});
  ASSERT_TRUE(big_tcp);
  EXPECT_EQ(big_tcp->answer.size(), 41u) << big_tcp->to_string();
}

TEST_F(Dnssec, KeysSurviveRestartAndKill9_AnswersStillValidate) {
  start();
  std::string before = dnskeys();
  ASSERT_NE(before.find("DNSKEY 257 3 13"), std::string::npos) << before;
  vaned_->process().signal(SIGTERM);
  vaned_->process().wait(10000);
  start();
  EXPECT_EQ(dnskeys(), before);
  vaned_->process().signal(SIGKILL);
  vaned_->process().wait(10000);
  start();
  EXPECT_EQ(dnskeys(), before);
  EXPECT_FALSE(vaned_->process().wait_for_output("had no DNSSEC key", 300));
  json c = validate(steered_queries(2));
  EXPECT_EQ(c.value("failures", -1), 0) << c.dump();
}

// Keys made by ldns-keygen (BIND's format, no .state) are used as they are.
TEST_F(Dnssec, LdnsKeygenKeysAreServed) {
  std::string keys = dir_.path() + "/state/keys/example.com";
  Process mk({"/bin/sh", "-c", "mkdir -p " + keys + " && cd " + keys + " && ldns-keygen -a ECDSAP256SHA256 -k example.com"});
  ASSERT_EQ(mk.wait(10000), 0) << mk.output();
  std::string base = keys + "/" + mk.output().substr(0, mk.output().find('\n'));
  std::string key_file = slurp(base + ".key");
  std::string pub = key_file.substr(key_file.find("257 3 13 ") + 9);
  pub = pub.substr(0, pub.find_first_of(" ;\n"));
  start();
  EXPECT_FALSE(vaned_->process().wait_for_output("zone example.com had no DNSSEC key", 300));
  EXPECT_NE(dnskeys().find(pub), std::string::npos) << "ldns-keygen's key:\n" << key_file << "served:\n" << dnskeys();
  json c = validate(steered_queries(2));
  EXPECT_EQ(c.value("failures", -1), 0) << c.dump();
  json k = call({{"cmd", "dnssec"}, {"action", "keys"}, {"zone", "example.com"}});
  ASSERT_EQ(k["keys"].size(), 1u);
  EXPECT_EQ(k["keys"][0]["role"], "csk");
  EXPECT_EQ(k["keys"][0]["state"], "active");
}

// A CSK rollover with the verbs, as README describes it: keygen (published),
// activate (the switch), retire the old one. Answers validate at each step.
TEST_F(Dnssec, VanectlVerbs_RolloverAndClearErrors) {
  start();
  auto run = [&](const std::vector<std::string>& args, std::string& out) {
    return run_ctl(VANECTL_PATH, sock(), args, out);
  };
  std::string out;
  ASSERT_EQ(run({"dnssec", "ds", "example.com"}, out), 0) << out;
  EXPECT_NE(out.find("example.com. 3600 IN DS "), std::string::npos) << out;
  EXPECT_NE(out.find(" 13 2 "), std::string::npos) << out;
  json keys = call({{"cmd", "dnssec"}, {"action", "keys"}, {"zone", "example.com"}});
  ASSERT_EQ(keys["keys"].size(), 1u) << keys.dump();
  int old_tag = keys["keys"][0]["tag"];
  EXPECT_EQ(keys["keys"][0]["role"], "csk");
  EXPECT_EQ(keys["keys"][0]["state"], "active");

  ASSERT_EQ(run({"dnssec", "keygen", "example.com"}, out), 0) << out;
  EXPECT_NE(out.find("(published)"), std::string::npos) << out;
  keys = call({{"cmd", "dnssec"}, {"action", "keys"}, {"zone", "example.com"}});
  ASSERT_EQ(keys["keys"].size(), 2u);
  int new_tag = keys["keys"][0]["tag"] == old_tag ? keys["keys"][1]["tag"].get<int>() : keys["keys"][0]["tag"].get<int>();
  EXPECT_NE(dnskeys().find("257 3 13"), dnskeys().rfind("257 3 13")) << "both keys published: " << dnskeys();
  ASSERT_EQ(run({"dnssec", "ds", "example.com"}, out), 0);
  EXPECT_NE(out.find(std::to_string(new_tag) + " 13 2"), std::string::npos) << "the new DS, for the parent: " << out;

  // CDS names both keys while the DS at the parent should (double-DS).
  EXPECT_EQ(apex_set("CDS"), ds_for_parent());
  EXPECT_EQ(apex_set("CDS").size(), 2u);
  EXPECT_EQ(apex_set("CDNSKEY"), apex_set("DNSKEY"));

  ASSERT_EQ(run({"dnssec", "retire", "example.com", std::to_string(old_tag)}, out), 1);
  EXPECT_NE(out.find("is active: switch to another first"), std::string::npos) << out;
  ASSERT_EQ(run({"dnssec", "activate", "example.com", std::to_string(new_tag)}, out), 0) << out;
  EXPECT_NE(out.find("key " + std::to_string(new_tag) + " is now active"), std::string::npos) << out;
  auto soa = query("127.0.0.1", vaned_->port(), "example.com", "SOA", {.edns = true, .do_bit = true});
  ASSERT_TRUE(soa && soa->answer.size() == 2);
  EXPECT_NE(soa->answer[1].find(" " + std::to_string(new_tag) + " example.com."), std::string::npos)
      << soa->to_string();
  EXPECT_EQ(validate(steered_queries(1)).value("failures", -1), 0);
  ASSERT_EQ(run({"dnssec", "retire", "example.com", std::to_string(old_tag)}, out), 0) << out;
  EXPECT_EQ(dnskeys().find("257 3 13"), dnskeys().rfind("257 3 13")) << "one key left: " << dnskeys();
  ASSERT_EQ(apex_set("CDS").size(), 1u) << "the old DS can go";
  EXPECT_EQ(apex_set("CDS")[0].substr(0, std::to_string(new_tag).size() + 1), std::to_string(new_tag) + " ");
  EXPECT_EQ(validate(steered_queries(1)).value("failures", -1), 0);
  ASSERT_EQ(run({"dnssec", "keys", "example.com"}, out), 0);
  EXPECT_NE(out.find("retired"), std::string::npos) << out;

  // Clear errors, nothing touched.
  json bad = call({{"cmd", "dnssec"}, {"action", "keys"}, {"zone", "example.org"}});
  EXPECT_FALSE(bad["ok"].get<bool>());
  EXPECT_NE(bad["error"].get<std::string>().find("signed zones: example.com., sub.example.com."), std::string::npos)
      << bad.dump();
  bad = call({{"cmd", "dnssec"}, {"action", "activate"}, {"zone", "example.com"}, {"tag", 1}});
  EXPECT_NE(bad["error"].get<std::string>().find("has no key 1; keys: "), std::string::npos) << bad.dump();
  bad = call({{"cmd", "dnssec"}, {"action", "keygen"}, {"zone", "example.com"}, {"key_dir", "/etc"}});
  EXPECT_NE(bad["error"].get<std::string>().find("unknown field 'key_dir'"), std::string::npos) << bad.dump();
  bad = call({{"cmd", "dnssec"}, {"action", "sign"}, {"zone", "example.com"}});
  EXPECT_NE(bad["error"].get<std::string>().find("known: ds, keys, keygen, activate, retire"), std::string::npos);
}

// CDS and CDNSKEY (RFC 7344) at the apex name the keys the parent's DS set
// should: KSK or CSK, active or published — never a ZSK, never a retired
// key; each signed by the KSK; with `cds: false`, none.
TEST_F(Dnssec, CdsAndCdnskey_NameTheKeysTheDsShould_OffWhenAsked) {
  start();
  std::vector<std::string> ds = ds_for_parent();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(apex_set("CDS"), ds);
  EXPECT_EQ(apex_set("CDNSKEY"), apex_set("DNSKEY"));
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, sock(), {"dnssec", "keygen", "example.com", "--role", "zsk"}, out), 0) << out;
  EXPECT_EQ(apex_set("DNSKEY").size(), 2u);
  EXPECT_EQ(apex_set("CDS"), ds) << "a ZSK is not the parent's business";
  EXPECT_EQ(apex_set("CDNSKEY").size(), 1u);
  auto r = query("127.0.0.1", vaned_->port(), "example.com", "CDS", {.edns = true, .do_bit = true});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->answer.size(), 2u) << r->to_string();
  EXPECT_NE(r->answer[1].find(" IN RRSIG CDS 13 2 3600 "), std::string::npos) << r->to_string();
  json c = validate({{"example.com", "CDS"}, {"example.com", "CDNSKEY"}, {"example.com", "DNSKEY"}});
  EXPECT_EQ(c.value("failures", -1), 0) << c.dump();
  EXPECT_GE(c.value("rrsets_validated", 0), 3) << c.dump();
  // The apex NSEC lists them (a NODATA proof at the apex).
  r = query("127.0.0.1", vaned_->port(), "example.com", "SSHFP", {.edns = true, .do_bit = true});
  ASSERT_TRUE(r);
  bool listed = false;
  for (const auto& rr : r->authority)
    if (rr.find(" IN NSEC ") != std::string::npos)
      listed = rr.find(" CDS ") != std::string::npos && rr.find(" CDNSKEY") != std::string::npos;
  EXPECT_TRUE(listed) << r->to_string();

  vaned_.reset();
  std::string cfg = config();
  cfg.replace(cfg.find("signing: online }"), 17, "signing: online, cds: false }");
  vaned_ = std::make_unique<Vaned>(dir_, cfg);
  EXPECT_EQ(apex_set("DNSKEY").size(), 2u);
  EXPECT_TRUE(apex_set("CDS").empty());
  EXPECT_TRUE(apex_set("CDNSKEY").empty());
  r = query("127.0.0.1", vaned_->port(), "example.com", "CDS", {.edns = true, .do_bit = true});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rcode, "NOERROR");
  EXPECT_TRUE(r->answer.empty()) << r->to_string();
}

// A real validating resolver: Unbound with vane's DS as its trust anchor.
TEST_F(Dnssec, UnboundValidates_StaticCnameWildcardNegativeAndSteered_AndAWrongAnchorFails) {
  start();
  json ds = call({{"cmd", "dnssec"}, {"action", "ds"}, {"zone", "example.com"}});
  ASSERT_EQ(ds["ds"].size(), 1u) << ds.dump();
  Unbound ub({"example.com"}, vaned_->port(), {ds["ds"][0]["ds"].get<std::string>()});
  QueryOpts d{.edns = true, .do_bit = true};
  auto secure = [&](const std::string& name, const std::string& type, const std::string& rcode) {
    auto r = query("127.0.0.1", ub.port(), name, type, d);
    EXPECT_TRUE(r) << name;
    if (!r) return std::string();
    EXPECT_EQ(r->rcode, rcode) << name << " " << type << "\n" << r->to_string() << ub.output();
    EXPECT_TRUE(r->ad) << name << " " << type << " is not validated:\n" << r->to_string() << ub.output();
    std::string a;
    for (const auto& rr : r->answer)
      if (rr.find(" IN A ") != std::string::npos) a = rr.substr(rr.rfind(' ') + 1);
    return a;
  };
  EXPECT_EQ(secure("www.example.com", "A", "NOERROR").rfind("192.0.2.1", 0), 0u);
  EXPECT_EQ(secure("shop.example.com", "A", "NOERROR").rfind("192.0.2.10", 0), 0u);  // CNAME into a steered name
  EXPECT_EQ(secure("x.wild.example.com", "A", "NOERROR"), "192.0.2.99");            // wildcard
  secure("www.example.com", "TXT", "NOERROR");                                      // NODATA
  secure("nope.example.com", "A", "NOERROR");  // NXDOMAIN, compact: NODATA with NXNAME
  secure("ent.wild.example.com", "A", "NOERROR");  // empty non-terminal
  EXPECT_EQ(secure("fo.example.com", "A", "NOERROR"), "192.0.2.111");
  // A flip: the steered answer follows it, still validated (TTL 1 s).
  std::string before = secure("app4.example.com", "A", "NOERROR");
  for (const char* ep : {"a", "b", "c", "d"}) {
    json w{{"cmd", "weight"}, {"record", "app4.example.com"}, {"endpoint", ep}, {"weight", *ep == 'd' ? 255 : 0}};
    ASSERT_TRUE(call(w)["ok"].get<bool>());
  }
  ASSERT_TRUE(eventually([&] { return secure("app4.example.com", "A", "NOERROR") == "192.0.2.104"; }, 5000))
      << "was " << before;

  // The same vane behind an Unbound whose anchor is some other key: bogus.
  std::string wrong = ds["ds"][0]["ds"].get<std::string>();
  size_t tag_at = wrong.find(" DS ") + 4;
  wrong.replace(tag_at, wrong.find(' ', tag_at) - tag_at, "1");
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  Unbound bad({"example.com"}, vaned_->port(), {wrong});
  auto r = query("127.0.0.1", bad.port(), "www.example.com", "A", d);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rcode, "SERVFAIL") << r->to_string();
}

}  // namespace
}  // namespace vane::test
