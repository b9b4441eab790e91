// A full state disk (issue "Gray failures"): the state directory on a small
// tmpfs that the test fills. Admin changes are refused whole with a clear
// error, answers and health failover go on, the error is counted, and the
// node takes changes again once space returns.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = dir_.path() + "/state";
    disk_.emplace(state_);
    ASSERT_TRUE(disk_->mounted()) << disk_->error();
  }
  void TearDown() override {
    vaned_.reset();
    disk_.reset();
  }
  int ctl(const std::vector<std::string>& args, std::string& out) {
    return run_ctl(VANECTL_PATH, state_ + "/admin.sock", args, out);
  }
  // www.example.com's endpoint `name` as vanectl status --json shows it.
  nlohmann::json endpoint(const std::string& name) {
    std::string out;
    EXPECT_EQ(ctl({"status", "--json"}, out), 0) << out;
    nlohmann::json status = nlohmann::json::parse(out);
    for (const auto& rec : status["records"])
      for (const auto& e : rec["endpoints"])
        if (rec["name"] == "www.example.com." && e["name"] == name) return e;
    return nullptr;
  }

  TempDir dir_;
  std::string state_;
  std::optional<SmallDisk> disk_;
  std::unique_ptr<Vaned> vaned_;
};

TEST_F(FullDisk, AdminChangesRefusedWhole_AnswersAndFailoverGoOn_RecoversWhenSpaceReturns) {
  dir_.write("example.com.zone", kExampleZone);
  uint16_t dead = free_port();  // nothing listens: the primary's check fails once enabled
  auto config = [&](uint16_t primary_port) {
    return "listen: [\"127.0.0.1:0\"]\nthreads: 1\nhttp: { listen: \"127.0.0.1:0\" }\n"
           "zones:\n  - { name: example.com, file: example.com.zone }\n"
           "checks:\n  tcp: { type: tcp, interval: 200ms, timeout: 150ms, fall: 2, rise: 1 }\n"
           "records:\n" +
           www_weighted(false) + app_failover(primary_port, 0, "tcp");
  };
  vaned_ = std::make_unique<Vaned>(dir_, config(0));
  uint16_t http = http_port(vaned_->process());
  std::string out;
  ASSERT_EQ(ctl({"drain", "www.example.com", "use2"}, out), 0) << out;
  ASSERT_EQ(ctl({"weight", "www.example.com", "use1", "7"}, out), 0) << out;
  disk_->fill();
  // Refused before RocksDB itself runs out (which would refuse every write
  // until a restart), with a clear error and a non-zero exit.
  int rc = ctl({"weight", "www.example.com", "use1", "9"}, out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("change not applied"), std::string::npos) << out << vaned_->process().output();
  EXPECT_NE(out.find("KiB free on its file system (vaned keeps 16 MiB for RocksDB)"), std::string::npos) << out;
  EXPECT_NE(ctl({"drain", "www.example.com", "use1"}, out), 0) << out;
  const int last_ok = 7;
  // Nothing half-written: the state is the last acknowledged one.
  EXPECT_EQ(endpoint("use1")["weight"], last_ok);
  EXPECT_GE(metric(http, "vane_state_store_write_errors_total"), 1);
  // Answers go on, every section.
  auto r = query("127.0.0.1", vaned_->port(), "www.example.com", "A");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rcode, "NOERROR");
  EXPECT_EQ(r->answer, std::vector<std::string>{"www.example.com. 60 IN A 192.0.2.10"});
  // So does health failover: the primary gets a check on a dead port
  // through a reload (the config is not on the full disk).
  dir_.write("vane.yaml", config(dead));
  ASSERT_EQ(ctl({"reload"}, out), 0) << out;
  EXPECT_TRUE(eventually([&] {
    auto a = query("127.0.0.1", vaned_->port(), "app.example.com", "A");
    return a && a->answer == std::vector<std::string>{"app.example.com. 60 IN A 198.51.100.20"};
  }));
  // Space back: the next change is taken, durably.
  disk_->free();
  EXPECT_TRUE(eventually([&] { return ctl({"weight", "www.example.com", "use1", "42"}, out) == 0; }, 5000)) << out;
  ASSERT_EQ(ctl({"undrain", "www.example.com", "use2"}, out), 0) << out;
  vaned_->process().signal(SIGKILL);
  vaned_->process().wait(5000);
  vaned_ = std::make_unique<Vaned>(dir_, config(dead));
  EXPECT_EQ(endpoint("use1")["weight"], 42);
  EXPECT_EQ(endpoint("use2")["override"], "auto");
}

}  // namespace
}  // namespace vane::test
