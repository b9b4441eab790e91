// The RocksDB state store: the journal keeps its newest entries, trimmed in
// steps of 1000 (a range deletion per entry made every later read slower),
// and plans round-trip.
#include "state_store.h"
#include "state_writer.h"

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

// A burst of verdicts is one write through LocalWriter::commit_all: each
// change is done with its own journal seq, in order, and all of them are
// there after reopening.
TEST(StateStore, CommitAll_OneWriteEachWithItsSeq) {
  ShmDir dir;
  {
    auto s = StateStore::open(dir.path);
    ASSERT_TRUE(s);
    ASSERT_FALSE((*s)->commit({}, {{"action", "first"}}));
    LocalWriter writer(**s);
    std::vector<StateWriter::Entry> entries;
    std::vector<uint64_t> seqs;
    for (int i = 0; i < 3; ++i) {
      std::string key = "www.example.com./A/e" + std::to_string(i);
      entries.push_back({{StateStore::Change{key, std::nullopt, std::nullopt, std::string("down")}},
                         {{"action", "health"}, {"endpoint", key}},
                         [&seqs](std::optional<Error> err, uint64_t seq) {
                           EXPECT_FALSE(err);
                           seqs.push_back(seq);
                         }});
    }
    writer.commit_all(std::move(entries));
    EXPECT_EQ(seqs, (std::vector<uint64_t>{2, 3, 4}));
  }
  auto s = StateStore::open(dir.path);
  ASSERT_TRUE(s);
  auto health = (*s)->health();
  ASSERT_EQ(health.size(), 3u);
  EXPECT_EQ(health["www.example.com./A/e2"], "down");
  auto journal = (*s)->history(10);
  ASSERT_EQ(journal.size(), 4u);
  EXPECT_EQ(journal.back()["seq"], 4);
  EXPECT_EQ(journal.back()["endpoint"], "www.example.com./A/e2");
}

// Status reads one override at a time, and only their keys for orphans.
TEST(StateStore, OverrideOf_AndOverrideKeys) {
  ShmDir dir;
  auto s = StateStore::open(dir.path);
  ASSERT_TRUE(s);
  Override o{"drain", 1796324955978, "maintenance", 0, 1796324000000, "", "us-east-1"};
  ASSERT_FALSE((*s)->commit(
      {{"a.test./A/e", std::nullopt, std::optional<Override>{o}, std::nullopt},
       {"b.test./A/e", std::nullopt, std::optional<Override>{Override{"down", 0, "", 0, 0, "", ""}}, std::nullopt},
       {"c.test./A/e", std::optional<int>{3}, std::nullopt, std::nullopt}},
      {{"action", "drain"}}));
  auto got = (*s)->override_of("a.test./A/e");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->state, "drain");
  EXPECT_EQ(got->until_ms, o.until_ms);
  EXPECT_EQ(got->reason, "maintenance");
  EXPECT_EQ(got->region, "us-east-1");
  EXPECT_FALSE((*s)->override_of("c.test./A/e")) << "a weight, not an override";
  EXPECT_FALSE((*s)->override_of("nope"));
  EXPECT_EQ((*s)->override_keys(), (std::vector<std::string>{"a.test./A/e", "b.test./A/e"}));
}

}  // namespace
}  // namespace vane::admin
