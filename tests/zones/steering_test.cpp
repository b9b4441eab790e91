// The steering chain: weighted distribution, failover tiers, regions,
// sticky rendezvous picks, multivalue, fail-open / fail-closed, admin state,
// and explain(). Endpoint state is written directly, as the health checker
// and admin socket do.
#include "steering.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "explain.h"
#include "server.h"

namespace vane::zones {
namespace {

struct Fixture {
  StateTable states;
  RegionMap regions;
  SteeredRecord rec{};
  std::vector<SteeredEndpoint> eps;
  uint64_t rng = 12345;

  Fixture(Policy p, std::vector<std::pair<uint8_t, uint32_t>> weight_priority, std::vector<uint16_t> regions_of = {}) {
    rec.type = 1;
    rec.policy = p;
    rec.max_answers = 2;
    rec.ttl = 60;
    rec.ep_count = static_cast<uint16_t>(weight_priority.size());
    for (size_t i = 0; i < weight_priority.size(); ++i) {
      SteeredEndpoint e{};
      e.state = states.slot("ep" + std::to_string(i));
      e.weight = weight_priority[i].first;
      e.priority = weight_priority[i].second;
      e.key = 0x1234567 * (i + 1) + (i << 40);
      e.region = i < regions_of.size() ? regions_of[i] : kNoRegion;
      eps.push_back(e);
    }
  }
  EndpointState& state(size_t i) { return states.at(eps[i].state); }
  Pick pick(const Client& c = {}) {
    Pick p;
    select(rec, eps, states, regions, c, rng, p);
    return p;
  }
  std::vector<double> shares(int n, const Client& c = {}) {
    std::vector<double> count(eps.size());
    for (int i = 0; i < n; ++i) {
      Pick p = pick(c);
      for (uint8_t k = 0; k < p.count; ++k) count[p.index[k]] += 1.0 / n;
    }
    return count;
  }
};

Client v4(const char* addr, uint8_t prefix = 32, bool ecs = false) {
  Client c;
  c.family = 4;
  c.prefix = prefix;
  c.ecs = ecs;
  inet_pton(AF_INET, addr, c.addr);
  return c;
}

// What a zone transfer carries: what a client with no location could be
// answered now, as a set (DESIGN.md "Zone transfers").
std::vector<uint16_t> transferred(Fixture& f) {
  Pick p;
  transfer_set(f.rec, f.eps, f.states, f.regions, p);
  return {p.index, p.index + p.count};
}

TEST(TransferSet, Weighted_PositiveWeightsOnly_AllWhenAllZero_AdminWeightCounts) {
  Fixture f(Policy::kWeighted, {{255, 1}, {0, 1}, {10, 1}});
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0, 2}));
  f.state(0).admin_weight = 0;
  f.state(2).admin_weight = 0;
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0, 1, 2}));  // all zero: equal, all of them
  f.state(1).admin_weight = 255;
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{1}));
}

TEST(TransferSet, Failover_TheServingTier_DrainsAndHoldsCount_AllDownFailsOpenOrClosed) {
  Fixture f(Policy::kFailover, {{1, 1}, {1, 1}, {1, 2}});
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0, 1}));
  f.state(0).override_state = static_cast<uint8_t>(Override::kDrain);
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{1}));
  f.state(1).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{2}));
  f.state(0).override_state = static_cast<uint8_t>(Override::kHeld);  // held back: tier 2 keeps answering
  f.state(0).health = static_cast<uint8_t>(Health::kUp);
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{2}));
  f.state(2).health = static_cast<uint8_t>(Health::kDown);  // only the held one is up: it answers
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0}));
  f.state(0).health = static_cast<uint8_t>(Health::kDown);  // all down: fail open, the best tier
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0, 1}));
  f.rec.fail_closed = true;
  EXPECT_TRUE(transferred(f).empty());
}

TEST(TransferSet, Latency_TheDefaultOrdersFirstRegionWithAnUpEndpoint) {
  Fixture f(Policy::kLatency, {{1, 1}, {1, 1}, {1, 1}}, {0, 1, 1});
  uint16_t east = f.regions.intern("east"), west = f.regions.intern("west");
  uint8_t net10[16] = {10, 1}, any[16] = {};
  f.regions.add_rule(4, 16, net10, {east, west});
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0, 1, 2}));  // no default rule: every candidate
  f.regions.add_rule(4, 0, any, {west, east});
  f.regions.finish();
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{1, 2}));
  f.state(1).health = f.state(2).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0}));
}

TEST(TransferSet, Multivalue_FirstMaxAnswersUp) {
  Fixture f(Policy::kMultivalue, {{1, 1}, {1, 1}, {1, 1}});  // max_answers 2
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{0, 1}));
  f.state(0).override_state = static_cast<uint8_t>(Override::kDown);
  EXPECT_EQ(transferred(f), (std::vector<uint16_t>{1, 2}));
}

TEST(Steering, Weighted_80_20_LandsWithinOnePercent) {
  Fixture f(Policy::kWeighted, {{80, 1}, {20, 1}});
  auto s = f.shares(100000);
  EXPECT_NEAR(s[0], 0.80, 0.01);
  EXPECT_NEAR(s[1], 0.20, 0.01);
}

TEST(Steering, Weighted_255_0_SendsNothingToTheZero) {
  Fixture f(Policy::kWeighted, {{255, 1}, {0, 1}});
  auto s = f.shares(100000);
  EXPECT_EQ(s[1], 0.0);
  EXPECT_NEAR(s[0], 1.0, 1e-9);
}

TEST(Steering, Weighted_AllZero_SplitsEvenly) {
  Fixture f(Policy::kWeighted, {{0, 1}, {0, 1}, {0, 1}});
  for (double x : f.shares(100000)) EXPECT_NEAR(x, 1.0 / 3, 0.01);
}

TEST(Steering, Weighted_DownEndpointGetsNothing_AdminWeightWins) {
  Fixture f(Policy::kWeighted, {{50, 1}, {50, 1}, {50, 1}});
  f.state(0).health = static_cast<uint8_t>(Health::kDown);
  f.state(1).admin_weight = 0;  // the 255/0 flip, done by an operator
  auto s = f.shares(10000);
  EXPECT_EQ(s[0], 0.0);
  EXPECT_EQ(s[1], 0.0);
  EXPECT_NEAR(s[2], 1.0, 1e-9);
}

TEST(Steering, Failover_TierOneDownThenBack) {
  Fixture f(Policy::kFailover, {{1, 1}, {1, 2}, {1, 3}});
  EXPECT_EQ(f.pick().index[0], 0);
  f.state(0).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(f.pick().index[0], 1);
  f.state(1).override_state = static_cast<uint8_t>(Override::kDrain);
  EXPECT_EQ(f.pick().index[0], 2);
  f.state(0).health = static_cast<uint8_t>(Health::kUp);
  EXPECT_EQ(f.pick().index[0], 0);
}

TEST(Steering, Failover_HeldTierAnswersOnlyWhenNothingElseIsUp) {
  Fixture f(Policy::kFailover, {{1, 1}, {1, 2}, {1, 3}});
  f.state(0).override_state = static_cast<uint8_t>(Override::kHeld);  // failback: manual after a failover
  EXPECT_EQ(f.pick().index[0], 1);
  f.state(1).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(f.pick().index[0], 2);  // the next tier down, still not the held one
  f.state(2).override_state = static_cast<uint8_t>(Override::kDamped);
  EXPECT_EQ(f.pick().index[0], 0);  // nothing else up: the hold gives way
  f.state(0).health = static_cast<uint8_t>(Health::kDown);
  Pick p = f.pick();  // every endpoint down: fail open as before, from tier 2 (not held)
  ASSERT_EQ(p.count, 1);
  EXPECT_EQ(p.index[0], 1);
}

TEST(Steering, Failover_AllDown_FailsOpenUnlessFailClosed) {
  Fixture f(Policy::kFailover, {{1, 1}, {1, 2}});
  f.state(0).health = f.state(1).health = static_cast<uint8_t>(Health::kDown);
  Pick p = f.pick();
  ASSERT_EQ(p.count, 1);
  EXPECT_EQ(p.index[0], 0);  // as if all were up: tier 1
  f.rec.fail_closed = true;
  EXPECT_EQ(f.pick().count, 0);
}

TEST(Steering, ForceUp_BeatsAnUnhealthyVerdict) {
  Fixture f(Policy::kFailover, {{1, 1}, {1, 2}});
  f.state(0).health = static_cast<uint8_t>(Health::kDown);
  f.state(0).override_state = static_cast<uint8_t>(Override::kUp);
  EXPECT_EQ(f.pick().index[0], 0);
}

TEST(Steering, Latency_ClientNetworksGetTheirRegionsWithScope) {
  Fixture f(Policy::kLatency, {{1, 1}, {1, 1}}, {0, 1});
  uint16_t east = f.regions.intern("east"), west = f.regions.intern("west");
  uint8_t net10[16] = {10, 1}, any[16] = {};
  f.regions.add_rule(4, 16, net10, {east, west});
  f.regions.add_rule(4, 0, any, {west, east});
  f.regions.finish();
  Pick a = f.pick(v4("10.1.2.0", 24, true));
  EXPECT_EQ(a.index[0], 0);
  EXPECT_EQ(a.scope, 16);
  Pick b = f.pick(v4("192.0.2.0", 24, true));
  EXPECT_EQ(b.index[0], 1);
  EXPECT_EQ(b.scope, 1);  // 0.0.0.0/0 matched, but 10.1/16 lies inside it: scope must exclude it
  f.state(0).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(f.pick(v4("10.1.2.0", 24, true)).index[0], 1);  // nearest region empty: next in order
}

TEST(Steering, LatencyMeasured_LowestRttFromTheClientNetworksVantage) {
  Fixture f(Policy::kLatency, {{1, 1}, {1, 1}, {1, 1}}, {0, 1, 1});
  f.rec.measured = true;
  uint16_t east = f.regions.intern("east"), west = f.regions.intern("west");
  uint8_t any[16] = {};
  uint8_t v = f.states.vantage_slot("eu-1");
  f.regions.add_rule(4, 0, any, {east, west}, v);
  f.regions.finish();
  Client c = v4("192.0.2.1");
  EXPECT_EQ(f.pick(c).index[0], 0) << "no RTTs yet: region order";
  f.states.set_rtt_us(f.eps[0].state, v, 40000);
  f.states.set_rtt_us(f.eps[1].state, v, 9000);
  f.states.set_rtt_us(f.eps[2].state, v, 25000);
  EXPECT_EQ(f.pick(c).index[0], 1);
  f.state(1).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(f.pick(c).index[0], 2) << "the nearest that is up";
  Trace t;
  Pick p;
  select(f.rec, f.eps, f.states, f.regions, c, f.rng, p, &t);
  ASSERT_GE(t.steps.size(), 2u);
  EXPECT_NE(t.steps[1].find("lowest measured RTT (25"), std::string::npos) << t.steps[1];
}

TEST(Steering, Sticky_SameClientSameAnswer) {
  Fixture f(Policy::kWeighted, {{50, 1}, {50, 1}, {50, 1}});
  f.rec.sticky = true;
  Client c = v4("198.51.100.77");
  uint16_t first = f.pick(c).index[0];
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(f.pick(c).index[0], first);
  // The rest of its /24 goes to the same place.
  EXPECT_EQ(f.pick(v4("198.51.100.1")).index[0], first);
}

TEST(Steering, Sticky_RaisingOneWeightMovesOnlyTheShareThatMust) {
  Fixture f(Policy::kWeighted, {{100, 1}, {100, 1}, {100, 1}});
  f.rec.sticky = true;
  const int kClients = 20000;
  std::vector<uint16_t> before(kClients);
  auto client = [](int i) {
    Client c;
    c.family = 4;
    c.prefix = 32;
    c.addr[0] = uint8_t(i >> 16), c.addr[1] = uint8_t(i >> 8), c.addr[2] = uint8_t(i);
    return c;
  };
  for (int i = 0; i < kClients; ++i) before[i] = f.pick(client(i)).index[0];
  f.state(2).admin_weight = 200;  // 1/3 -> 1/2 of the clients
  int moved = 0, moved_elsewhere = 0, to_two = 0;
  for (int i = 0; i < kClients; ++i) {
    uint16_t now = f.pick(client(i)).index[0];
    if (now != before[i]) ++moved, moved_elsewhere += now != 2;
    to_two += now == 2;
  }
  EXPECT_EQ(moved_elsewhere, 0) << "clients only move to the endpoint that gained weight";
  EXPECT_LE(double(moved) / kClients, 0.5 - 1.0 / 3 + 0.01);
  EXPECT_NEAR(double(to_two) / kClients, 0.5, 0.01);
}

TEST(Steering, Multivalue_AtMostNAndNeverADownOne) {
  Fixture f(Policy::kMultivalue, {{1, 1}, {1, 1}, {1, 1}, {1, 1}});
  f.state(3).health = static_cast<uint8_t>(Health::kDown);
  for (int i = 0; i < 1000; ++i) {
    Pick p = f.pick();
    ASSERT_EQ(p.count, 2);
    EXPECT_NE(p.index[0], p.index[1]);
    for (uint8_t k = 0; k < p.count; ++k) EXPECT_NE(p.index[k], 3);
  }
  for (size_t i = 0; i < 4; ++i) f.state(i).health = static_cast<uint8_t>(Health::kDown);
  EXPECT_EQ(f.pick().count, 2);  // failing open
}

// An operator's 255/0 flip moves weight between two endpoints in two
// stores, made while workers answer. Seen halfway, all weights would be 0,
// answered as equal: from use3 too, at weight 0 before and after. Made in
// a StateEdit, no answer is ever from halfway.
TEST(StateEdit, AFlipMadeWhileAnswering_IsNeverAnsweredHalfway) {
  StateTable states;
  RegionMap regions;
  SteeredRecord rec{};
  rec.type = 1;
  rec.policy = Policy::kWeighted;
  rec.ttl = 60;
  rec.ep_count = 3;
  rec.state = states.slot("www./A");
  std::vector<SteeredEndpoint> eps;
  for (const char* name : {"use1", "use2", "use3"}) {
    SteeredEndpoint e{};
    e.state = states.slot(std::string("www./A/") + name);
    eps.push_back(e);
  }
  states.at(eps[0].state).admin_weight = 255;
  std::atomic<bool> done{false};
  std::thread flipper([&] {
    for (int i = 0; i < 20000; ++i) {
      StateEdit edit(states);
      size_t from = i % 2, to = 1 - from;
      edit.weight("www./A/use" + std::to_string(from + 1), eps[from].state, 0);
      for (int k = 0; k < 500; ++k) asm volatile("");  // vaned parses the next change meanwhile
      edit.weight("www./A/use" + std::to_string(to + 1), eps[to].state, 255);
    }
    done = true;
  });
  uint64_t rng = 1;
  size_t picks = 0, halfway = 0;
  while (!done) {
    Pick p;
    select(rec, eps, states, regions, Client{}, rng, p);
    ++picks;
    halfway += p.count != 1 || p.index[0] == 2;
  }
  flipper.join();
  EXPECT_GT(picks, 0u);
  // Unless the flipper was stopped mid-way for over a millisecond (as a
  // loaded machine may), and the pick gave up waiting for it.
  EXPECT_LE(halfway, states.torn_picks()) << "of " << picks << " answers";
  // Every edit ended: the record is open to no one.
  EXPECT_EQ(states.at(rec.state).edits.load() & kEditsOpen, 0u);
}

// What an edit stages is answered once it is made, all of it at once.
TEST(StateEdit, StagedChanges_AreAnsweredOncePublished) {
  Fixture f(Policy::kWeighted, {{255, 0}, {0, 0}});
  f.rec.state = f.states.slot("www./A");
  f.eps[0].state = f.states.slot("www./A/use1");
  f.eps[1].state = f.states.slot("www./A/use2");
  StateEdit edit(f.states);
  edit.weight("www./A/use1", f.eps[0].state, 0);
  edit.weight("www./A/use2", f.eps[1].state, 255);
  edit.override_state("www./A/use2", f.eps[1].state, Override::kDrain);
  EXPECT_EQ(f.pick().index[0], 0);
  edit.publish();
  EXPECT_EQ(f.pick().index[0], 0);  // use2 drained: weights of the up ones only
  EXPECT_EQ(f.state(1).admin_weight.load(), 255);
  EXPECT_EQ(f.state(0).admin_weight.load(), 0);
  edit.override_state("www./A/use2", f.eps[1].state, Override::kAuto);
  edit.health("www./A/use1", f.eps[0].state, Health::kDown);
  EXPECT_EQ(f.pick().index[0], 0);
  edit.publish();
  EXPECT_EQ(f.pick().index[0], 1);
  EXPECT_EQ(f.states.at(f.rec.state).edits.load(), 2u << 8);  // two changes made, none open
}

TEST(StateTable, SlotsAreStablePerKey) {
  StateTable t;
  uint32_t a = t.slot("www./A/use1"), b = t.slot("www./A/use2");
  EXPECT_NE(a, b);
  EXPECT_EQ(t.slot("www./A/use1"), a);
  EXPECT_EQ(t.find("www./A/use2"), b);
  EXPECT_EQ(t.find("nope"), UINT32_MAX);
  t.at(a).admin_weight = 7;
  for (int i = 0; i < 5000; ++i) t.slot("k" + std::to_string(i));  // new chunks never move old slots
  EXPECT_EQ(t.at(a).admin_weight.load(), 7);
  // Dense, one per key, each found again after the index has grown; a key
  // that is a prefix or extension of another is another key; the empty key too.
  EXPECT_EQ(t.size(), 5002u);
  EXPECT_EQ(t.find("k0"), 2u);
  EXPECT_EQ(t.find("k4999"), 5001u);
  for (int i = 0; i < 5000; i += 7) EXPECT_EQ(t.slot("k" + std::to_string(i)), uint32_t(i + 2));
  EXPECT_EQ(t.find("k"), UINT32_MAX);
  EXPECT_EQ(t.find("k00"), UINT32_MAX);
  EXPECT_EQ(t.find("www./A/use"), UINT32_MAX);
  EXPECT_EQ(t.slot(""), 5002u);
  EXPECT_EQ(t.find(""), 5002u);
  EXPECT_EQ(t.find("www./A/use1"), a);
}

// explain() over a ZoneSet compiled from a real config.
TEST(Explain, NamesEveryStepAndThePick) {
  auto cfg = parse_config(R"(
zones: [{ name: example.com, file: z }]
regions:
  - { cidr: 10.1.0.0/16, order: [east, west] }
  - { cidr: 0.0.0.0/0, order: [west, east] }
records:
  - name: www.example.com
    type: A
    policy: failover
    endpoints:
      - { name: use1, address: 192.0.2.10, priority: 1, region: east }
      - { name: use2, address: 198.51.100.10, priority: 2, region: west }
)",
                          "t.yaml", "");
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  cfg->zones[0].text = "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 120\n@ IN NS ns\nns IN A 192.0.2.1\n";
  StateTable states;
  auto zs = server::build_zone_set(*cfg, states, true);
  ASSERT_TRUE(zs) << zs.error().to_string();
  Client c;
  ASSERT_TRUE(parse_client("10.1.2.3", c));
  auto ex = explain(**zs, "WWW.example.com", 0, c);
  ASSERT_TRUE(ex) << ex.error().to_string();
  EXPECT_EQ(ex->policy, "failover");
  ASSERT_EQ(ex->answer.size(), 1u);
  EXPECT_EQ(ex->answer[0], "192.0.2.10 (use1)");
  states.at(states.find("www.example.com./A/use1")).override_state = static_cast<uint8_t>(Override::kDown);
  ex = explain(**zs, "www.example.com", 1, c);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->answer[0], "198.51.100.10 (use2)");
  std::string all;
  for (const auto& s : ex->steps) all += s + "\n";
  EXPECT_NE(all.find("use1 192.0.2.10: down (forced down)"), std::string::npos) << all;
  EXPECT_NE(all.find("lowest priority tier 2: use2"), std::string::npos) << all;

  auto missing = explain(**zs, "ns.example.com", 0, c);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("steered records: www.example.com./A"), std::string::npos);
}

}  // namespace
}  // namespace vane::zones
