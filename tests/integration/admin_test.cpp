// The admin socket and vanectl against a real vaned: permissions, status,
// reload (good and bad), malformed requests, many clients, stale sockets.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "client.h"
#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;

const char* kConfig = R"(
listen: ["127.0.0.1:0"]
threads: 1
zones: [{ name: r.test, file: r.test.zone }]
)";

class Admin : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("r.test.zone", zone_with("192.0.2.10", 1));
    vaned_ = std::make_unique<Vaned>(dir_, kConfig);
    sock_ = dir_.path() + "/state/admin.sock";
  }
  json call(const json& req) {
    auto r = admin::call(sock_, req, 10000);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : json();
  }
  std::string www() {
    auto r = query("127.0.0.1", vaned_->port(), "www.r.test", "A");
    return r && r->answer.size() == 1 ? r->answer[0] : "<none>";
  }
  // Runs vanectl with `args`; returns exit code, fills `out`.
  int vanectl(const std::vector<std::string>& args, std::string& out) {
    std::vector<std::string> argv{VANECTL_PATH, "-s", sock_};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    int rc = p.wait(20000);
    out = p.output();
    return rc;
  }

  TempDir dir_;
  std::unique_ptr<Vaned> vaned_;
  std::string sock_;
};

TEST_F(Admin, Socket_IsMode0660) {
  struct stat st {};
  ASSERT_EQ(stat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(Admin, Status_ListsZonesListenersAndGeneration) {
  json s = call({{"cmd", "status"}});
  ASSERT_TRUE(s["ok"].get<bool>()) << s.dump();
  ASSERT_EQ(s["zones"].size(), 1u);
  EXPECT_EQ(s["zones"][0]["name"], "r.test.");
  EXPECT_EQ(s["zones"][0]["serial"], 1);
  EXPECT_EQ(s["zones"][0]["records"], 4);
  EXPECT_EQ(s["zones"][0]["file"], dir_.path() + "/r.test.zone");
  EXPECT_EQ(s["generation"], 1);
  EXPECT_EQ(s["workers"], 1);
  EXPECT_EQ(s["pid"], vaned_->process().pid());
  ASSERT_EQ(s["listen"].size(), 1u);
  EXPECT_EQ(s["listen"][0], "127.0.0.1:" + std::to_string(vaned_->port()));
}

TEST_F(Admin, Reload_ServesTheNewZoneAndBumpsTheGeneration) {
  EXPECT_EQ(www(), "www.r.test. 300 IN A 192.0.2.10");
  dir_.write("r.test.zone", zone_with("192.0.2.20", 2));
  json r = call({{"cmd", "reload"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_NE(r["message"].get<std::string>().find("reloaded 1 zones"), std::string::npos) << r.dump();
  // The answer comes after the swap: the new data is served at once.
  EXPECT_EQ(www(), "www.r.test. 300 IN A 192.0.2.20");
  json s = call({{"cmd", "status"}});
  EXPECT_EQ(s["generation"], 2);
  EXPECT_EQ(s["zones"][0]["serial"], 2);
}

TEST_F(Admin, BadReload_IsRefusedWithFileLineAndTheOldZoneKeepsServing) {
  dir_.write("r.test.zone", zone_with("192.0.2.20", 2) + "bad IN A 300.1.2.3\n");
  json r = call({{"cmd", "reload"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("r.test.zone:7:"), std::string::npos) << r.dump();
  EXPECT_EQ(www(), "www.r.test. 300 IN A 192.0.2.10");
  EXPECT_EQ(call({{"cmd", "status"}})["generation"], 1);
}

TEST_F(Admin, BadRequests_GetErrorsAndTheConnectionStaysUsable) {
  int fd = unix_socket(sock_);
  ASSERT_GE(fd, 0);
  std::string reqs =
      "this is not json\n[1,2]\n{\"cmd\":\"nope\"}\n{}\n{\"cmd\":\"reload\",\"file\":\"/etc/passwd\"}\n" +
      std::string(200000, 'x') + "\n\n{\"cmd\":\"status\"}\n";
  ASSERT_EQ(send(fd, reqs.data(), reqs.size(), MSG_NOSIGNAL), ssize_t(reqs.size()));
  std::string in;
  char buf[4096];
  while (std::count(in.begin(), in.end(), '\n') < 7) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << "got only: " << in;
    in.append(buf, size_t(n));
  }
  close(fd);
  std::vector<json> answers;
  for (size_t a = 0, b; (b = in.find('\n', a)) != std::string::npos; a = b + 1)
    answers.push_back(json::parse(in.substr(a, b - a)));
  ASSERT_EQ(answers.size(), 7u);
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(answers[i]["ok"].get<bool>()) << answers[i].dump();
  EXPECT_NE(answers[0]["error"].get<std::string>().find("malformed JSON"), std::string::npos);
  EXPECT_NE(answers[1]["error"].get<std::string>().find("JSON object"), std::string::npos);
  EXPECT_NE(answers[2]["error"].get<std::string>().find("known: status, weight, drain"), std::string::npos);
  EXPECT_NE(answers[3]["error"].get<std::string>().find("no \"cmd\""), std::string::npos);
  EXPECT_NE(answers[4]["error"].get<std::string>().find("unknown field 'file'"), std::string::npos);
  EXPECT_NE(answers[5]["error"].get<std::string>().find("longer than"), std::string::npos);
  EXPECT_TRUE(answers[6]["ok"].get<bool>()) << answers[6].dump();
  EXPECT_EQ(www(), "www.r.test. 300 IN A 192.0.2.10");  // and nothing was reloaded
}

TEST_F(Admin, ManyConcurrentClients_AllAnswered) {
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto r = admin::call(sock_, {{"cmd", "status"}}, 10000);
        if (r && (*r)["ok"].get<bool>()) ++ok;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 16 * 20);
}

TEST_F(Admin, LiveSocket_IsNotTakenOverAndAStaleOneIsReplaced) {
  // A second vaned on the same state dir must refuse: the store is locked.
  std::string cfg2 = dir_.write("second.yaml", std::string(kConfig) + "state_dir: state\n");
  Process second({vaned_path(), "--config", cfg2});
  EXPECT_EQ(second.wait(20000), 1);
  EXPECT_NE(second.output().find("in use by another vaned"), std::string::npos) << second.output();
  // With its own store but our socket path, it must not steal the socket.
  std::string cfg3 =
      dir_.write("third.yaml", std::string(kConfig) + "state_dir: state3\nadmin: { socket: state/admin.sock }\n");
  Process third({vaned_path(), "--config", cfg3});
  EXPECT_EQ(third.wait(20000), 1);
  EXPECT_NE(third.output().find("another vaned is answering"), std::string::npos) << third.output();
  EXPECT_TRUE(call({{"cmd", "status"}})["ok"].get<bool>());

  // kill -9 leaves the socket file behind; the next start replaces it.
  vaned_->process().signal(SIGKILL);
  vaned_->process().wait(10000);
  struct stat st {};
  ASSERT_EQ(stat(sock_.c_str(), &st), 0) << "the crashed run should have left its socket";
  vaned_ = std::make_unique<Vaned>(dir_, kConfig);
  EXPECT_TRUE(call({{"cmd", "status"}})["ok"].get<bool>());
}

TEST_F(Admin, NotASocket_IsNeverReplaced) {
  vaned_->process().signal(SIGTERM);
  EXPECT_EQ(vaned_->process().wait(10000), 0);
  struct stat st {};
  EXPECT_NE(stat(sock_.c_str(), &st), 0) << "a clean stop removes the socket";
  dir_.write("state/admin.sock", "precious data\n");
  Process p({vaned_path(), "--config", vaned_->config_path()});
  EXPECT_EQ(p.wait(20000), 1);
  EXPECT_NE(p.output().find("is not a socket"), std::string::npos) << p.output();
  std::ifstream in(sock_);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "precious data");
}

TEST_F(Admin, Vanectl_StatusReloadJsonAndExitCodes) {
  std::string out;
  ASSERT_EQ(vanectl({"status"}, out), 0) << out;
  EXPECT_NE(out.find("ZONE"), std::string::npos) << out;
  EXPECT_NE(out.find("r.test."), std::string::npos) << out;
  EXPECT_NE(out.find("generation 1"), std::string::npos) << out;

  ASSERT_EQ(vanectl({"status", "--json"}, out), 0) << out;
  json j = json::parse(out);
  EXPECT_EQ(j["zones"][0]["serial"], 1);

  dir_.write("r.test.zone", zone_with("192.0.2.30", 3));
  ASSERT_EQ(vanectl({"reload"}, out), 0) << out;
  EXPECT_NE(out.find("reloaded"), std::string::npos) << out;
  EXPECT_EQ(www(), "www.r.test. 300 IN A 192.0.2.30");

  dir_.write("r.test.zone", "garbage\n");
  EXPECT_EQ(vanectl({"reload"}, out), 1) << out;
  EXPECT_NE(out.find("r.test.zone:1:"), std::string::npos) << out;
  EXPECT_EQ(www(), "www.r.test. 300 IN A 192.0.2.30");

  std::vector<std::string> argv{VANECTL_PATH, "-s", dir_.path() + "/nope.sock", "status"};
  Process p(argv);
  EXPECT_EQ(p.wait(20000), 2);
  EXPECT_NE(p.output().find("cannot connect"), std::string::npos) << p.output();
}

// A request sent and then no answer (vaned stopped under it, or hung):
// the error says a change may or may not have been applied, and where to look.
TEST(AdminClient, NoAnswer_SaysAChangeMayOrMayNotHaveBeenApplied) {
  TempDir dir;
  const std::string path = dir.path() + "/fake.sock";
  int l = unix_socket(path, true);
  ASSERT_GE(l, 0);
  // The first connection is closed once the request is read; the second is held.
  std::thread server([l] {
    char buf[512];
    int a = accept(l, nullptr, nullptr);
    (void)!read(a, buf, sizeof buf);
    close(a);
    int b = accept(l, nullptr, nullptr);
    (void)!read(b, buf, sizeof buf);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    close(b);
  });
  json drain = {{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "a"}};
  auto error_of = [&](int timeout_ms) {
    auto r = admin::call(path, drain, timeout_ms);
    return r ? std::string("<answered>") : r.error().message;
  };
  std::string closed = error_of(5000), silent = error_of(300);
  for (const auto& [message, says] :
       {std::pair{closed, "closed the connection without an answer"},
        std::pair{closed, "may or may not have been applied: vanectl history"},
        std::pair{silent, "no answer from vaned within 300 ms"}, std::pair{silent, "may or may not have been applied"}})
    EXPECT_NE(message.find(says), std::string::npos) << message;
  server.join();
  close(l);
}

}  // namespace
}  // namespace vane::test
