// Reload (SIGHUP) and --check-config with the real vaned: new data appears,
// bad zones and configs are refused with file:line while the old snapshot
// keeps serving, and no query is lost while reloads happen under load; a
// stop with a reload and everything else in flight exits cleanly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "dns_client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"

namespace vane::test {
namespace {

const char* kConfig = R"(
listen: ["127.0.0.1:0"]
threads: 2
zones: [{ name: r.test, file: r.test.zone }]
)";

std::vector<std::string> www(uint16_t port) {
  auto r = query("127.0.0.1", port, "www.r.test", "A");
  return r ? r->answer : std::vector<std::string>{"<no answer>"};
}

// Zone z<i>.test: SOA (its serial), NS, ns and www (line 6); line 7 is
// where a test appends a bad record.
std::string numbered_zone(int i, const std::string& www, int serial) {
  return "$ORIGIN z" + std::to_string(i) + ".test.\n$TTL 300\n@ IN SOA ns hostmaster " + std::to_string(serial) +
         " 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\nwww IN A " + www + "\n";
}

TEST(Reload, Sighup_ServesTheNewZone) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  Vaned v(dir, kConfig);
  EXPECT_EQ(www(v.port()), std::vector<std::string>{"www.r.test. 300 IN A 192.0.2.10"});
  dir.write("r.test.zone", zone_with("192.0.2.20", 2));
  v.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return www(v.port()) == std::vector<std::string>{"www.r.test. 300 IN A 192.0.2.20"}; }));
  EXPECT_TRUE(v.process().wait_for_output("reloaded 1 zones", 2000));
}

TEST(Reload, BadZone_IsRefusedWithFileLineAndOldDataKeepsServing) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  Vaned v(dir, kConfig);
  dir.write("r.test.zone", zone_with("192.0.2.20", 2) + "bad IN A 999.1.1.1\n");
  v.process().signal(SIGHUP);
  EXPECT_TRUE(v.process().wait_for_output("reload refused", 5000)) << v.process().output();
  EXPECT_NE(v.process().output().find("r.test.zone:7:"), std::string::npos) << v.process().output();
  EXPECT_EQ(www(v.port()), std::vector<std::string>{"www.r.test. 300 IN A 192.0.2.10"});
}

TEST(Reload, BadConfig_IsRefusedWithFileLineAndOldDataKeepsServing) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  Vaned v(dir, kConfig);
  dir.write("vane.yaml", std::string(kConfig) + "bogus_key: 1\n");
  v.process().signal(SIGHUP);
  EXPECT_TRUE(v.process().wait_for_output("reload refused", 5000));
  EXPECT_NE(v.process().output().find("vane.yaml:5: unknown key 'bogus_key'"), std::string::npos)
      << v.process().output();
  EXPECT_EQ(www(v.port()), std::vector<std::string>{"www.r.test. 300 IN A 192.0.2.10"});
}

// zone_with() and n more names: a zone that takes a while to read.
std::string big_zone(const std::string& www, int serial, int n) {
  std::string z = zone_with(www, serial);
  for (int i = 0; i < n; ++i) z += "h" + std::to_string(i) + " IN A 10.0.0.1\n";
  return z;
}

// SIGHUP, then SIGTERM once the reload has begun: the exit code and the output.
std::pair<int, std::string> reload_then_stop(Vaned& v) {
  v.process().signal(SIGHUP);
  if (!v.process().wait_for_output("SIGHUP: reloading", 2000)) return {-2, v.process().output()};
  v.process().signal(SIGTERM);
  int rc = v.process().wait(30000);
  return {rc, v.process().output()};
}

// SIGTERM while a SIGHUP's reload is still being read: vaned stops cleanly
// and applies nothing of it. It used to commit the reload after the health
// checker had stopped and abort in libuv (a wake sent to a closed loop).
TEST(Reload, SigtermWhileAReloadIsRead_StopsCleanly) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  Vaned v(dir, kConfig);
  dir.write("r.test.zone", big_zone("192.0.2.20", 2, 200000));  // long enough to read that SIGTERM comes first
  auto [rc, out] = reload_then_stop(v);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("reload abandoned: vaned is stopping"), std::string::npos) << out;
  EXPECT_EQ(out.find("reloaded 1 zones"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped"), std::string::npos) << out;
}

// A stop with everything in flight at once: HTTP probes hanging on
// tarpits, an AXFR to a client that reads nothing, an idle TCP client,
// the query log, a reload being read. vaned exits 0 and says "stopped";
// under ASan any use of what the stop freed fails it.
TEST(Stop, EverythingInFlight_ExitsCleanly) {
  TempDir dir;
  std::vector<std::unique_ptr<Tarpit>> pits;
  std::string endpoints;
  for (int i = 0; i < 5; ++i) {
    pits.push_back(std::make_unique<Tarpit>());
    endpoints += std::string(i ? ", " : "") + "{ name: p" + std::to_string(i) + ", address: 192.0.2." +
                 std::to_string(10 + i) + ", priority: " + std::to_string(i + 1) +
                 ", check: hang, host: 127.0.0.1, port: " + std::to_string(pits[i]->port()) + " }";
  }
  dir.write("r.test.zone", big_zone("192.0.2.10", 1, 20000));
  Vaned v(dir,
          "listen: [\"127.0.0.1:0\"]\nthreads: 2\n"
          "dnstap: { file: " +
              dir.path() +
              "/dnstap.fstrm }\n"
              "zones: [{ name: r.test, file: r.test.zone, transfer: { allow: [{ cidr: 127.0.0.1/32 }] } }]\n"
              "checks:\n  hang: { type: http, path: /health, interval: 1s, timeout: 900ms }\n"
              "records:\n  - { name: app.r.test, type: A, policy: failover, endpoints: [" +
              endpoints + "] }\n");
  ASSERT_TRUE(eventually(
      [&] { return std::all_of(pits.begin(), pits.end(), [](auto& p) { return p->accepted() > 0; }); }, 5000));
  ASSERT_TRUE(query("127.0.0.1", v.port(), "app.r.test", "A"));  // logged
  // An AXFR asked for and never read: the server's sending stalls on a full socket.
  auto connect_tcp = [&](int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(v.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  };
  int axfr = connect_tcp(4096), idle = connect_tcp(0);
  std::vector<uint8_t> q = make_query("r.test", "AXFR", QueryOpts{.tcp = true}, 7);
  q.insert(q.begin(), {uint8_t(q.size() >> 8), uint8_t(q.size())});
  ASSERT_EQ(write(axfr, q.data(), q.size()), ssize_t(q.size()));
  ASSERT_TRUE(v.process().wait_for_output("AXFR of r.test.", 5000)) << v.process().output();
  // And a reload being read.
  dir.write("r.test.zone", big_zone("192.0.2.20", 2, 20000));
  auto [rc, out] = reload_then_stop(v);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("stopped"), std::string::npos) << out;
  EXPECT_EQ(out.find("Sanitizer"), std::string::npos) << out;
  EXPECT_EQ(out.find("runtime error"), std::string::npos) << out;
  close(axfr);
  close(idle);
}

// Kept-alive HTTP clients (a Prometheus scrape's connection, an API
// client's) hold a stop for at most a second: it took httplib's 5 s each,
// one server after the other.
TEST(Stop, KeptAliveHttpClients_HoldItAtMostASecond) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  dir.write("ops.token", "0123456789abcdef0123456789abcdef\n");
  Vaned v(dir, std::string(kConfig) +
                   "http: { listen: \"127.0.0.1:0\" }\n"
                   "api: { listen: \"127.0.0.1:0\", tokens: [{ name: ops, token_file: ops.token, scope: admin }] }\n");
  auto kept = [](uint16_t port, const std::string& path) {  // a connection with one exchange done, left open
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << port;
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(write(fd, req.data(), req.size()), ssize_t(req.size()));
    char buf[4096];
    EXPECT_GT(read(fd, buf, sizeof buf), 0) << port;  // the answer; the connection stays
    return fd;
  };
  int metrics = kept(http_port(v.process()), "/healthz"), api = kept(api_port(v.process()), "/v1/status");
  v.process().signal(SIGTERM);
  EXPECT_EQ(v.process().wait(3000), 0) << v.process().output();  // before: 10 s
  close(metrics);
  close(api);
}

TEST(Reload, UnderLoad_NoQueryIsLost) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  Vaned v(dir, kConfig);
  // One client sends queries in lock-step (each waits for its answer, with a
  // generous timeout) while the zone is reloaded many times.
  std::atomic<bool> done{false};
  std::atomic<int> sent{0}, answered{0}, wrong{0};
  std::thread client([&] {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(v.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint16_t id = 0;
    while (!done.load() && sent.load() < 20000) {
      auto q = make_query("www.r.test", "A", {}, ++id);
      sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      ++sent;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      uint8_t buf[512];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      auto r = parse_response(std::vector<uint8_t>(buf, buf + std::max<ssize_t>(n, 0)));
      if (r && r->id == id && r->answer.size() == 1) ++answered;
      else ++wrong;
    }
    close(fd);
  });
  for (int i = 0; i < 10; ++i) {
    dir.write("r.test.zone", zone_with(i % 2 ? "192.0.2.10" : "192.0.2.11", 10 + i));
    v.process().signal(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  done = true;
  client.join();
  EXPECT_GT(sent.load(), 100);
  EXPECT_EQ(answered.load(), sent.load());
  EXPECT_EQ(wrong.load(), 0);
}

// A start with many zones reads them while vane.yaml is still being parsed
// (server::ZonePreload): whichever way each zone was read, every zone
// answers, a zone that a record below steers in serves that record, and
// each zone is logged once, in config order.
TEST(Start, ManyZones_EachLoadedOnceInConfigOrder_SteeredZoneKeepsItsRecord) {
  TempDir dir;
  const int kZones = 300;
  std::string cfg = "listen: [\"127.0.0.1:0\"]\nzones:\n";
  for (int i = 0; i < kZones; ++i) {
    dir.write("z" + std::to_string(i) + ".zone", "$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\n"
                                                 "ns IN A 192.0.2.1\nwww IN A 192.0.2." + std::to_string(i % 250) + "\n");
    cfg += "  - { name: z" + std::to_string(i) + ".test, file: z" + std::to_string(i) + ".zone }\n";
  }
  cfg += "records:\n  - { name: app.z150.test, type: A, endpoints: [{ name: one, address: 198.51.100.1 }] }\n";
  Vaned v(dir, cfg);
  for (int i : {0, 150, 299}) {
    auto r = query("127.0.0.1", v.port(), "www.z" + std::to_string(i) + ".test", "A");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->answer, std::vector<std::string>{"www.z" + std::to_string(i) + ".test. 300 IN A 192.0.2." +
                                                  std::to_string(i % 250)});
  }
  auto app = query("127.0.0.1", v.port(), "app.z150.test", "A");
  ASSERT_TRUE(app);
  EXPECT_EQ(app->answer, std::vector<std::string>{"app.z150.test. 60 IN A 198.51.100.1"});
  std::string log = v.process().output();
  size_t at = 0;
  for (int i = 0; i < kZones; ++i) {
    std::string line = "zone z" + std::to_string(i) + ".test. loaded from ";
    size_t p = log.find(line, at);
    ASSERT_NE(p, std::string::npos) << "z" << i << " not logged after z" << i - 1 << ":\n" << log;
    EXPECT_EQ(log.find(line, p + 1), std::string::npos) << "z" << i << " logged twice";
    at = p;
  }
  EXPECT_NE(log.find("zone z150.test. loaded from " + dir.path() + "/z150.zone: 5 records (1 steered)"), std::string::npos)
      << log;
}

// vanectl reload ZONE: among 200 zones, under a lock-step query load over
// all of them, one zone's change is served and nothing is lost; every other
// zone answers byte for byte as before (its snapshot untouched); a bad file
// is refused with file:line and the old copy keeps answering; an unknown
// zone is named.
TEST(Reload, OneZoneAmongMany_UnderLoad_OthersUntouched) {
  TempDir dir;
  std::string cfg = "listen: [\"127.0.0.1:0\"]\nthreads: 2\nzones:\n";
  const int kZones = 200;
  for (int i = 0; i < kZones; ++i) {
    dir.write("z" + std::to_string(i) + ".zone", numbered_zone(i, "10.0.0." + std::to_string(i % 250), 1));
    cfg += "  - { name: z" + std::to_string(i) + ".test, file: z" + std::to_string(i) + ".zone }\n";
  }
  cfg += "admin: { socket: admin.sock }\n";
  Vaned v(dir, cfg);
  auto raw = [&](int i, uint16_t id) {
    auto r = exchange_raw("127.0.0.1", v.port(), make_query("www.z" + std::to_string(i) + ".test", "A", {}, id), false);
    return r ? *r : std::vector<uint8_t>{};
  };
  std::vector<std::vector<uint8_t>> before;
  for (int i = 0; i < kZones; ++i) before.push_back(raw(i, uint16_t(i)));

  std::atomic<bool> done{false};
  std::atomic<int> sent{0}, answered{0};
  std::thread client([&] {
    for (uint16_t id = 1; !done.load() && sent.load() < 20000; ++id) {
      ++sent;
      auto r = parse_response(raw(id % kZones, id));
      if (r && r->id == id && r->rcode == "NOERROR" && r->answer.size() == 1) ++answered;
    }
  });
  auto ctl = [&](const std::vector<std::string>& args, std::string& out) {
    return run_ctl(VANECTL_PATH, dir.path() + "/admin.sock", args, out);
  };
  std::string out;
  dir.write("z7.zone", numbered_zone(7, "192.0.2.77", 2) + "bad IN A 999.1.1.1\n");
  EXPECT_EQ(ctl({"reload", "z7.test"}, out), 1);
  EXPECT_NE(out.find("z7.zone:7:"), std::string::npos) << out;
  dir.write("z7.zone", numbered_zone(7, "192.0.2.77", 3));
  EXPECT_EQ(ctl({"reload", "z7.test"}, out), 0) << out;
  EXPECT_NE(out.find("reloaded zone z7.test.: 4 records"), std::string::npos) << out;
  EXPECT_NE(out.find("the other 199 zones untouched"), std::string::npos) << out;
  auto r = query("127.0.0.1", v.port(), "www.z7.test", "A");  // served when the command returns
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer, std::vector<std::string>{"www.z7.test. 300 IN A 192.0.2.77"});
  EXPECT_EQ(ctl({"reload", "nope.test"}, out), 1);
  EXPECT_NE(out.find("zone nope.test. is not served here"), std::string::npos) << out;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  client.join();
  EXPECT_GT(sent.load(), 100);
  EXPECT_EQ(answered.load(), sent.load());
  for (int i = 0; i < kZones; ++i)
    if (i != 7) {
      EXPECT_EQ(raw(i, uint16_t(i)), before[size_t(i)]) << "zone z" << i;
    }
}

// Zone reloads asked for while one runs (a secondary's transfers ending
// together, many `vanectl reload ZONE`) are read and published together,
// one snapshot for all of them, and each is answered for its own zone: a
// bad file among them is refused with file:line and its old copy keeps
// answering while the others are served; a zone asked for twice is read once.
TEST(Reload, ZonesAskedTogether_OneSnapshot_EachAnsweredForItself) {
  TempDir dir;
  std::string cfg = "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones:\n";
  const int kZones = 60, kChanged = 40, kBad = 13;
  for (int i = 0; i < kZones; ++i) {
    dir.write("z" + std::to_string(i) + ".zone", numbered_zone(i, "10.0.0." + std::to_string(i), 1));
    cfg += "  - { name: z" + std::to_string(i) + ".test, file: z" + std::to_string(i) + ".zone }\n";
  }
  Vaned v(dir, cfg + "admin: { socket: admin.sock }\n");
  for (int i = 0; i < kChanged; ++i)
    dir.write("z" + std::to_string(i) + ".zone",
              numbered_zone(i, "192.0.2." + std::to_string(100 + i), 2) + (i == kBad ? "bad IN A 999.1.1.1\n" : ""));
  // Every connection is made before any request is sent; z5 is asked twice.
  std::vector<int> zones;
  for (int i = 0; i < kChanged; ++i) zones.push_back(i);
  zones.push_back(5);
  std::vector<int> fds;
  for (size_t k = 0; k < zones.size(); ++k) {
    int fd = unix_socket(dir.path() + "/admin.sock");
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  for (size_t k = 0; k < zones.size(); ++k) {
    std::string req = "{\"cmd\":\"reload\",\"zone\":\"z" + std::to_string(zones[k]) + ".test\"}\n";
    ASSERT_EQ(send(fds[k], req.data(), req.size(), MSG_NOSIGNAL), ssize_t(req.size()));
  }
  std::map<std::string, int> generations;  // "(generation N)" -> zones answered with it
  for (size_t k = 0; k < zones.size(); ++k) {
    std::string in;
    char buf[1024];
    while (in.find('\n') == std::string::npos) {
      ssize_t n = recv(fds[k], buf, sizeof buf, 0);
      ASSERT_GT(n, 0) << "zone z" << zones[k] << " got only: " << in;
      in.append(buf, size_t(n));
    }
    close(fds[k]);
    auto answer = nlohmann::json::parse(in);
    std::string name = "z" + std::to_string(zones[k]) + ".test.";
    if (zones[k] == kBad) {
      EXPECT_FALSE(answer["ok"].get<bool>()) << in;
      EXPECT_NE(answer.value("error", "").find("z13.zone:7:"), std::string::npos) << in;
      continue;
    }
    ASSERT_TRUE(answer["ok"].get<bool>()) << in;
    std::string message = answer["message"].get<std::string>();
    EXPECT_EQ(message.rfind("reloaded zone " + name + ": 4 records in ", 0), 0u) << message;
    generations[message.substr(message.rfind("(generation "))]++;
  }
  // Batched: fewer snapshots than zones (the first request may run alone).
  EXPECT_LT(generations.size(), size_t(kChanged - 1)) << ::testing::PrintToString(generations);
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir.path() + "/admin.sock", {"status", "--json"}, out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out).value("generation", 0), int(1 + generations.size())) << out;
  for (int i = 0; i < kZones; ++i) {
    std::string want = i < kChanged && i != kBad ? "192.0.2." + std::to_string(100 + i) : "10.0.0." + std::to_string(i);
    auto r = query("127.0.0.1", v.port(), "www.z" + std::to_string(i) + ".test", "A");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->answer, std::vector<std::string>{"www.z" + std::to_string(i) + ".test. 300 IN A " + want});
  }
  std::string log = v.process().output();
  EXPECT_NE(log.find("in one reload with"), std::string::npos) << log;
}

// A whole reload (SIGHUP) reads again only the zones whose files — an
// $INCLUDEd one too — or whose part of the config changed; the others are
// the very same objects, answering byte for byte as before.
TEST(Reload, Sighup_ReadsAgainOnlyWhatChanged) {
  TempDir dir;
  const int kZones = 50;
  auto zone = [](int i, const std::string& www) {
    return "$ORIGIN z" + std::to_string(i) + ".test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n"
           "@ IN NS ns\nns IN A 192.0.2.1\nwww IN A " + www + "\n$INCLUDE z" + std::to_string(i) + ".inc\n";
  };
  auto config = [&](const std::string& app_address) {
    std::string cfg = "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones:\n";
    for (int i = 0; i < kZones; ++i)
      cfg += "  - { name: z" + std::to_string(i) + ".test, file: z" + std::to_string(i) + ".zone }\n";
    return cfg + "records:\n  - name: app.z3.test\n    type: A\n    endpoints:\n      - { name: a, address: " +
           app_address + " }\n";
  };
  for (int i = 0; i < kZones; ++i) {
    dir.write("z" + std::to_string(i) + ".zone", zone(i, "10.0.0." + std::to_string(i)));
    dir.write("z" + std::to_string(i) + ".inc", "mail IN A 10.1.0." + std::to_string(i) + "\n");
  }
  Vaned v(dir, config("192.0.2.3"));
  auto answer = [&](const std::string& name) {
    auto r = query("127.0.0.1", v.port(), name, "A");
    return r && !r->answer.empty() ? r->answer[0] : std::string("<none>");
  };
  // Each SIGHUP's own log line: the n-th "reloaded" line must say `expect`.
  int reloads = 0;
  auto reload = [&](const std::string& expect) {
    v.process().signal(SIGHUP);
    ++reloads;
    std::string line;
    ASSERT_TRUE(eventually([&] {
      std::string out = v.process().output();
      size_t at = std::string::npos;
      for (int n = 0, pos = 0; n < reloads; ++n, pos = int(at) + 1)
        if ((at = out.find("reloaded 50 zones", size_t(pos))) == std::string::npos) return false;
      line = out.substr(at, out.find('\n', at) - at);
      return true;
    })) << v.process().output();
    EXPECT_EQ(line.rfind(expect, 0), 0u) << line;
  };
  // Nothing changed: nothing read again.
  reload("reloaded 50 zones (0 read again");
  // One master file.
  dir.write("z7.zone", zone(7, "192.0.2.77"));
  reload("reloaded 50 zones (1 read again");
  EXPECT_EQ(answer("www.z7.test"), "www.z7.test. 300 IN A 192.0.2.77");
  // One $INCLUDEd file (another size, so that the check does not hinge on the clock's resolution).
  dir.write("z9.inc", "mail IN A 192.0.2.99\n");
  reload("reloaded 50 zones (1 read again");
  EXPECT_EQ(answer("mail.z9.test"), "mail.z9.test. 300 IN A 192.0.2.99");
  // A record of one zone in the config.
  dir.write("vane.yaml", config("192.0.2.33"));
  reload("reloaded 50 zones (1 read again");
  EXPECT_EQ(answer("app.z3.test"), "app.z3.test. 60 IN A 192.0.2.33");
  EXPECT_EQ(answer("www.z12.test"), "www.z12.test. 300 IN A 10.0.0.12");
}

TEST(CheckConfig, GoodConfig_ExitsZero) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1));
  std::string cfg = dir.write("vane.yaml", kConfig);
  Process p({vaned_path(), "--check-config", cfg});
  EXPECT_EQ(p.wait(10000), 0);
  EXPECT_NE(p.output().find("OK (1 zones, 4 records)"), std::string::npos) << p.output();
}

TEST(CheckConfig, BadZone_ExitsNonZeroWithFileAndLine) {
  TempDir dir;
  dir.write("r.test.zone", zone_with("192.0.2.10", 1) + "\n\nalias IN CNAME www\nalias IN A 192.0.2.9\n");
  std::string cfg = dir.write("vane.yaml", kConfig);
  Process p({vaned_path(), "--check-config", cfg});
  EXPECT_EQ(p.wait(10000), 1);
  EXPECT_NE(p.output().find("r.test.zone:9: CNAME and other data at alias.r.test."), std::string::npos) << p.output();
}

TEST(CheckConfig, BadYaml_ExitsNonZeroWithFileAndLine) {
  TempDir dir;
  std::string cfg = dir.write("vane.yaml", "listen: [\"127.0.0.1:0\"]\nthreads: many\n");
  Process p({vaned_path(), "--check-config", cfg});
  EXPECT_EQ(p.wait(10000), 1);
  EXPECT_NE(p.output().find("vane.yaml:2: threads must be a whole number"), std::string::npos) << p.output();
}

TEST(Startup, BadZone_RefusesToStart) {
  TempDir dir;
  dir.write("r.test.zone", "$ORIGIN r.test.\nwww IN A 192.0.2.1\n");
  std::string cfg = dir.write("vane.yaml", kConfig);
  Process p({vaned_path(), "--config", cfg});
  EXPECT_EQ(p.wait(10000), 1);
  EXPECT_NE(p.output().find("has no SOA record"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace vane::test
