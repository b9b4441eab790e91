// Query log (DESIGN.md "Query log (dnstap)"): a real Frame Streams reader
// (fstrm_capture, Debian fstrm-bin) records what vaned writes; dnstap-ldns
// decodes every message; the steering decision in `extra` is read back with
// the same schema (libfstrm's reader + protobuf-c). A reader that accepts
// and never reads: answers go on, drops are counted.
#include <fstrm.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "dns_client.h"
#include "dnstap.pb-c.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

// Every payload of a Frame Streams file, unpacked.
struct Logged {
  int type;  // 1 AUTH_QUERY, 2 AUTH_RESPONSE
  bool tcp, v6;
  std::string extra, identity;
};
std::vector<Logged> read_frames(const std::string& path) {
  std::vector<Logged> out;
  fstrm_file_options* fo = fstrm_file_options_init();
  fstrm_file_options_set_file_path(fo, path.c_str());
  fstrm_reader* r = fstrm_file_reader_init(fo, nullptr);
  fstrm_file_options_destroy(&fo);
  if (!r) return out;
  if (fstrm_reader_open(r) != fstrm_res_success) {  // not written yet, or not whole
    fstrm_reader_destroy(&r);
    return out;
  }
  const uint8_t* data;
  size_t len;
  while (fstrm_reader_read(r, &data, &len) == fstrm_res_success) {
    Dnstap__Dnstap* d = dnstap__dnstap__unpack(nullptr, len, data);
    if (!d) continue;
    Logged l{};
    if (d->message) {
      l.type = d->message->type;
      l.tcp = d->message->socket_protocol == DNSTAP__SOCKET_PROTOCOL__TCP;
      l.v6 = d->message->socket_family == DNSTAP__SOCKET_FAMILY__INET6;
    }
    if (d->has_extra) l.extra.assign(reinterpret_cast<char*>(d->extra.data), d->extra.len);
    if (d->has_identity) l.identity.assign(reinterpret_cast<char*>(d->identity.data), d->identity.len);
    out.push_back(l);
    dnstap__dnstap__free_unpacked(d, nullptr);
  }
  fstrm_reader_destroy(&r);
  return out;
}

uint16_t port_of(Process& p, const std::string& host) {
  std::smatch m;
  std::string out = p.output();
  return std::regex_search(out, m, std::regex("listening on " + host + ":(\\d+) ")) ? uint16_t(std::stoi(m[1])) : 0;
}

class Dnstap : public ::testing::Test {
 protected:
  void SetUp() override { dir_.write("example.com.zone", kExampleZone); }
  std::string config(const std::string& dnstap) {
    return "listen: [\"127.0.0.1:0\", \"[::1]:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\" }\n" + dnstap +
           "zones:\n  - { name: example.com, file: example.com.zone }\nrecords:\n" + www_weighted(false) +
           app_failover();
  }
  // fstrm_capture on a unix socket, writing `file`.
  std::unique_ptr<Process> capture(const std::string& sock, const std::string& file) {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{"fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", sock, "-w", file});
    EXPECT_TRUE(p->wait_for_output("opened output file", 5000)) << p->output();
    return p;
  }
  int ctl(const std::vector<std::string>& args, std::string& out) {
    return run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", args, out);
  }

  TempDir dir_;
  std::unique_ptr<Vaned> vaned_;
};

TEST_F(Dnstap, QueriesAndResponses_UdpTcpV4V6_DecodedByDnstapLdns_DecisionInExtra) {
  std::string sock = dir_.path() + "/dnstap.sock", file = dir_.path() + "/log.fstrm";
  auto cap = capture(sock, file);
  vaned_ = std::make_unique<Vaned>(dir_, config("dnstap: { socket: dnstap.sock, identity: ns1.test }\n"));
  uint16_t v4 = vaned_->port(), v6 = port_of(vaned_->process(), "\\[::1\\]");
  ASSERT_NE(v6, 0);
  std::string out;
  ASSERT_EQ(ctl({"drain", "app.example.com", "primary"}, out), 0) << out;
  auto a = query("127.0.0.1", v4, "app.example.com", "A", {.ecs = "10.1.2.0/24"});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->answer, std::vector<std::string>{"app.example.com. 60 IN A 198.51.100.20"});
  ASSERT_TRUE(query("127.0.0.1", v4, "www.example.com", "A", {.tcp = true}));
  ASSERT_TRUE(query("::1", v6, "example.com", "SOA"));
  ASSERT_TRUE(query("::1", v6, "nx.example.com", "A", {.tcp = true}));
  EXPECT_TRUE(eventually([&] { return metric(http_port(vaned_->process()), "vane_dnstap_messages_total{result=\"queued\"}") == 8; }));
  ASSERT_EQ(ctl({"status"}, out), 0) << out;
  EXPECT_NE(out.find("dnstap to unix:" + sock + " (identity ns1.test, one query in 1): writing; 8 messages queued, 0 dropped"),
            std::string::npos)
      << out;
  // vaned flushes what it queued on the way out; then the reader stops.
  vaned_->process().signal(SIGTERM);
  ASSERT_EQ(vaned_->process().wait(10000), 0);
  cap->signal(SIGINT);
  cap->wait(5000);
  Process ldns({"dnstap-ldns", "-r", file});
  ASSERT_EQ(ldns.wait(5000), 0) << ldns.output();
  std::string text = ldns.output();
  for (const char* want : {"AQ 127.0.0.1 UDP", "AR 127.0.0.1 UDP", "\"app.example.com.\" IN A", "AQ 127.0.0.1 TCP",
                           "\"www.example.com.\" IN A", "AQ ::1 UDP", "\"example.com.\" IN SOA", "AR ::1 TCP",
                           "\"nx.example.com.\" IN A"})
    EXPECT_NE(text.find(want), std::string::npos) << want << " in\n" << text;
  Process yaml({"dnstap-ldns", "-y", "-r", file});
  ASSERT_EQ(yaml.wait(5000), 0);
  EXPECT_NE(yaml.output().find("response_address: \"::1\""), std::string::npos) << yaml.output();
  EXPECT_NE(yaml.output().find("response_port: " + std::to_string(v4)), std::string::npos);
  auto frames = read_frames(file);
  ASSERT_EQ(frames.size(), 8u);
  int queries = 0, tcp = 0, v6n = 0;
  std::string decision;
  for (const auto& f : frames) {
    queries += f.type == 1;
    tcp += f.tcp;
    v6n += f.v6;
    EXPECT_EQ(f.identity, "ns1.test");
    if (f.type == 2 && f.extra.find("app.example.com") != std::string::npos) decision = f.extra;
  }
  EXPECT_EQ(queries, 4);
  EXPECT_EQ(tcp, 4);
  EXPECT_EQ(v6n, 4);
  EXPECT_EQ(decision,
            "record=app.example.com./A policy=failover answer=standby(tier 2) excluded=primary:drain pick=weighted "
            "scope=/0");
}

TEST_F(Dnstap, AReaderThatGoesAwayAndComesBack_IsWrittenToAgain) {
  std::string sock = dir_.path() + "/dnstap.sock", f1 = dir_.path() + "/a.fstrm", f2 = dir_.path() + "/b.fstrm";
  auto cap = capture(sock, f1);
  vaned_ = std::make_unique<Vaned>(dir_, config("dnstap: { socket: dnstap.sock }\n"));
  ASSERT_TRUE(query("127.0.0.1", vaned_->port(), "www.example.com", "A"));
  // The writer's thread wakes every second, or sooner under load, and
  // flushes what waited a second: within about 2 s at this trickle.
  EXPECT_TRUE(eventually([&] { return metric(http_port(vaned_->process()), "vane_dnstap_messages_total{result=\"queued\"}") == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  cap->signal(SIGINT);
  cap->wait(5000);
  EXPECT_EQ(read_frames(f1).size(), 2u);
  // Queries while no one reads are dropped (counted); a new reader gets the
  // later ones (the writer tries again every second).
  cap = capture(sock, f2);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(query("127.0.0.1", vaned_->port(), "www.example.com", "A"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  cap->signal(SIGINT);
  cap->wait(5000);
  EXPECT_GE(read_frames(f2).size(), 2u);
}

TEST_F(Dnstap, ReloadTurnsItOnPointsItElsewhereAndOff_SampleOneInN) {
  vaned_ = std::make_unique<Vaned>(dir_, config(""));
  std::string out;
  std::string f1 = dir_.path() + "/one.fstrm", f2 = dir_.path() + "/two.fstrm";
  dir_.write("vane.yaml", config("dnstap: { file: one.fstrm }\n"));
  ASSERT_EQ(ctl({"reload"}, out), 0) << out;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(query("127.0.0.1", vaned_->port(), "www.example.com", "A"));
  dir_.write("vane.yaml", config("dnstap: { file: two.fstrm, sample: 4, log_queries: false }\n"));
  ASSERT_EQ(ctl({"reload"}, out), 0) << out;
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(query("127.0.0.1", vaned_->port(), "www.example.com", "A"));
  dir_.write("vane.yaml", config(""));
  ASSERT_EQ(ctl({"reload"}, out), 0) << out;
  ASSERT_TRUE(query("127.0.0.1", vaned_->port(), "www.example.com", "A"));
  ASSERT_EQ(ctl({"status"}, out), 0) << out;
  EXPECT_EQ(out.find("dnstap to"), std::string::npos) << out;
  // The old sinks are closed (and flushed) as their snapshots retire.
  EXPECT_TRUE(eventually([&] { return read_frames(f1).size() == 6 && read_frames(f2).size() == 10; }, 5000))
      << read_frames(f1).size() << " " << read_frames(f2).size();
  for (const auto& f : read_frames(f2)) EXPECT_EQ(f.type, 2);  // responses only
  // A bad dnstap: block is refused with file:line, the old config serving.
  dir_.write("vane.yaml", config("dnstap: { file: a, socket: b }\n"));
  EXPECT_NE(ctl({"reload"}, out), 0);
  EXPECT_NE(out.find("vane.yaml:4: dnstap needs exactly one of socket"), std::string::npos) << out;
}

TEST_F(Dnstap, AReaderThatNeverReads_AnswersGoOnAtFullRate_DropsCounted) {
  // A unix socket that accepts and never reads (nor answers the handshake).
  std::string sock = dir_.path() + "/stuck.sock";
  int fd = unix_socket(sock, true);
  ASSERT_GE(fd, 0);
  std::thread acceptor([fd] {
    int c = accept(fd, nullptr, nullptr);
    std::this_thread::sleep_for(std::chrono::seconds(6));
    if (c >= 0) close(c);
  });
  vaned_ = std::make_unique<Vaned>(dir_, config("dnstap: { socket: stuck.sock }\n"));
  uint16_t http = http_port(vaned_->process());
  std::string qfile = dir_.write("q.txt", "www.example.com A\n");
  Process load({"dnsperf", "-s", "127.0.0.1", "-p", std::to_string(vaned_->port()), "-d", qfile, "-l", "3", "-Q", "5000"});
  ASSERT_EQ(load.wait(20000), 0) << load.output();
  EXPECT_NE(load.output().find("Queries lost:         0 (0.00%)"), std::string::npos) << load.output();
  EXPECT_GT(metric(http, "vane_dnstap_dropped_total"), 1000);
  std::string out;
  ASSERT_EQ(ctl({"status"}, out), 0) << out;
  EXPECT_NE(out.find("dropping (the reader is slow, gone or not reading)"), std::string::npos) << out;
  // Stopping does not wait for a reader that never reads.
  vaned_->process().signal(SIGTERM);
  EXPECT_EQ(vaned_->process().wait(3000), 0) << vaned_->process().output();
  acceptor.join();
  close(fd);
}

}  // namespace
}  // namespace vane::test
