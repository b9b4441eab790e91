// The RocksDB state store: the journal keeps its newest entries, trimmed in
// steps of 1000 (a range deletion per entry made every later read slower),
// and plans round-trip.
#include "state_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace vane::admin {
namespace {

// On tmpfs: thousands of synced writes stay cheap.
struct ShmDir {
  std::string path;
  ShmDir() {
    char t[] = "/dev/shm/vane-store-test-XXXXXX";
    path = mkdtemp(t) ? t : "";
  }
  ~ShmDir() { std::filesystem::remove_all(path); }
};

TEST(StateStore, Journal_KeepsTheNewestEntries_TrimmedInSteps) {
  ShmDir dir;
  ASSERT_FALSE(dir.path.empty());
  auto s = StateStore::open(dir.path);
  ASSERT_TRUE(s) << s.error().to_string();
  StateStore& store = **s;
  for (int i = 1; i <= 12345; ++i)
    ASSERT_FALSE(store.commit({}, {{"action", "test"}, {"i", i}})) << i;
  auto all = store.history(20000);
  EXPECT_GE(all.size(), kJournalKeep);
  EXPECT_LE(all.size(), kJournalKeep + 1000);
  EXPECT_EQ(all.back()["seq"], 12345);
  EXPECT_EQ(all.front()["seq"], 12000 - kJournalKeep + 1);  // the last trim was at 12000
  EXPECT_EQ(store.history(3).front()["i"], 12343);
}

TEST(StateStore, Plans_RoundTripAndSurviveReopening) {
  ShmDir dir;
  {
    auto s = StateStore::open(dir.path);
    ASSERT_TRUE(s);
    StateStore::Change c{"drill/7", std::nullopt, std::nullopt, std::nullopt};
    c.plan = std::optional<nlohmann::json>{nlohmann::json{{"id", 7}, {"phase", "scheduled"}}};
    StateStore::Change r{"ramp/www.example.com./A/use1", std::nullopt, std::nullopt, std::nullopt};
    r.plan = std::optional<nlohmann::json>{nlohmann::json{{"from", 0}, {"to", 10}}};
    ASSERT_FALSE((*s)->commit({c, r}, {{"action", "drill"}}));
    StateStore::Change gone{"ramp/www.example.com./A/use1", std::nullopt, std::nullopt, std::nullopt};
    gone.plan = std::optional<nlohmann::json>{};
    ASSERT_FALSE((*s)->commit({gone}, {{"action", "ramp-end"}}));
  }
  auto s = StateStore::open(dir.path);
  ASSERT_TRUE(s);
  auto plans = (*s)->plans();
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans["drill/7"]["phase"], "scheduled");
}

}  // namespace
}  // namespace vane::admin
