// The checker over real sockets on 127.0.0.1: many probes run on its one
// timer, each at its interval; new targets keep the counters and verdicts
// of those that stay, start over those that changed, and never report
// those that went (also when their probe was in flight).
#include "checker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"

namespace vane::healthcheck {
namespace {

using test::eventually;

// Has each listener accepted at least `n` connections?
bool each_accepted(const std::vector<std::unique_ptr<test::Tarpit>>& listeners, uint64_t n) {
  for (const auto& l : listeners)
    if (l->accepted() < n) return false;
  return true;
}

TEST(Checker, ManyProbesOnOneTimer_NewTargetsKeepChangeAndDrop) {
  constexpr int kOpen = 20, kClosed = 20;
  std::vector<std::unique_ptr<test::Tarpit>> open;  // each counts the connections it accepts
  for (int i = 0; i < kOpen; ++i) open.push_back(std::make_unique<test::Tarpit>());
  uint16_t refused = test::free_port();  // nothing listens there
  auto tcp = std::make_shared<CheckSpec>();
  tcp->name = "tcp";
  tcp->interval_ms = 100;
  tcp->timeout_ms = 80;
  tcp->fall = 2;
  tcp->rise = 2;
  auto target = [&](const std::string& key, uint16_t port) { return Target{key, tcp, "127.0.0.1", port, true}; };
  std::vector<Target> targets;
  for (int i = 0; i < kOpen; ++i) targets.push_back(target("open" + std::to_string(i), open[i]->port()));
  for (int i = 0; i < kClosed; ++i) targets.push_back(target("closed" + std::to_string(i), refused));

  std::mutex mu;
  std::vector<Verdict> verdicts;
  auto count = [&] {
    std::lock_guard lock(mu);
    return verdicts.size();
  };
  Checker checker([&](const Verdict& v) {
    std::lock_guard lock(mu);
    verdicts.push_back(v);
  });
  checker.set_targets(targets);
  checker.start();

  // Every refused endpoint goes down once; the open ones stay up (no verdict).
  ASSERT_TRUE(eventually([&] { return count() >= size_t(kClosed); }, 5000)) << count();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(verdicts.size(), size_t(kClosed));
    std::map<std::string, int> seen;
    for (const auto& v : verdicts) {
      EXPECT_FALSE(v.up) << v.key;
      EXPECT_EQ(v.key.rfind("closed", 0), 0u) << v.key;
      EXPECT_NE(v.detail.find("refused"), std::string::npos) << v.detail;
      ++seen[v.key];
    }
    EXPECT_EQ(seen.size(), size_t(kClosed));
    verdicts.clear();
  }
  // Each open endpoint is probed again and again, every one on the same timer.
  ASSERT_TRUE(eventually([&] { return each_accepted(open, 3); }, 5000));

  // New targets: closed0-9 go (nothing more is said of them), closed10-19
  // stay down without a word, open0-4 now point at the refused port (they
  // start over from up and go down), open5-19 stay as they were.
  std::vector<Target> next;
  for (int i = 0; i < kOpen; ++i) next.push_back(target("open" + std::to_string(i), i < 5 ? refused : open[i]->port()));
  for (int i = 10; i < kClosed; ++i) next.push_back(target("closed" + std::to_string(i), refused));
  checker.set_targets(next);
  ASSERT_TRUE(eventually([&] { return count() >= 5; }, 5000)) << count();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<uint64_t> before;
  for (const auto& l : open) before.push_back(l->accepted());
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(verdicts.size(), 5u);
    std::map<std::string, int> seen;
    for (const auto& v : verdicts) {
      EXPECT_FALSE(v.up);
      ++seen[v.key];
    }
    for (int i = 0; i < 5; ++i) EXPECT_EQ(seen["open" + std::to_string(i)], 1) << i;
  }
  // Probes of the old addresses have stopped; the others go on.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(open[i]->accepted(), before[i]) << i;
  for (int i = 5; i < kOpen; ++i) EXPECT_GT(open[i]->accepted(), before[i]) << i;

  // Everything goes, with probes in flight: nothing more is reported.
  checker.set_targets({});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(count(), 5u);
  checker.stop();
}

// Stopped with HTTP probes in flight (endpoints that accept and never
// answer): each attempt is let go once. A stop used to free such an attempt
// (curl's, holding no handle of ours) and then write to it through its
// probe: heap corruption, an abort at vaned's SIGTERM in the health bench;
// ASan reports it here.
TEST(Checker, StoppedWithHttpProbesInFlight_LetsEachGoOnce) {
  std::vector<std::unique_ptr<test::Tarpit>> pits;
  for (int i = 0; i < 20; ++i) pits.push_back(std::make_unique<test::Tarpit>());
  auto http = std::make_shared<CheckSpec>();
  http->name = "hang";
  http->type = "http";
  http->path = "/health";
  http->interval_ms = 100;
  http->timeout_ms = 10000;
  std::vector<Target> targets;
  for (int i = 0; i < 20; ++i)
    targets.push_back(Target{"pit" + std::to_string(i), http, "127.0.0.1", pits[i]->port(), true});
  std::atomic<int> verdicts{0};
  Checker checker([&](const Verdict&) { ++verdicts; });
  checker.set_targets(targets);
  checker.start();
  ASSERT_TRUE(eventually([&] { return each_accepted(pits, 1); }, 5000));
  checker.stop();
  EXPECT_EQ(verdicts, 0);
  // New targets after the stop (a reload that finished meanwhile) are
  // ignored: the wake used to go to the closed loop, and libuv aborted.
  checker.set_targets(targets);
  checker.set_targets({});
  EXPECT_EQ(verdicts, 0);
}

}  // namespace
}  // namespace vane::healthcheck
