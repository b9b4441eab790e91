// Geo steering (DESIGN.md "Geography"): a City-shaped MaxMind database
// written by MaxMind's own writer (libmaxmind-db-writer-perl), vaned and
// gdnsd's geoip plugin on the same database and the same map; every
// network of the database (and addresses in none) asked of both, with ECS.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

struct Place {
  const char* continent;
  const char* country;
  const char* subdivision;
  double lat, lon;
};
const Place kPlaces[] = {
    {"EU", "DE", "BY", 48.1, 11.6},   {"EU", "DE", "BE", 52.5, 13.4},  {"EU", "FR", "", 48.9, 2.3},
    {"EU", "GB", "", 51.5, -0.1},     {"AS", "JP", "13", 35.7, 139.7}, {"AS", "SG", "", 1.3, 103.8},
    {"NA", "US", "CA", 37.4, -122.1}, {"NA", "US", "NY", 40.7, -74.0}, {"NA", "CA", "", 43.7, -79.4},
    {"SA", "BR", "", -23.5, -46.6},   {"OC", "AU", "", -33.9, 151.2},  {"AF", "ZA", "", -26.2, 28.0},
};
constexpr size_t kNumPlaces = sizeof kPlaces / sizeof kPlaces[0];

struct Net {
  std::string network;  // "11.37.0.0/16"
  int place = -1;       // index into kPlaces
};

// ~200 networks: IPv4 of several lengths (sibling halves with the same
// place, which should merge), and IPv6.
std::vector<Net> networks() {
  std::vector<Net> out;
  for (int i = 0; i < 120; ++i) {
    int prefix = 16 + 2 * (i % 4);
    int b = (i * 37) % 256;
    out.push_back({std::to_string(11 + i) + "." + std::to_string(b) + ".0.0/" + std::to_string(prefix),
                   int((i * 7) % kNumPlaces)});
  }
  for (int i = 0; i < 20; ++i) {  // sibling /25s: the same place twice, or two places
    std::string base = "198.18." + std::to_string(i) + ".";
    out.push_back({base + "0/25", int(i % kNumPlaces)});
    out.push_back({base + "128/25", int((i % 2 ? i : i + 5) % kNumPlaces)});
  }
  for (int i = 1; i <= 40; ++i) {
    char v6[64];
    snprintf(v6, sizeof v6, "2001:db8:%x::/48", i);
    out.push_back({v6, int((i * 5) % kNumPlaces)});
    snprintf(v6, sizeof v6, "2a00:%x::/32", i * 3);
    out.push_back({v6, int((i * 11) % kNumPlaces)});
  }
  return out;
}

// The map both servers get, as the test's own model of it.
const char* kRegionsYaml = R"(regions:
  - { cidr: 11.0.128.0/26, order: [sa, us] }
  - { geo: default, order: [us, eu] }
  - { geo: EU, order: [eu, us] }
  - { geo: EU/DE/BY, order: [ap, eu] }
  - { geo: AS, order: [ap, us] }
  - { geo: SA, order: [sa, us] }
  - { geo: NA/US/CA, order: [ap, us] }
  - { geo: OC, order: [ap] }
region_coords: { us: [38.9, -77.0], eu: [50.1, 8.7], ap: [35.7, 139.7], sa: [-23.5, -46.6] }
)";
const char* kGdnsdMap =
    "{ default => [us, eu], EU => { default => [eu, us], DE => { BY => [ap, eu] } }, AS => [ap, us], "
    "SA => [sa, us], NA => { US => { CA => [ap, us] } }, OC => [ap] }";
const std::map<std::string, std::string> kAddress = {
    {"us", "192.0.2.10"}, {"eu", "192.0.2.20"}, {"ap", "192.0.2.30"}, {"sa", "192.0.2.40"}};

std::string geo_region(const Place* p) {  // the first region of the winning rule
  if (!p) return "us";
  std::string c = p->continent, k = p->country, s = p->subdivision;
  if (c == "EU") return k == "DE" && s == "BY" ? "ap" : "eu";
  if (c == "AS") return "ap";
  if (c == "SA") return "sa";
  if (c == "NA" && k == "US" && s == "CA") return "ap";
  if (c == "OC") return "ap";
  return "us";
}

std::string records_yaml() {
  std::string eps;
  for (const auto& [region, addr] : kAddress)
    eps += "      - { name: " + region + "1, address: " + addr + ", region: " + region + " }\n";
  return "records:\n  - name: www.example.com\n    type: A\n    policy: geo\n    endpoints:\n" + eps +
         "  - name: near.example.com\n    type: A\n    policy: proximity\n    endpoints:\n" + eps;
}

void write_db(const TempDir& dir, const std::vector<Net>& nets, const std::string& out, size_t skip = SIZE_MAX) {
  nlohmann::json spec = nlohmann::json::array();
  for (size_t i = 0; i < nets.size(); ++i) {
    if (i == skip) continue;
    const Place& p = kPlaces[nets[i].place];
    nlohmann::json n{{"network", nets[i].network}, {"continent", p.continent}, {"country", p.country},
                     {"lat", p.lat},             {"lon", p.lon}};
    if (*p.subdivision) n["subdivision"] = p.subdivision;
    spec.push_back(n);
  }
  std::string spec_path = dir.write("spec.json", spec.dump());
  Process w({"perl", std::string(VANE_SOURCE_DIR) + "/tests/geo/write_mmdb.pl", spec_path, out});
  ASSERT_EQ(w.wait(60000), 0) << w.output();
}

// An address inside a network: its first address + 1 (text, family).
std::string inside(const std::string& network) {
  std::string a = network.substr(0, network.find('/'));
  uint8_t b[16];
  bool v4 = inet_pton(AF_INET, a.c_str(), b) == 1;
  if (!v4) inet_pton(AF_INET6, a.c_str(), b);
  b[v4 ? 3 : 15] |= 1;
  char t[INET6_ADDRSTRLEN];
  inet_ntop(v4 ? AF_INET : AF_INET6, b, t, sizeof t);
  return t;
}

struct Answer {
  std::string address;
  int scope = -1;
};

Answer ask(uint16_t port, const std::string& qname, const std::string& ecs) {
  auto r = query("127.0.0.1", port, qname, "A", {.ecs = ecs});
  Answer a;
  if (!r || r->rcode != "NOERROR" || r->answer.size() != 1) return a;
  a.address = r->answer[0].substr(r->answer[0].rfind(' ') + 1);
  if (r->ecs.rfind('/') != std::string::npos) a.scope = std::stoi(r->ecs.substr(r->ecs.rfind('/') + 1));
  return a;
}

// Both servers on one database.
class Geo : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/sbin/gdnsd", X_OK) != 0) GTEST_FAIL() << "gdnsd not installed (apt-get install gdnsd)";
    nets_ = networks();
    db_ = dir_.path() + "/geoip/test.mmdb";
    mkdir((dir_.path() + "/geoip").c_str(), 0755);
    write_db(dir_, nets_, db_);
    dir_.write("example.com.zone", kExampleZone);
  }
  void start_vane(const std::string& more = "") {
    vaned_ = std::make_unique<Vaned>(dir_, "listen: [\"127.0.0.1:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\" }\n"
                                           "geo: { database: geoip/test.mmdb }\n"
                                           "zones:\n  - { name: example.com, file: example.com.zone }\n" +
                                               std::string(kRegionsYaml) + records_yaml() + more);
    http_ = http_port(vaned_->process());
  }
  void start_gdnsd() {
    std::string d = dir_.path() + "/gdnsd";
    for (const char* sub : {"", "/zones", "/run", "/state", "/geoip"}) mkdir((d + sub).c_str(), 0755);
    symlink(db_.c_str(), (d + "/geoip/test.mmdb").c_str());
    gdnsd_port_ = free_port();
    std::string dcmap;
    for (const auto& [region, addr] : kAddress) dcmap += region + " => " + addr + ", ";
    dir_.write("gdnsd/config",
               "options => { listen => [ 127.0.0.1 ], dns_port => " + std::to_string(gdnsd_port_) +
                   ", udp_threads => 1, tcp_threads => 1, run_dir => " + d + "/run, state_dir => " + d +
                   "/state }\nplugins => { geoip => { maps => {\n"
                   "  m => { geoip2_db => test.mmdb, datacenters => [us, eu, ap, sa], map => " +
                   kGdnsdMap +
                   ", nets => { 11.0.128.0/26 => [sa, us] } }\n"
                   "  p => { geoip2_db => test.mmdb, datacenters => [us, eu, ap, sa], auto_dc_coords => { us => [38.9, "
                   "-77.0], eu => [50.1, 8.7], ap => [35.7, 139.7], sa => [-23.5, -46.6] }, nets => { 11.0.128.0/26 => "
                   "[sa, us] } }\n"
                   "}\nresources => { www => { map => m, dcmap => { " +
                   dcmap + "} }, near => { map => p, dcmap => { " + dcmap + "} } } } }\n");
    std::string zone = "@ 300 SOA ns hostmaster 1 3600 600 86400 60\n@ 300 NS ns\nns 300 A 192.0.2.1\n"
                       "www 60 DYNA geoip!www\nnear 60 DYNA geoip!near\n";
    dir_.write("gdnsd/zones/example.com", zone);
    gdnsd_ = std::make_unique<Process>(std::vector<std::string>{"/usr/sbin/gdnsd", "-c", d, "-f", "start"});
    ASSERT_TRUE(gdnsd_->wait_for_output("DNS listeners started", 15000)) << gdnsd_->output();
  }

  TempDir dir_;
  std::vector<Net> nets_;
  std::string db_;
  std::unique_ptr<Vaned> vaned_;
  std::unique_ptr<Process> gdnsd_;
  uint16_t http_ = 0, gdnsd_port_ = 0;
};

// Every network's answer, and whether scope S around client C covers only
// clients the model gives the same region (IPv4 networks, not the override).
bool scope_is_safe(const std::vector<Net>& nets, const std::string& client, int scope, const std::string& region) {
  uint8_t c[4];
  if (inet_pton(AF_INET, client.c_str(), c) != 1) return true;
  uint32_t ca = ntohl(*reinterpret_cast<uint32_t*>(c));
  uint32_t mask = scope == 0 ? 0 : ~uint32_t(0) << (32 - scope);
  // Inside the network rule 11.0.128.0/26, which wins over the database: sa.
  if (scope >= 26 && (ca & 0xffffffc0) == 0x0b008000) return region == "sa";
  uint64_t covered = 0;
  for (const auto& n : nets) {
    uint8_t b[4];
    std::string a = n.network.substr(0, n.network.find('/'));
    if (inet_pton(AF_INET, a.c_str(), b) != 1) continue;
    int p = std::stoi(n.network.substr(n.network.find('/') + 1));
    uint32_t na = ntohl(*reinterpret_cast<uint32_t*>(b));
    uint32_t nmask = ~uint32_t(0) << (32 - p);
    bool overlap = p >= scope ? (na & mask) == (ca & mask) : (ca & nmask) == na;
    if (!overlap) continue;
    if (geo_region(&kPlaces[n.place]) != region) return false;
    covered += p >= scope ? uint64_t(1) << (32 - p) : uint64_t(1) << (32 - scope);
  }
  // 11.0.128.0/26 (the network rule: sa)
  if ((ca & mask) == (0x0b008000 & mask) && scope <= 26 && region != "sa") return false;
  if (covered < (uint64_t(1) << (32 - scope)) && region != geo_region(nullptr)) return false;  // space in no network
  return true;
}

TEST_F(Geo, EveryNetworkAndAddressesInNone_SameRegionAsGdnsd_ScopesNoLongerAndSafe) {
  start_vane();
  start_gdnsd();
  std::vector<std::string> clients;
  for (const auto& n : nets_) clients.push_back(inside(n.network));
  for (const char* none : {"10.1.2.3", "198.19.0.1", "192.0.2.77", "2001:db8:ffff::1", "2c0f:1::1", "11.0.128.5",
                           "11.0.128.200"})
    clients.push_back(none);
  for (int i = 0; i < 8; ++i) clients.push_back("::ffff:" + inside(nets_[size_t(i) * 13].network));
  size_t asked = 0, shorter = 0;
  for (const std::string& client : clients) {
    std::string ecs = client + (client.find(':') == std::string::npos ? "/32" : "/128");
    for (const char* qname : {"www.example.com", "near.example.com"}) {
      Answer v = ask(vaned_->port(), qname, ecs), g = ask(gdnsd_port_, qname, ecs);
      ASSERT_FALSE(v.address.empty()) << qname << " " << ecs;
      EXPECT_EQ(v.address, g.address) << qname << " for " << ecs;
      EXPECT_LE(v.scope, g.scope) << qname << " for " << ecs << ": vane's scope is longer than gdnsd's";
      shorter += v.scope < g.scope;
      if (std::string(qname) == "www.example.com") {
        std::string region;
        for (const auto& [r, a] : kAddress)
          if (a == v.address) region = r;
        EXPECT_TRUE(scope_is_safe(nets_, client, v.scope, region))
            << ecs << " answered " << region << " with scope /" << v.scope << ": covers a client with another answer";
      }
      ++asked;
    }
  }
  EXPECT_GE(asked, 2 * nets_.size());
  RecordProperty("scopes_shorter_than_gdnsd", std::to_string(shorter));
  // A wider ECS source prefix (a resolver that sends /24, /56): the same answers.
  for (size_t i = 0; i < 40; ++i) {
    const std::string& n = nets_[i * 5].network;
    std::string client = inside(n);
    std::string ecs = client + (client.find(':') == std::string::npos ? "/24" : "/56");
    Answer v = ask(vaned_->port(), "www.example.com", ecs), g = ask(gdnsd_port_, "www.example.com", ecs);
    EXPECT_EQ(v.address, g.address) << ecs;
    EXPECT_LE(v.scope, g.scope) << ecs;
  }
}

TEST_F(Geo, HealthDrainsAndTheSourceAddress_ExplainNamesNetworkLocationRuleAndScope) {
  start_vane(R"(  - name: all.example.com
    type: A
    policy: geo
    pick: all
    endpoints:
      - { name: e1, address: 192.0.2.21, region: eu }
      - { name: e2, address: 192.0.2.22, region: eu }
      - { name: u1, address: 192.0.2.11, region: us }
)");
  // pick: all: every up endpoint of the first region (a Paris client: EU).
  std::string paris;
  for (const auto& n : nets_)
    if (std::string(kPlaces[n.place].country) == "FR" && n.network.find(':') == std::string::npos) {
      paris = inside(n.network);
      break;
    }
  auto all = query("127.0.0.1", vaned_->port(), "all.example.com", "A", {.ecs = paris + "/32"});
  ASSERT_TRUE(all);
  std::vector<std::string> got = all->answer;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"all.example.com. 60 IN A 192.0.2.21", "all.example.com. 60 IN A 192.0.2.22"}));
  // No ECS: the source address (127.0.0.1, in no network) decides: default.
  auto r = query("127.0.0.1", vaned_->port(), "www.example.com", "A");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer, std::vector<std::string>{"www.example.com. 60 IN A 192.0.2.10"});
  EXPECT_EQ(r->ecs, "");
  // A Munich client (EU/DE/BY: [ap, eu]) follows drains down its order.
  std::string munich;
  for (const auto& n : nets_)
    if (std::string(kPlaces[n.place].subdivision) == "BY" && n.network.find(':') == std::string::npos) {
      munich = inside(n.network);
      break;
    }
  ASSERT_FALSE(munich.empty());
  EXPECT_EQ(ask(vaned_->port(), "www.example.com", munich + "/32").address, "192.0.2.30");
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", {"drain", "www.example.com", "ap1"}, out), 0) << out;
  EXPECT_EQ(ask(vaned_->port(), "www.example.com", munich + "/32").address, "192.0.2.20");
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", {"force", "www.example.com", "eu1", "down"}, out), 0)
      << out;
  // Neither region of the order has an up endpoint: every up endpoint is a candidate.
  std::string a = ask(vaned_->port(), "www.example.com", munich + "/32").address;
  EXPECT_TRUE(a == "192.0.2.10" || a == "192.0.2.40") << a;
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", {"undrain", "www.example.com", "ap1"}, out), 0) << out;
  EXPECT_EQ(ask(vaned_->port(), "www.example.com", munich + "/32").address, "192.0.2.30");
  // explain names the database network, the location, the rule and the scope.
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock",
                    {"explain", "www.example.com", "--client", munich}, out),
            0)
      << out;
  EXPECT_NE(out.find("database network "), std::string::npos) << out;
  EXPECT_NE(out.find(": EU/DE/BY at 48.1000, 11.6000"), std::string::npos) << out;
  EXPECT_NE(out.find("rule geo: EU/DE/BY (line "), std::string::npos) << out;
  EXPECT_NE(out.find("-> order [ap, eu]"), std::string::npos) << out;
  EXPECT_NE(out.find("ECS scope /"), std::string::npos) << out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock",
                    {"explain", "near.example.com", "--client", munich + "/24"}, out),
            0)
      << out;
  EXPECT_NE(out.find("distances: us "), std::string::npos) << out;
  EXPECT_NE(out.find("-> order [eu, "), std::string::npos) << out;
  // status: the database's type, build date and node count; /metrics its age.
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", {"status"}, out), 0) << out;
  EXPECT_NE(out.find("geo database " + dir_.path() + "/geoip/test.mmdb: GeoLite2-City, built "), std::string::npos)
      << out;
  EXPECT_NE(out.find(" nodes; decision tables: "), std::string::npos) << out;
  double age = metric(http_, "vane_geo_database_age_seconds");
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 600);
}

TEST_F(Geo, NewDatabaseByRenameUsedWithinSeconds_CorruptOneKeepsTheOld_MissingIsAClearError) {
  start_vane();
  std::string client = inside(nets_[0].network) + "/32";
  std::string before = ask(vaned_->port(), "www.example.com", client).address;
  // The first network moves to Sao Paulo (SA: [sa, us]).
  std::vector<Net> moved = nets_;
  moved[0].place = 9;
  ASSERT_NE(before, "192.0.2.40");
  // Under load (dnsperf, 3 000 q/s with the client's ECS): nothing lost.
  std::string qfile = dir_.write("queries.txt", "www.example.com A\n");
  uint8_t a[4];
  inet_pton(AF_INET, inside(nets_[0].network).c_str(), a);
  char ecs[40];
  snprintf(ecs, sizeof ecs, "8:00012000%02x%02x%02x%02x", a[0], a[1], a[2], a[3]);
  Process load({"dnsperf", "-s", "127.0.0.1", "-p", std::to_string(vaned_->port()), "-d", qfile, "-l", "4", "-Q", "3000",
                "-E", ecs});
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  write_db(dir_, moved, db_);  // written aside, renamed over the old one
  EXPECT_TRUE(eventually([&] { return ask(vaned_->port(), "www.example.com", client).address == "192.0.2.40"; }, 5000));
  ASSERT_EQ(load.wait(15000), 0) << load.output();
  EXPECT_NE(load.output().find("Queries lost:         0 (0.00%)"), std::string::npos) << load.output();
  EXPECT_TRUE(vaned_->process().wait_for_output("geo: " + db_ + " changed", 1000));
  // A corrupt file renamed in: logged, counted, the tables from before keep serving.
  std::string bad = dir_.write("geoip/bad.mmdb", "this is not a MaxMind database\n");
  ASSERT_EQ(rename(bad.c_str(), db_.c_str()), 0);
  EXPECT_TRUE(vaned_->process().wait_for_output("The MaxMind DB file contains invalid metadata", 5000))
      << vaned_->process().output();
  EXPECT_TRUE(eventually([&] { return metric(http_, "vane_geo_database_errors_total") == 1; }, 3000));
  EXPECT_EQ(ask(vaned_->port(), "www.example.com", client).address, "192.0.2.40");
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", {"status"}, out), 0) << out;
  EXPECT_NE(out.find("A NEW FILE COULD NOT BE USED (1 errors), still serving the one above"), std::string::npos) << out;
  // At start: missing or corrupt is a clear error naming the file.
  vaned_.reset();
  unlink(db_.c_str());
  Process missing({vaned_path(), "--config", dir_.path() + "/vane.yaml"});
  EXPECT_NE(missing.wait(10000), 0);
  EXPECT_NE(missing.output().find("vane.yaml:4: geo: database " + db_ + ": cannot open the geo database"),
            std::string::npos)
      << missing.output();
}

TEST(GeoConfig, RulesAndCoordsChecked_WithFileAndLine) {
  TempDir dir;
  dir.write("example.com.zone", kExampleZone);
  auto check = [&](const std::string& body) {
    dir.write("vane.yaml", "zones:\n  - { name: example.com, file: example.com.zone }\n" + body);
    Process p({vaned_path(), "--check-config", dir.path() + "/vane.yaml"});
    p.wait(10000);
    return p.output();
  };
  EXPECT_NE(check("regions:\n  - { geo: EU, order: [eu] }\n").find("vane.yaml:4: geo: rules in regions: need geo: { database: FILE }"),
            std::string::npos);
  EXPECT_NE(check("geo: { database: x.mmdb }\nregions:\n  - { geo: XX/DE, order: [eu] }\n").find("vane.yaml:5:"),
            std::string::npos);
  EXPECT_NE(check("geo: { database: x.mmdb }\nregions:\n  - { geo: EU, cidr: 10.0.0.0/8, order: [eu] }\n")
                .find("matches a cidr or a geo, not both"),
            std::string::npos);
  EXPECT_NE(check("geo: { database: x.mmdb }\nregion_coords: { eu: [95, 8] }\n").find("coordinates must be [latitude, longitude]"),
            std::string::npos);
  EXPECT_NE(check("records:\n  - { name: n.example.com, type: A, policy: proximity, endpoints: [{ name: a, address: "
                  "192.0.2.1, region: eu }] }\n")
                .find("needs geo: { database: FILE } and region_coords"),
            std::string::npos);
  EXPECT_NE(check("geo: { database: x.mmdb }\nregions:\n  - { geo: default, order: [eu] }\nrecords:\n  - { name: "
                  "n.example.com, type: A, policy: geo, endpoints: [{ name: a, address: 192.0.2.1 }] }\n")
                .find("needs a region"),
            std::string::npos);
}

}  // namespace
}  // namespace vane::test
