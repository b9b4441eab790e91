// Vantage aggregation: quorum over fresh vantages, staleness, min_vantages.
#include "aggregator.h"

#include <gtest/gtest.h>

namespace vane::healthcheck {
namespace {

constexpr Aggregator::Id kE = 7;

VantageView view(bool up, bool self = false) {
  return VantageView{up, 0, 1.0, "", self};
}

TEST(Aggregator, QuorumOfFreshVantages) {
  Aggregator a;
  a.set_endpoints({{kE, {1000, 0.5, 1}, true}});
  EXPECT_FALSE(a.observe(kE, "local", view(true, true), 0));
  EXPECT_FALSE(a.observe(kE, "v1", view(true), 0));
  EXPECT_FALSE(a.observe(kE, "v2", view(false), 0)) << "1 of 3 down: below quorum";
  auto d = a.observe(kE, "v1", view(false), 10);
  ASSERT_TRUE(d) << "2 of 3 down";
  EXPECT_FALSE(d->up);
  EXPECT_NE(d->why.find("v1: down"), std::string::npos);
  d = a.observe(kE, "v2", view(true), 20);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->up);
}

TEST(Aggregator, StaleVantagesAreExcluded) {
  Aggregator a;
  a.set_endpoints({{kE, {1000, 0.5, 1}, true}});
  a.observe(kE, "local", view(true, true), 0);
  a.observe(kE, "v1", view(false), 0);
  a.observe(kE, "v2", view(false), 0);
  EXPECT_FALSE(a.verdict(kE));
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
  a.set_endpoints({{kE, {1000, 0.5, 1}, true}});
  a.put_view(kE, "ns1", VantageView{true, 100, 1.0, "", false});
  a.put_view(kE, "ns3", VantageView{true, 100, 1.0, "", false});
  EXPECT_FALSE(a.observe(kE, "ns2", view(false, true), 200)) << "1 of 3 down";
  a.distrust_remote();
  auto changed = a.tick(300);
  ASSERT_EQ(changed.size(), 1u) << "its own view alone decides";
  EXPECT_FALSE(changed[0].second.up);
  EXPECT_NE(changed[0].second.why.find("ns1: up (stale)"), std::string::npos);
  a.set_verdict(kE, false);
  a.refresh_remote(400);  // etcd answers again: two of three say up
  changed = a.tick(400);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_TRUE(changed[0].second.up);
}

TEST(Aggregator, FewerThanMinVantagesKeepsTheLastVerdict) {
  Aggregator a;
  a.set_endpoints({{kE, {1000, 0.5, 2}, true}});
  EXPECT_FALSE(a.observe(kE, "local", view(false, true), 0)) << "one fresh vantage of the two required";
  EXPECT_TRUE(a.verdict(kE));
  ASSERT_TRUE(a.observe(kE, "v1", view(false), 0));
  EXPECT_FALSE(a.verdict(kE));
  a.observe(kE, "local", view(true, true), 100);
  EXPECT_TRUE(a.tick(5000).empty()) << "v1 stale: one fresh vantage, verdict kept";
  EXPECT_FALSE(a.verdict(kE));
}

TEST(Aggregator, UnknownEndpointsAreIgnoredAndRetainDrops) {
  Aggregator a;
  EXPECT_FALSE(a.observe(99, "v1", view(false), 0));
  a.set_endpoints({{kE, {1000, 0.5, 1}, false}});
  a.set_endpoints({});
  EXPECT_FALSE(a.known(kE));
}

// One vantage's view, as a node writes it back to etcd when another node's
// lease took it away (vaned's Control): what was last put, or nothing.
TEST(Aggregator, OneVantagesView) {
  Aggregator a;
  a.set_endpoints({{kE, {1000, 0.5, 1}, true}});
  EXPECT_FALSE(a.view(kE, "agent"));
  a.observe(kE, "agent", VantageView{false, 0, 2.5, "http 503", false}, 100);
  a.put_view(kE, "n2", VantageView{true, 100, 0, "", false});
  auto v = a.view(kE, "agent");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->up);
  EXPECT_EQ(v->detail, "http 503");
  EXPECT_DOUBLE_EQ(v->rtt_ms, 2.5);
  EXPECT_FALSE(v->relayed);
  ASSERT_TRUE(a.view(kE, "n2"));
  EXPECT_TRUE(a.view(kE, "n2")->relayed);
  EXPECT_FALSE(a.view(kE, "n3"));
  EXPECT_FALSE(a.view(99, "agent"));
  a.forget(kE, "agent");
  EXPECT_FALSE(a.view(kE, "agent"));
}

// The order of the report behind a view is kept, from an agent's report or
// from etcd; reports of one agent process are ordered, others are not.
TEST(Aggregator, KeepsEachViewsReportOrder) {
  Aggregator a;
  a.set_endpoints({{kE, {1000, 0.5, 1}, true}});
  EXPECT_EQ(a.order(kE, "agent").boot, 0u);
  a.observe(kE, "agent", VantageView{false, 0, 0, "", false, false, {7, 2}}, 100);
  a.put_view(kE, "n2", VantageView{true, 100, 0, "", false, false, {9, 5}});
  EXPECT_EQ(a.order(kE, "agent").seq, 2u);
  EXPECT_EQ(a.view(kE, "agent")->order.boot, 7u);
  EXPECT_EQ(a.order(kE, "n2").seq, 5u);
  EXPECT_EQ(a.order(kE, "n3").seq, 0u);
  ReportOrder r2{7, 2};
  EXPECT_TRUE((ReportOrder{7, 1}).before(r2));
  EXPECT_FALSE((ReportOrder{7, 3}).before(r2));
  EXPECT_FALSE(r2.before(r2));
  EXPECT_FALSE((ReportOrder{8, 1}).before(r2)) << "another process: not ordered";
  EXPECT_FALSE((ReportOrder{}).before(r2)) << "no order: not ordered";
}

// A reload lists the endpoints again: those that stay keep their views and
// verdict, new ones start from theirs, the rest go.
TEST(Aggregator, SetEndpointsKeepsWhatStays) {
  Aggregator a;
  EXPECT_EQ(a.set_endpoints({{3, {1000, 0.5, 1}, true}, {1, {1000, 0.5, 1}, true}}),
            (std::vector<Aggregator::Id>{1, 3}));
  ASSERT_TRUE(a.observe(3, "local", VantageView{false, 0, 0, "tcp connect: connection refused", true}, 0));
  EXPECT_EQ(a.set_endpoints({{3, {2000, 0.5, 1}, true}, {5, {1000, 0.5, 1}, false}}),
            (std::vector<Aggregator::Id>{5}));
  EXPECT_FALSE(a.known(1));
  EXPECT_FALSE(a.verdict(3)) << "kept its verdict";
  EXPECT_FALSE(a.verdict(5)) << "started from its own";
  EXPECT_EQ(a.interval_ms(3, 0), 2000u);
  auto vs = a.views(3, 0);
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs["local"].first.detail, "tcp connect: connection refused");
  EXPECT_TRUE(vs["local"].second);
}

// Details are kept once per distinct text, and texts no view holds any
// more are dropped once there are many: an agent's details are its own.
TEST(Aggregator, ManyDistinctDetailsStayCorrect) {
  Aggregator a;
  a.set_endpoints({{1, {1000, 0.5, 1}, true}, {2, {1000, 0.5, 1}, true}});
  a.observe(1, "v1", VantageView{true, 0, 0, "first", false}, 0);
  for (int i = 0; i < 10000; ++i)
    a.observe(2, "v1", VantageView{true, 0, 0, "detail " + std::to_string(i), false}, 0);
  EXPECT_EQ(a.views(1, 0)["v1"].first.detail, "first");
  EXPECT_EQ(a.views(2, 0)["v1"].first.detail, "detail 9999");
  auto d = a.observe(2, "v1", VantageView{false, 0, 0, "HTTP 503", false}, 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->why, "v1: down 'HTTP 503'");
}

}  // namespace
}  // namespace vane::healthcheck
