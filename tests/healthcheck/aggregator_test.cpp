// Vantage aggregation: quorum over fresh vantages, staleness, min_vantages.
#include "aggregator.h"

#include <gtest/gtest.h>

namespace vane::healthcheck {
namespace {

VantageView view(bool up, bool self = false) {
  return VantageView{up, 0, 1.0, "", self};
}

TEST(Aggregator, QuorumOfFreshVantages) {
  Aggregator a;
  a.set_endpoint("e", {1000, 0.5, 1}, true);
  EXPECT_FALSE(a.observe("e", "local", view(true, true), 0));
  EXPECT_FALSE(a.observe("e", "v1", view(true), 0));
  EXPECT_FALSE(a.observe("e", "v2", view(false), 0)) << "1 of 3 down: below quorum";
  auto d = a.observe("e", "v1", view(false), 10);
  ASSERT_TRUE(d) << "2 of 3 down";
  EXPECT_FALSE(d->up);
  EXPECT_NE(d->why.find("v1: down"), std::string::npos);
  d = a.observe("e", "v2", view(true), 20);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->up);
}

TEST(Aggregator, StaleVantagesAreExcluded) {
  Aggregator a;
  a.set_endpoint("e", {1000, 0.5, 1}, true);
  a.observe("e", "local", view(true, true), 0);
  a.observe("e", "v1", view(false), 0);
  a.observe("e", "v2", view(false), 0);
  EXPECT_FALSE(a.verdict("e"));
  // v1 and v2 fall silent for more than 3 intervals: only local (up) is fresh.
  EXPECT_TRUE(a.tick(2999).empty());
  auto changed = a.tick(3001);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_TRUE(changed[0].second.up);
  EXPECT_NE(changed[0].second.why.find("v1: down (stale)"), std::string::npos);
}

// Cut off from etcd: other nodes' views no longer count, at once; this
// node's own probes decide until etcd answers again.
TEST(Aggregator, DistrustedRemoteViewsDoNotCount_UntilRefreshed) {
  Aggregator a;
  a.set_endpoint("e", {1000, 0.5, 1}, true);
  a.put_view("e", "ns1", VantageView{true, 100, 1.0, "", false});
  a.put_view("e", "ns3", VantageView{true, 100, 1.0, "", false});
  EXPECT_FALSE(a.observe("e", "ns2", view(false, true), 200)) << "1 of 3 down";
  a.distrust_remote();
  auto changed = a.tick(300);
  ASSERT_EQ(changed.size(), 1u) << "its own view alone decides";
  EXPECT_FALSE(changed[0].second.up);
  EXPECT_NE(changed[0].second.why.find("ns1: up (stale)"), std::string::npos);
  a.set_verdict("e", false);
  a.refresh_remote(400);  // etcd answers again: two of three say up
  changed = a.tick(400);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_TRUE(changed[0].second.up);
}

TEST(Aggregator, FewerThanMinVantagesKeepsTheLastVerdict) {
  Aggregator a;
  a.set_endpoint("e", {1000, 0.5, 2}, true);
  EXPECT_FALSE(a.observe("e", "local", view(false, true), 0)) << "one fresh vantage of the two required";
  EXPECT_TRUE(a.verdict("e"));
  ASSERT_TRUE(a.observe("e", "v1", view(false), 0));
  EXPECT_FALSE(a.verdict("e"));
  a.observe("e", "local", view(true, true), 100);
  EXPECT_TRUE(a.tick(5000).empty()) << "v1 stale: one fresh vantage, verdict kept";
  EXPECT_FALSE(a.verdict("e"));
}

TEST(Aggregator, UnknownEndpointsAreIgnoredAndRetainDrops) {
  Aggregator a;
  EXPECT_FALSE(a.observe("nope", "v1", view(false), 0));
  a.set_endpoint("e", {1000, 0.5, 1}, false);
  a.retain({});
  EXPECT_FALSE(a.known("e"));
}

}  // namespace
}  // namespace vane::healthcheck
