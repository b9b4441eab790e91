// Steered records over real sockets: every policy, ECS in and out, steered
// names inside the zone's CNAME/NODATA/ANY logic, malformed ECS, and the
// config errors an operator sees from --check-config.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "dns_client.h"
#include "process.h"

namespace vane::test {
namespace {

const char* kZone = R"($ORIGIN example.com.
$TTL 300
@ IN SOA ns hostmaster 7 3600 600 86400 60
@ IN NS ns
ns IN A 192.0.2.1
www IN AAAA 2001:db8::10
static IN A 192.0.2.99
)";

const char* kConfig = R"(
listen: ["127.0.0.1:0"]
threads: 2
zones: [{ name: example.com, file: example.com.zone }]
regions:
  - { cidr: 10.1.0.0/16, order: [us-east-1, us-east-2] }
  - { cidr: "2001:db8:1::/48", order: [us-east-1, us-east-2] }
  - { cidr: 0.0.0.0/0, order: [us-east-2, us-east-1] }
records:
  - name: www.example.com
    type: A
    ttl: 60
    policy: weighted
    endpoints:
      - { name: use1, address: 192.0.2.10, weight: 255 }
      - { name: use2, address: 198.51.100.10, weight: 0 }
  - name: fo.example.com
    type: A
    ttl: 30
    policy: failover
    endpoints:
      - { name: primary, address: 192.0.2.20, priority: 1 }
      - { name: standby, address: 192.0.2.21, priority: 2 }
  - name: lat.example.com
    type: A
    policy: latency
    endpoints:
      - { name: east, address: 192.0.2.30, region: us-east-1 }
      - { name: west, address: 192.0.2.31, region: us-east-2 }
  - name: mv.example.com
    type: A
    policy: multivalue
    max_answers: 2
    endpoints:
      - { name: a, address: 192.0.2.40 }
      - { name: b, address: 192.0.2.41 }
      - { name: c, address: 192.0.2.42 }
  - name: split.example.com
    type: A
    sticky: true
    endpoints:
      - { name: a, address: 192.0.2.50, weight: 1 }
      - { name: b, address: 192.0.2.51, weight: 1 }
  - name: go.example.com
    type: CNAME
    ttl: 20
    endpoints:
      - { name: to-www, cname: www.example.com }
)";

class Steered : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    dir_->write("example.com.zone", kZone);
    try {
      vaned_ = new Vaned(*dir_, kConfig);
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete vaned_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(vaned_, nullptr) << setup_error_; }

  static Response ask(const std::string& name, const std::string& type, QueryOpts o = {}) {
    auto r = query("127.0.0.1", vaned_->port(), name, type, o);
    EXPECT_TRUE(r.has_value()) << "no answer for " << name << " " << type;
    return r.value_or(Response{});
  }

  static inline TempDir* dir_;
  static inline Vaned* vaned_;
  static inline std::string setup_error_;
};

TEST_F(Steered, Weighted_255_0_AlwaysTheNonZero_WithTheRecordTtl) {
  for (int i = 0; i < 200; ++i) {
    Response r = ask("www.example.com", "A", {.tcp = i % 2 == 1});
    ASSERT_EQ(r.rcode, "NOERROR");
    EXPECT_TRUE(r.aa);
    ASSERT_EQ(r.answer, std::vector<std::string>{"www.example.com. 60 IN A 192.0.2.10"});
    EXPECT_TRUE(r.authority.empty());
    EXPECT_TRUE(r.additional.empty());
  }
}

TEST_F(Steered, StaticAndSteeredTypesShareAName) {
  Response r = ask("www.example.com", "AAAA");
  EXPECT_EQ(r.answer, std::vector<std::string>{"www.example.com. 300 IN AAAA 2001:db8::10"});
  r = ask("www.example.com", "ANY", {.tcp = true});
  std::multiset<std::string> got(r.answer.begin(), r.answer.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"www.example.com. 60 IN A 192.0.2.10",
                                             "www.example.com. 300 IN AAAA 2001:db8::10"}));
}

TEST_F(Steered, NodataAtASteeredName_CarriesTheSoa) {
  Response r = ask("fo.example.com", "TXT");
  EXPECT_EQ(r.rcode, "NOERROR");
  EXPECT_TRUE(r.answer.empty());
  ASSERT_EQ(r.authority.size(), 1u);
  EXPECT_EQ(r.authority[0], "example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 7 3600 600 86400 60");
}

TEST_F(Steered, Failover_AnswersTierOne) {
  Response r = ask("fo.example.com", "A");
  EXPECT_EQ(r.answer, std::vector<std::string>{"fo.example.com. 30 IN A 192.0.2.20"});
}

TEST_F(Steered, Latency_EcsFromTwoNetworksGetsTwoRegionsAndTheScope) {
  Response a = ask("lat.example.com", "A", {.ecs = "10.1.2.0/24"});
  EXPECT_EQ(a.answer, std::vector<std::string>{"lat.example.com. 60 IN A 192.0.2.30"});
  EXPECT_EQ(a.ecs, "10.1.2.0/24/16");
  Response b = ask("lat.example.com", "A", {.ecs = "192.0.2.0/24"});
  EXPECT_EQ(b.answer, std::vector<std::string>{"lat.example.com. 60 IN A 192.0.2.31"});
  EXPECT_EQ(b.ecs, "192.0.2.0/24/1");  // 0/0 matched; the scope keeps 10.1/16 out
  Response c = ask("lat.example.com", "A", {.ecs = "2001:db8:1:2::/56"});
  EXPECT_EQ(c.answer, std::vector<std::string>{"lat.example.com. 60 IN A 192.0.2.30"});
  EXPECT_EQ(c.ecs, "2001:db8:1::/56/48");
  // No ECS: the source address (127.0.0.1) decides, and no option comes back.
  Response d = ask("lat.example.com", "A", {.edns = true});
  EXPECT_EQ(d.answer, std::vector<std::string>{"lat.example.com. 60 IN A 192.0.2.31"});
  EXPECT_EQ(d.ecs, "");
  // ECS with source prefix 0: the client's address is not to be used.
  Response e = ask("lat.example.com", "A", {.ecs = "0.0.0.0/0"});
  EXPECT_EQ(e.ecs, "0.0.0.0/0/0");
}

TEST_F(Steered, Ecs_OnAStaticAnswerHasScopeZero) {
  Response r = ask("static.example.com", "A", {.ecs = "10.1.2.0/24"});
  EXPECT_EQ(r.answer, std::vector<std::string>{"static.example.com. 300 IN A 192.0.2.99"});
  EXPECT_EQ(r.ecs, "10.1.2.0/24/0");
  Response w = ask("www.example.com", "A", {.ecs = "10.1.2.0/24"});  // weighted, not sticky: not client-specific
  EXPECT_EQ(w.ecs, "10.1.2.0/24/0");
}

TEST_F(Steered, Ecs_MalformedIsFormerr) {
  std::vector<std::vector<uint8_t>> bad = {
      {0, 8, 0, 7, 0, 3, 24, 0, 10, 1, 2},     // family 3
      {0, 8, 0, 8, 0, 1, 33, 0, 10, 1, 2, 3},  // /33 for IPv4
      {0, 8, 0, 8, 0, 1, 24, 0, 10, 1, 2, 3},  // 4 address bytes for /24
      {0, 8, 0, 7, 0, 1, 23, 0, 10, 1, 3},     // bits past the prefix set
      {0, 8, 0, 7, 0, 1, 24, 8, 10, 1, 2},     // scope set in a query
      {0, 8, 0, 3, 0, 1, 0},                   // too short
  };
  for (const auto& opt : bad) {
    Response r = ask("lat.example.com", "A", {.edns_data = opt});
    EXPECT_EQ(r.rcode, "FORMERR");
    EXPECT_TRUE(r.answer.empty());
  }
}

TEST_F(Steered, Multivalue_AtMostNDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    Response r = ask("mv.example.com", "A");
    ASSERT_EQ(r.answer.size(), 2u);
    EXPECT_NE(r.answer[0], r.answer[1]);
    seen.insert(r.answer.begin(), r.answer.end());
  }
  EXPECT_EQ(seen.size(), 3u);  // shuffled: every endpoint shows up
}

TEST_F(Steered, Sticky_TheSameClientKeepsItsAnswer) {
  std::map<std::string, std::set<std::string>> by_client;
  for (int n = 0; n < 20; ++n) {
    std::string net = "10.9." + std::to_string(n) + ".0/24";
    for (int i = 0; i < 50; ++i) by_client[net].insert(ask("split.example.com", "A", {.ecs = net}).answer.at(0));
  }
  std::set<std::string> overall;
  for (const auto& [net, answers] : by_client) {
    EXPECT_EQ(answers.size(), 1u) << net;
    overall.insert(answers.begin(), answers.end());
  }
  EXPECT_EQ(overall.size(), 2u);  // 20 networks split across both
  EXPECT_EQ(ask("split.example.com", "A", {.ecs = "10.9.3.0/24"}).ecs, "10.9.3.0/24/24");
}

TEST_F(Steered, SteeredCname_IsFollowedInsideTheZone) {
  Response r = ask("go.example.com", "A");
  EXPECT_EQ(r.answer, (std::vector<std::string>{"go.example.com. 20 IN CNAME www.example.com.",
                                                "www.example.com. 60 IN A 192.0.2.10"}));
  r = ask("go.example.com", "AAAA");
  EXPECT_EQ(r.answer, (std::vector<std::string>{"go.example.com. 20 IN CNAME www.example.com.",
                                                "www.example.com. 300 IN AAAA 2001:db8::10"}));
}

// --check-config on broken steering: exit 1 and file:line.
std::string check(const std::string& extra_records, const std::string& zone_extra = "") {
  TempDir dir;
  dir.write("example.com.zone", std::string(kZone) + zone_extra);
  std::string cfg = dir.write("vane.yaml", "zones: [{ name: example.com, file: example.com.zone }]\n" + extra_records);
  Process p({vaned_path(), "--check-config", cfg});
  int rc = p.wait(20000);
  return std::to_string(rc) + ": " + p.output();
}

TEST(SteeringConfig, ErrorsNameFileAndLine) {
  struct Case {
    std::string yaml, zone_extra, want;
  } cases[] = {
      {"records:\n  - name: static.example.com\n    type: A\n    endpoints: [{ name: a, address: 192.0.2.1 }]\n", "",
       "vane.yaml:3: steered record static.example.com. conflicts with static data of the same type at "},
      {"records:\n  - name: www.example.org\n    type: A\n    endpoints: [{ name: a, address: 192.0.2.1 }]\n", "",
       "vane.yaml:3: record www.example.org. is outside every zone"},
      {"records:\n  - name: x.example.com\n    type: A\n    endpoints: [{ name: a, address: 2001:db8::1 }]\n", "",
       "vane.yaml:5: endpoint a needs an IPv4 address"},
      {"records:\n  - name: x.example.com\n    type: A\n    endpoints:\n      - { name: a, address: 192.0.2.1 }\n"
       "      - { name: a, address: 192.0.2.2 }\n",
       "", "vane.yaml:7: endpoint a is listed twice"},
      {"records:\n  - name: x.example.com\n    type: A\n    endpoints: [{ name: a, address: 192.0.2.1, weight: 300 "
       "}]\n",
       "", "vane.yaml:5: weight must be between 0 and 255"},
      {"regions: [{ cidr: 10.0.0.0/8, order: [east] }]\nrecords:\n  - name: x.example.com\n    type: A\n"
       "    policy: latency\n    endpoints: [{ name: a, address: 192.0.2.1, region: eats }]\n",
       "", "vane.yaml:7: endpoint a has region 'eats', which no regions: order lists"},
      {"records:\n  - name: x.example.com\n    type: CNAME\n    endpoints: [{ name: a, cname: y.example.com }]\n",
       "x IN A 192.0.2.9\n", "CNAME and other data at x.example.com."},
      {"records:\n  - name: x.example.com\n    type: A\n    policy: nearest\n    endpoints: [{ name: a, address: "
       "192.0.2.1 }]\n",
       "", "vane.yaml:5: policy must be weighted, failover, latency, geo, proximity or multivalue"},
      {"regions: [{ cidr: 10.0.0.1/8, order: [east] }]\n", "", "vane.yaml:2: cidr '10.0.0.1/8' has host bits set"},
  };
  for (const auto& c : cases) {
    std::string out = check(c.yaml, c.zone_extra);
    EXPECT_EQ(out.substr(0, 3), "1: ") << c.yaml;
    EXPECT_NE(out.find(c.want), std::string::npos) << "want: " << c.want << "\ngot: " << out;
  }
}

}  // namespace
}  // namespace vane::test
