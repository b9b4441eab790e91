// The cluster (DESIGN.md "Cluster"): a real 3-member etcd cluster and
// several real vaned nodes on 127.0.0.1, started here and stopped by PID.
// A flip on one node is answered by all; no acknowledged change is lost
// while the etcd leader and vaned nodes are killed; etcd away: nodes answer,
// writes fail fast and clearly, then converge; compaction catch-up without
// flapping; etcd hung (SIGSTOP): failover on each node's own probes at
// once, no flap when it resumes; a hung leader; a node's clock 5 s off;
// leased agent views; a timed override ends once; health verdicts agree and
// are journaled once; digest mismatch; seeding and adopting.
#include <gtest/gtest.h>
#include <httplib.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "client.h"
#include "dns_client.h"
#include "etcd.h"
#include "etcd_client.h"
#include "fixtures.h"
#include "http_endpoint.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;

const std::string kRecords = "records:\n" + www_weighted(true) + app_failover();

// app's failover record alone, its primary `web` checked every 500 ms.
std::string app_checked_every_500ms(const Endpoint& web) {
  return "checks:\n  web: { type: http, path: /health, interval: 500ms, timeout: 300ms, fall: 2, rise: 2 }\n"
         "records:\n" +
         app_failover(web.port());
}

struct Node {
  std::string name;
  TempDir dir;
  std::unique_ptr<Vaned> vaned;
  std::string extra;  // more config (checks, http, ...)
  std::vector<std::string> prefix;  // runs vaned (a skewed clock)
  std::string sock() const { return dir.path() + "/state/admin.sock"; }
  uint16_t port() const { return vaned->port(); }
};

class Cluster : public ::testing::Test {
 protected:
  std::string prefix_ = "/vane/test";
  std::string records_ = kRecords;
  std::string zone_opts_;  // more keys on the zone (dnssec)

  std::string config(const Node& n, bool clustered = true) const {
    std::string c = "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: example.com.zone" +
                    zone_opts_ + " }]\n";
    if (clustered)
      c += "cluster: { etcd: " + etcd_.yaml_urls() + ", prefix: " + prefix_ + ", node: " + n.name + " }\n";
    return c + n.extra + records_;
  }
  Node& add_node(const std::string& name, const std::string& extra = "", const std::string& zone = kExampleZone,
                 const std::map<std::string, std::string>& files = {}, const std::vector<std::string>& prefix = {}) {
    auto n = std::make_unique<Node>();
    n->name = name;
    n->extra = extra;
    n->prefix = prefix;
    n->dir.write("example.com.zone", zone);
    for (const auto& [file, text] : files) n->dir.write(file, text);
    nodes_.push_back(std::move(n));
    start(*nodes_.back());
    return *nodes_.back();
  }
  void start(Node& n, bool clustered = true) {
    n.vaned = std::make_unique<Vaned>(n.dir, config(n, clustered), std::vector<std::string>{}, n.prefix);
  }
  void kill(Node& n, int sig = SIGKILL) {
    n.vaned->process().signal(sig);
    n.vaned->process().wait(10000);
  }
  json call(const Node& n, const json& req, int timeout_ms = 10000) {
    auto r = admin::call(n.sock(), req, timeout_ms);
    return r ? *r : json{{"ok", false}, {"error", "transport: " + r.error().to_string()}};
  }
  json weight(const Node& n, const std::string& ep, int w, const std::string& record = "www.example.com") {
    return call(n, {{"cmd", "weight"}, {"record", record}, {"endpoint", ep}, {"weight", w}});
  }
  std::string a(const Node& n, const std::string& name = "www.example.com") {
    auto r = query("127.0.0.1", n.port(), name, "A", {.timeout_ms = 500});
    if (!r) return "<timeout>";
    std::string out;
    for (const auto& rr : r->answer) out += (out.empty() ? "" : ",") + rr.substr(rr.rfind(' ') + 1);
    return out.empty() ? "<none>" : out;
  }
  json status(const Node& n) { return call(n, {{"cmd", "status"}}); }
  json cluster_status(const Node& n) { return status(n)["cluster"]; }
  // Effective weights of www's endpoints as a node reports them.
  std::map<std::string, int> weights(const Node& n) {
    std::map<std::string, int> out;
    json s = status(n);  // (a range-for over status(n)["records"] would outlive the temporary)
    for (const auto& r : s["records"])
      if (r["name"] == "www.example.com.")
        for (const auto& e : r["endpoints"]) out[e["name"].get<std::string>()] = e["weight"].get<int>();
    return out;
  }
  json history(const Node& n, int limit = 1000) {
    return call(n, {{"cmd", "history"}, {"limit", limit}})["entries"];
  }
  bool connected(const Node& n) {
    json c = cluster_status(n);
    return c.is_object() && c["connected"].get<bool>();
  }
  // app.example.com's primary endpoint as status shows it.
  json primary_of(const Node& n) {
    json s = status(n);
    for (const auto& r : s["records"])
      if (r["name"] == "app.example.com.") return r["endpoints"][0];
    return json::object();  // not listed (status failed): .value() still answers
  }
  void flips_while_etcd_hung(bool back_at_resume);

  EtcdCluster etcd_{3};
  std::vector<std::unique_ptr<Node>> nodes_;
};

// A region drained on one node is one etcd transaction, answered by every
// node; a region with more endpoints than one transaction holds is refused
// whole, with what to do instead.
TEST_F(Cluster, RegionDrain_IsOneTransaction_AnsweredByEveryNode_TooBigIsRefusedWhole) {
  records_ =
      "records:\n"
      "  - name: www.example.com\n    type: A\n    policy: weighted\n    endpoints:\n"
      "      - { name: use1, address: 192.0.2.10, weight: 255, region: us-east-1 }\n"
      "      - { name: use2, address: 198.51.100.10, weight: 0, region: us-east-2 }\n"
      "      - { name: use3, address: 203.0.113.10, weight: 0, region: us-east-1 }\n"
      "  - name: app.example.com\n    type: A\n    policy: failover\n    endpoints:\n"
      "      - { name: primary, address: 192.0.2.20, priority: 1, region: us-east-1 }\n"
      "      - { name: standby, address: 198.51.100.20, priority: 2, region: us-east-2 }\n";
  for (int i = 0; i < 70; ++i)
    records_ += "  - name: r" + std::to_string(i) +
                ".example.com\n    type: A\n    policy: failover\n    endpoints:\n"
                "      - { name: e, address: 192.0.2.40, priority: 1, region: eu-west-1 }\n"
                "      - { name: f, address: 198.51.100.40, priority: 2, region: us-east-2 }\n";
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;

  json r = call(a1, {{"cmd", "drain"}, {"region", "us-east-1"}, {"reason", "evacuate"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["changed"].size(), 3u);
  for (Node* n : {&a1, &b}) {
    EXPECT_TRUE(
        eventually([&] { return a(*n) == "198.51.100.10" && a(*n, "app.example.com") == "198.51.100.20"; }, 2000))
        << n->name;
  }
  json h = history(b);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.back()["action"], "drain");
  EXPECT_EQ(h.back()["region"], "us-east-1");
  EXPECT_EQ(h.back()["node"], "ns1");

  // 70 endpoints in 70 records: more than one transaction holds (etcd's
  // --max-txn-ops, 128 by default). Refused whole, by etcd itself.
  r = call(a1, {{"cmd", "drain"}, {"region", "eu-west-1"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find(
                "70 endpoints in 70 records are more than one etcd transaction holds (etcd: etcdserver: too many "
                "operations in txn request); nothing was changed — name a zone (\"zone\") to drain fewer at once, "
                "or raise etcd's --max-txn-ops and --max-request-bytes"),
            std::string::npos)
      << r.dump();
  EXPECT_EQ(a(a1, "r7.example.com"), "192.0.2.40");
  EXPECT_EQ(a(b, "r7.example.com"), "192.0.2.40");
  EXPECT_EQ(history(b).back()["action"], "drain");  // nothing journaled
  {
    // The client tells etcd's refusal (nothing written) from a write whose
    // fate is unknown (no answer: it may have landed).
    ClusterSpec spec;
    spec.etcd = etcd_.urls();
    admin::EtcdClient etcd(spec);
    json puts = json::array();
    for (int i = 0; i < 200; ++i)
      puts.push_back({{"request_put", {{"key", admin::base64_encode("/other/" + std::to_string(i))}, {"value", ""}}}});
    auto big = etcd.call("/v3/kv/txn", {{"success", puts}});
    ASSERT_FALSE(big);
    EXPECT_TRUE(admin::EtcdClient::refused(big.error())) << big.error().message;
    EXPECT_EQ(admin::EtcdClient::too_big(big.error()), "etcdserver: too many operations in txn request");
    ClusterSpec nowhere;
    nowhere.etcd = {"http://127.0.0.1:" + std::to_string(stable_port())};
    admin::EtcdClient gone(nowhere);
    auto lost = gone.call("/v3/kv/txn", {{"success", json::array()}}, 600);
    ASSERT_FALSE(lost);
    EXPECT_FALSE(admin::EtcdClient::refused(lost.error())) << lost.error().message;
  }

  // Back from the other node.
  r = call(b, {{"cmd", "undrain"}, {"region", "us-east-1"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  for (Node* n : {&a1, &b})
    EXPECT_TRUE(eventually([&] { return a(*n) == "192.0.2.10" && a(*n, "app.example.com") == "192.0.2.20"; }, 2000))
        << n->name;

  // etcd allowed more: the same drain is one transaction.
  etcd_.kill_all();
  etcd_.set_flags({"--max-txn-ops", "300"});
  etcd_.start_all();
  ASSERT_TRUE(etcd_.wait_healthy()) << etcd_.logs();
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;
  r = call(a1, {{"cmd", "drain"}, {"region", "eu-west-1"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["changed"].size(), 70u);
  for (Node* n : {&a1, &b})
    EXPECT_TRUE(eventually([&] { return a(*n, "r7.example.com") == "198.51.100.40"; }, 2000)) << n->name;
  ASSERT_TRUE(call(b, {{"cmd", "undrain"}, {"region", "eu-west-1"}})["ok"].get<bool>());

  // For a while: both nodes end it, and its end is written once, as one
  // transaction — by whichever node is first.
  r = call(b, {{"cmd", "drain"}, {"region", "us-east-1"}, {"for", "1s"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(eventually([&] { return a(a1) == "198.51.100.10"; }, 1000));
  for (Node* n : {&a1, &b})
    EXPECT_TRUE(eventually([&] { return a(*n) == "192.0.2.10" && a(*n, "app.example.com") == "192.0.2.20"; }, 5000))
        << n->name;
  auto ends = [&](Node& n) {
    std::vector<json> out;
    for (const auto& e : history(n))
      if (e["action"] == "expire") out.push_back(e);
    return out;
  };
  ASSERT_TRUE(eventually([&] { return ends(a1).size() == 1 && ends(b).size() == 1; }, 3000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // and no second one follows
  for (Node* n : {&a1, &b}) {
    auto e = ends(*n);
    ASSERT_EQ(e.size(), 1u) << n->name;
    EXPECT_EQ(e[0]["count"], 3);
    EXPECT_EQ(e[0]["was"], "drain");
  }
}

TEST_F(Cluster, FlipOnOneNode_IsAnsweredByEveryNode) {
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  Node& c = add_node("ns3");
  for (Node* n : {&a1, &b, &c}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;
  EXPECT_EQ(a(b), "192.0.2.10");

  // The seeds' 255/0 flip, on ns1 only.
  ASSERT_TRUE(weight(a1, "use2", 255)["ok"].get<bool>());
  json r = weight(a1, "use1", 0);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(a(a1), "198.51.100.10");  // acknowledged = applied here
  for (Node* n : {&b, &c}) EXPECT_TRUE(eventually([&] { return a(*n) == "198.51.100.10"; }, 1000)) << n->name;

  // Every node's status shows the same cluster; history names the node.
  ASSERT_TRUE(eventually([&] { return cluster_status(c)["nodes"].size() == 3; }, 5000));
  json cs = cluster_status(c);
  EXPECT_EQ(cs["node"], "ns3");
  EXPECT_EQ(cs["prefix"], prefix_);
  EXPECT_FALSE(cs["digest_mismatch"].get<bool>());
  std::set<std::string> names;
  for (const auto& n : cs["nodes"]) {
    names.insert(n["node"]);
    EXPECT_EQ(n["digest"], cs["digest"]);
    EXPECT_EQ(n["self"].get<bool>(), n["node"] == "ns3");
  }
  EXPECT_EQ(names, (std::set<std::string>{"ns1", "ns2", "ns3"}));
  json h = history(c);
  ASSERT_GE(h.size(), 2u);
  EXPECT_EQ(h.back()["action"], "weight");
  EXPECT_EQ(h.back()["node"], "ns1");
  EXPECT_EQ(h.back()["endpoint"], "www.example.com./A/use1");
  EXPECT_EQ(h.back()["seq"], r["seq"]);  // the journal's seq is the etcd revision the ack named
  EXPECT_EQ(h.back()["from"], 255);
  EXPECT_EQ(h.back()["to"], 0);

  // A drain on ns2 takes use2 out on ns1 and ns3 as well.
  ASSERT_TRUE(weight(b, "use1", 255)["ok"].get<bool>());
  ASSERT_TRUE(call(b, {{"cmd", "drain"}, {"record", "www.example.com"}, {"endpoint", "use2"}})["ok"].get<bool>());
  for (Node* n : {&a1, &b, &c}) EXPECT_TRUE(eventually([&] { return a(*n) == "192.0.2.10"; }, 1000)) << n->name;

  // The vanectl view of it.
  auto out = Process({VANECTL_PATH, "-s", a1.sock(), "status"});
  out.wait(5000);
  EXPECT_NE(out.output().find("cluster " + prefix_ + " (node ns1): connected"), std::string::npos) << out.output();
  EXPECT_NE(out.output().find("ns3"), std::string::npos);
}

// The HTTP API on a second node: the remote vanectl flips through ns2's
// API, the write is acknowledged after quorum like one on its socket, every
// node answers it, and every node's journal names the token.
TEST_F(Cluster, RemoteVanectl_ThroughASecondNodesApi_IsAnsweredByEveryNode) {
  Node& n1 = add_node("ns1");
  const std::string api = "api:\n  listen: \"127.0.0.1:0\"\n  tokens: [{ name: runbook, token_file: runbook.token, scope: write },\n"
                          "           { name: viewer, token_file: viewer.token, scope: read }]\n";
  Node& n2 = add_node("ns2", api, kExampleZone,
                      {{"runbook.token", "runbook-0123456789abcdef\n"}, {"viewer.token", "viewer-0123456789abcdef\n"}});
  Node& n3 = add_node("ns3");
  for (Node* n : {&n1, &n2, &n3}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;
  uint16_t port = api_port(n2.vaned->process());
  ASSERT_NE(port, 0) << n2.vaned->process().output();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto ctl = [&](const std::string& token, std::vector<std::string> args, std::string& out) {
    std::vector<std::string> argv{VANECTL_PATH, "--url", url, "--token-file", n2.dir.path() + "/" + token + ".token"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    int rc = p.wait(30000);
    out = p.output();
    return rc;
  };
  std::string out;
  ASSERT_EQ(ctl("runbook", {"weight", "www.example.com", "use2", "255", "--reason", "region drill"}, out), 0) << out;
  ASSERT_EQ(ctl("runbook", {"weight", "www.example.com", "use1", "0", "--json"}, out), 0) << out;
  json ack = json::parse(out);
  EXPECT_EQ(a(n2), "198.51.100.10");  // acknowledged = applied on the node that took it
  for (Node* n : {&n1, &n3}) EXPECT_TRUE(eventually([&] { return a(*n) == "198.51.100.10"; }, 1000)) << n->name;
  for (Node* n : {&n1, &n2, &n3}) {
    json h = history(*n);
    ASSERT_GE(h.size(), 2u) << n->name;
    EXPECT_EQ(h.back()["seq"], ack["seq"]) << n->name;
    EXPECT_EQ(h.back()["by"], "runbook") << n->name;
    EXPECT_EQ(h.back()["via"], "api") << n->name;
    EXPECT_EQ(h.back()["node"], "ns2") << n->name;
    EXPECT_EQ(h[h.size() - 2]["reason"], "region drill") << n->name;
  }
  // The read token sees the cluster, may not write.
  ASSERT_EQ(ctl("viewer", {"status"}, out), 0) << out;
  EXPECT_NE(out.find("(node ns2): connected"), std::string::npos) << out;
  EXPECT_EQ(ctl("viewer", {"drain", "www.example.com", "use2"}, out), 1);
  EXPECT_NE(out.find("token 'viewer' (scope: read) may not drain"), std::string::npos) << out;
  // With etcd gone, a write through the API is refused (503), not applied.
  etcd_.kill_all();
  EXPECT_TRUE(eventually([&] { return !connected(n2); }, 10000));
  ASSERT_EQ(ctl("runbook", {"weight", "www.example.com", "use1", "255", "--json"}, out), 1) << out;
  EXPECT_EQ(json::parse(out)["code"], "unavailable") << out;
  EXPECT_EQ(a(n2), "198.51.100.10");
}

// Two operators changing one endpoint through two nodes at the same moment:
// each acknowledged change is in the journal, and the journal's chain for
// the endpoint has no gap (every change's "from" is the previous one's "to").
TEST_F(Cluster, ConcurrentChangesToOneEndpoint_NeverLoseAnUpdate) {
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  std::set<int64_t> acked;
  int refused = 0;
  for (int round = 0; round < 25; ++round) {
    json ra, rb;
    std::thread t([&] { ra = weight(a1, "use3", 2 * round + 1); });
    rb = weight(b, "use3", 2 * round + 2);
    t.join();
    for (const json* r : {&ra, &rb}) {
      if ((*r)["ok"].get<bool>()) {
        if ((*r)["seq"].get<int64_t>() > 0) acked.insert((*r)["seq"].get<int64_t>());
      } else {
        ++refused;
        EXPECT_NE((*r)["error"].get<std::string>().find("changed concurrently"), std::string::npos) << r->dump();
      }
    }
  }
  ASSERT_TRUE(eventually([&] { return weights(a1) == weights(b); }, 2000));
  json h = history(a1);
  std::vector<json> chain;
  for (const auto& e : h)
    if (e.value("endpoint", "") == "www.example.com./A/use3" && e["action"] == "weight") chain.push_back(e);
  std::set<int64_t> journaled;
  for (size_t i = 0; i < chain.size(); ++i) {
    journaled.insert(chain[i]["seq"].get<int64_t>());
    if (i > 0) {
      EXPECT_EQ(chain[i]["from"], chain[i - 1]["to"]) << chain[i].dump();
    }
  }
  for (int64_t s : acked) {
    EXPECT_TRUE(journaled.count(s)) << "acknowledged change " << s << " is not in the journal";
  }
  EXPECT_EQ(chain.back()["to"], weights(a1)["use3"]);
  RecordProperty("refused", refused);
}

// 200 changes on random nodes while the etcd leader is killed (and comes
// back) and a vaned is kill -9'd (and comes back) at random moments: every
// acknowledged change is in the cluster, and all nodes answer alike.
TEST_F(Cluster, Chaos_LeaderAndNodeKills_LoseNoAcknowledgedChange) {
  for (const char* n : {"ns1", "ns2", "ns3"}) add_node(n);
  for (auto& n : nodes_) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  std::mt19937 rng(20261126);
  const std::vector<std::string> eps{"use1", "use2", "use3"};
  // Per endpoint: the last acknowledged value, and values written after it
  // whose outcome is unknown (errors may or may not have landed).
  std::map<std::string, int> last_acked{{"use1", 255}, {"use2", 0}, {"use3", 0}};
  std::map<std::string, std::set<int>> maybe;
  std::set<int64_t> acked_seqs;
  int ok = 0, failed = 0, leader_kills = 0, node_kills = 0;
  int down_etcd = -1;
  Node* down_node = nullptr;
  for (int i = 0; i < 200; ++i) {
    int roll = int(rng() % 100);
    if (roll < 4 && down_etcd < 0) {  // kill the leader
      int l = etcd_.leader();
      if (l >= 0) {
        etcd_.kill(l);
        down_etcd = l;
        ++leader_kills;
      }
    } else if (roll < 8 && down_etcd >= 0) {
      etcd_.start(down_etcd);
      down_etcd = -1;
    } else if (roll < 11 && !down_node) {
      down_node = nodes_[rng() % nodes_.size()].get();
      kill(*down_node);
      ++node_kills;
    } else if (roll < 14 && down_node) {
      start(*down_node);
      down_node = nullptr;
    }
    Node* n;
    do n = nodes_[rng() % nodes_.size()].get();
    while (n == down_node);
    const std::string& ep = eps[rng() % eps.size()];
    int w = int(rng() % 256);
    json r = weight(*n, ep, w);
    if (r["ok"].get<bool>()) {
      ++ok;
      last_acked[ep] = w;
      maybe[ep].clear();
      if (r["seq"].get<int64_t>() > 0) acked_seqs.insert(r["seq"].get<int64_t>());
    } else {
      ++failed;
      maybe[ep].insert(w);
    }
  }
  if (down_etcd >= 0) etcd_.start(down_etcd);
  if (down_node) start(*down_node);
  ASSERT_TRUE(etcd_.wait_healthy()) << etcd_.logs();
  for (auto& n : nodes_)
    ASSERT_TRUE(eventually([&] { return connected(*n); }, 15000))
        << n->name << ": " << status(*n).dump() << "\n" << n->vaned->process().output() << etcd_.logs();
  EXPECT_GE(ok, 150) << "too few changes went through: " << failed << " failed";
  EXPECT_GE(leader_kills + node_kills, 2);
  // Converged: every node holds the same weights, and each is the last
  // acknowledged value or one written after it whose ack was lost.
  ASSERT_TRUE(eventually(
      [&] {
        auto w0 = weights(*nodes_[0]);
        return weights(*nodes_[1]) == w0 && weights(*nodes_[2]) == w0;
      },
      10000));
  auto final_w = weights(*nodes_[0]);
  for (const auto& ep : eps) {
    EXPECT_TRUE(final_w[ep] == last_acked[ep] || maybe[ep].count(final_w[ep]))
        << ep << " is " << final_w[ep] << ", last acknowledged " << last_acked[ep];
  }
  std::set<int64_t> journaled;
  for (const auto& e : history(*nodes_[2], 10000)) journaled.insert(e["seq"].get<int64_t>());
  for (int64_t s : acked_seqs) {
    EXPECT_TRUE(journaled.count(s)) << "acknowledged change " << s << " lost";
  }
  // And they answer alike.
  for (int q = 0; q < 5; ++q) {
    std::string a0 = a(*nodes_[0], "app.example.com");
    EXPECT_EQ(a(*nodes_[1], "app.example.com"), a0);
    EXPECT_EQ(a(*nodes_[2], "app.example.com"), a0);
  }
  RecordProperty("acknowledged", ok);
  RecordProperty("failed", failed);
  RecordProperty("leader_kills", leader_kills);
  RecordProperty("node_kills", node_kills);
}

TEST_F(Cluster, EtcdDown_NodesAnswer_WritesFailFast_ThenConverge) {
  Node& a1 = add_node("ns1", "http: { listen: \"127.0.0.1:0\" }\n");
  Node& b = add_node("ns2");
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  ASSERT_TRUE(weight(a1, "use1", 0)["ok"].get<bool>());
  ASSERT_TRUE(weight(a1, "use2", 255)["ok"].get<bool>());
  ASSERT_TRUE(eventually([&] { return a(b) == "198.51.100.10"; }, 1000));

  etcd_.kill_all();
  // Answers go on from the last applied state.
  for (Node* n : {&a1, &b}) EXPECT_EQ(a(*n), "198.51.100.10");
  // A write fails within 3 s, names the endpoints it tried, exit code 1.
  auto t0 = std::chrono::steady_clock::now();
  Process ctl({VANECTL_PATH, "-s", b.sock(), "weight", "www.example.com", "use3", "9"});
  int rc = ctl.wait(10000);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc, 1) << ctl.output();
  EXPECT_LT(secs, 3.5);
  for (const auto& url : etcd_.urls()) {
    EXPECT_NE(ctl.output().find(url), std::string::npos) << ctl.output();
  }
  EXPECT_NE(ctl.output().find("not acknowledged"), std::string::npos) << ctl.output();
  EXPECT_EQ(weights(b)["use3"], 0);  // nothing changed
  // Status and /metrics say so, with the age of the state.
  ASSERT_TRUE(eventually([&] { return !connected(a1); }, 5000));
  json cs = cluster_status(a1);
  EXPECT_FALSE(cs["connected"].get<bool>());
  EXPECT_GT(cs["state_age_s"].get<double>(), 0.0);
  EXPECT_TRUE(cs.contains("error"));
  httplib::Client http("127.0.0.1", http_port(a1.vaned->process()));
  auto m = http.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("vane_cluster_connected{node=\"ns1\"} 0"), std::string::npos);
  EXPECT_NE(m->body.find("vane_cluster_state_age_seconds "), std::string::npos);

  // A node restarted while etcd is down serves its cached state, and says so.
  kill(b);
  start(b);
  EXPECT_EQ(a(b), "198.51.100.10");
  EXPECT_NE(b.vaned->process().output().find("serving the cached state of revision"), std::string::npos);
  EXPECT_FALSE(connected(b));

  // etcd back: writes flow, the nodes converge.
  etcd_.start_all();
  ASSERT_TRUE(etcd_.wait_healthy());
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;
  ASSERT_TRUE(eventually([&] { return weight(b, "use2", 0)["ok"].get<bool>(); }, 5000));
  ASSERT_TRUE(weight(b, "use1", 255)["ok"].get<bool>());
  for (Node* n : {&a1, &b}) EXPECT_TRUE(eventually([&] { return a(*n) == "192.0.2.10"; }, 1000)) << n->name;
}

TEST_F(Cluster, CompactedWhileANodeWasDown_ItCatchesUpWithoutFlapping) {
  Node& a1 = add_node("ns1");
  Node& c = add_node("ns3");
  for (Node* n : {&a1, &c}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  kill(c);
  // Many changes, then the history they made is compacted away.
  for (int i = 29; i >= 0; --i) ASSERT_TRUE(weight(a1, "use3", i)["ok"].get<bool>());
  ASSERT_TRUE(weight(a1, "use1", 0)["ok"].get<bool>());
  ASSERT_TRUE(weight(a1, "use2", 255)["ok"].get<bool>());
  int64_t rev = etcd_.revision();
  json compact = etcd_.call("/v3/kv/compaction", {{"revision", std::to_string(rev)}, {"physical", true}});
  ASSERT_TRUE(compact.contains("header")) << compact.dump();
  // Back up: it serves its cache (the old answer) until it has caught up;
  // then the new answer, and never the old one again.
  start(c);
  std::vector<std::string> seen;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < end) {
    std::string ans = a(c);
    if (seen.empty() || seen.back() != ans) seen.push_back(ans);
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "198.51.100.10");
  EXPECT_LE(seen.size(), 2u) << "answers flapped: " << ::testing::PrintToString(seen);
  EXPECT_EQ(weights(c)["use3"], 0);
  EXPECT_EQ(weights(c)["use2"], 255);
  EXPECT_TRUE(connected(c));
  EXPECT_GE(cluster_status(c)["applied_revision"].get<int64_t>(), rev);
}

TEST_F(Cluster, AgentViews_ReachEveryNode_AndExpireWithTheirLease) {
  Endpoint web;
  records_ = "records:\n" + www_weighted(true) + app_failover(web.port());
  std::string checks = "checks:\n  web: { type: http, path: /health, interval: 500ms, timeout: 200ms, fall: 2, rise: 2 }\n";
  Node& a1 = add_node("ns1", checks + "http: { listen: \"127.0.0.1:0\", token_file: agent.token }\n", kExampleZone,
                      {{"agent.token", "agent-secret\n"}});
  Node& b = add_node("ns2", checks);
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  std::string agent_yaml = a1.dir.write(
      "agent.yaml", "vantage: probe-eu\nreport_to: http://127.0.0.1:" + std::to_string(http_port(a1.vaned->process())) +
                        "\ntoken_file: agent.token\nconfig: vane.yaml\nreport_interval: 200ms\n");
  auto views_on = [&](Node& n) {
    json s = status(n);
    for (const auto& r : s["records"])
      if (r["name"] == "app.example.com.")
        for (const auto& e : r["endpoints"])
          if (e["name"] == "primary") return e.value("vantages", json::object());
    return json::object();
  };
  {
    Process agent({vaned_path(), "agent", "--config", agent_yaml});
    // ns2 never heard from the agent: it sees its view through etcd. (Fresh
    // once ns2 trusts other vantages' views: not while its own contact with
    // etcd lags, as it can on a loaded machine.)
    ASSERT_TRUE(eventually(
        [&] {
          json v = views_on(b);
          return v.contains("probe-eu") && v["probe-eu"]["fresh"].get<bool>();
        },
        10000))
        << agent.output() << views_on(b).dump();
    json v = views_on(b);
    EXPECT_TRUE(v["probe-eu"]["up"].get<bool>());
    EXPECT_TRUE(v["probe-eu"]["fresh"].get<bool>());
    EXPECT_TRUE(v.contains("ns1"));  // and ns1's own checker's view
    EXPECT_TRUE(v.contains("ns2"));
    agent.signal(SIGKILL);
    agent.wait(5000);
  }
  // Silent: its lease (3 check intervals, at least 5 s) runs out, and every
  // node forgets the view at once.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return !views_on(b).contains("probe-eu"); }, 12000));
  EXPECT_TRUE(eventually([&] { return !views_on(a1).contains("probe-eu"); }, 2000));
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

// Two nodes hear the same agent. A report that reaches one of them late,
// after a newer one reached the other, neither goes to etcd nor changes a
// view; and when another node's write of an older report does reach etcd
// (it was written before that node saw the newer one), the node that heard
// the newer one writes it back. A restarted agent's reports count at once.
TEST_F(Cluster, AgentReports_AnOlderOneDeliveredLate_NeverTakesBackANewerOne) {
  Endpoint web;
  records_ = "records:\n" + www_weighted(true) + app_failover(web.port());
  std::string extra =
      "checks:\n  web: { type: http, path: /health, interval: 500ms, timeout: 200ms, fall: 2, rise: 2 }\n"
      "http: { listen: \"127.0.0.1:0\", token_file: agent.token }\n";
  Node& n1 = add_node("ns1", extra, kExampleZone, {{"agent.token", "agent-secret\n"}});
  Node& n2 = add_node("ns2", extra, kExampleZone, {{"agent.token", "agent-secret\n"}});
  for (Node* n : {&n1, &n2}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  const std::string endpoint = "app.example.com./A/primary";
  const std::string key = prefix_ + "/obs/probe-eu/" + endpoint;
  auto report = [&](Node& n, int boot, int seq, bool up) {
    httplib::Client c("127.0.0.1", http_port(n.vaned->process()));
    json body{{"vantage", "probe-eu"},
              {"boot", boot},
              {"seq", seq},
              {"observations", {{{"endpoint", endpoint}, {"up", up}, {"detail", up ? "200" : "refused"}}}}};
    auto r = c.Post("/v1/observations", {{"Authorization", "Bearer agent-secret"}}, body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  };
  auto view_on = [&](Node& n) {  // the agent's view as the node counts it, or null
    json s = status(n);
    for (const auto& r : s["records"])
      if (r["name"] == "app.example.com.")
        for (const auto& e : r["endpoints"])
          if (e["name"] == "primary" && e["vantages"].contains("probe-eu")) return e["vantages"]["probe-eu"];
    return json();
  };
  auto up_on = [&](Node& n) {
    json v = view_on(n);
    return v.is_object() ? std::optional<bool>(v["up"]) : std::nullopt;
  };
  auto stored = [&] { return etcd_.value_of(key); };  // etcd's copy of the agent's view, or {}
  auto stale_on = [&](Node& n) {
    return metric(http_port(n.vaned->process()), R"(vane_check_observations_total{vantage="probe-eu",view="stale"})");
  };

  // Report 2 (down) reaches ns1, and through etcd ns2.
  report(n1, 77, 2, false);
  ASSERT_TRUE(eventually([&] { return up_on(n2) == false; }, 5000)) << view_on(n2).dump();
  EXPECT_EQ(stored().value("seq", 0), 2) << stored().dump();
  // Report 1 (up), sent before it, reaches ns2 only now: counted as stale;
  // no view changes and etcd keeps report 2.
  report(n2, 77, 1, true);
  ASSERT_TRUE(eventually([&] { return stale_on(n2) == 1; }, 5000)) << stale_on(n2);
  for (Node* n : {&n1, &n2}) EXPECT_EQ(up_on(*n), false) << n->name;
  EXPECT_EQ(stored().value("seq", 0), 2) << stored().dump();
  EXPECT_EQ(stored()["up"], false);

  // A node's write of report 1 that reached etcd after report 2 (written
  // before that node saw report 2): ns1, which heard report 2, writes it back.
  auto kv = [&] { return etcd_.entry(key); };
  ASSERT_TRUE(kv().contains("lease")) << kv().dump();
  json put = etcd_.call("/v3/kv/put",
                        {{"key", admin::base64_encode(key)},
                         {"value", admin::base64_encode(R"({"up":true,"rtt_ms":0,"detail":"200","boot":77,"seq":1})")},
                         {"lease", kv()["lease"]}});
  int64_t put_at = std::stoll(put["header"]["revision"].get<std::string>());
  ASSERT_TRUE(eventually([&] { return stored().value("seq", 0) == 2; }, 5000)) << stored().dump();
  EXPECT_EQ(stored()["up"], false);
  EXPECT_GT(std::stoll(kv()["mod_revision"].get<std::string>()), put_at) << "written back after the stale write";
  ASSERT_TRUE(eventually([&] { return up_on(n2) == false; }, 5000)) << view_on(n2).dump();
  EXPECT_EQ(up_on(n1), false);

  // The agent restarted (another boot): its first report counts everywhere.
  report(n2, 78, 1, true);
  for (Node* n : {&n1, &n2}) EXPECT_TRUE(eventually([&] { return up_on(*n) == true; }, 5000)) << n->name;
  EXPECT_EQ(stored().value("boot", 0), 78) << stored().dump();
  EXPECT_EQ(stale_on(n1), -1) << "ns1 never got a stale report";
}

// A node's own view: a write of an older one landing in etcd after the
// newer (sent on a link that was cut, delivered when it healed) is written
// back by the node at once — every other node would go on counting it.
TEST_F(Cluster, OwnView_AnOlderWriteLandingLate_IsWrittenBack) {
  Endpoint web;
  records_ = "records:\n" + www_weighted(true) + app_failover(web.port());
  std::string extra =
      "checks:\n  web: { type: http, path: /health, interval: 500ms, timeout: 200ms, fall: 2, rise: 2 }\n";
  Node& n1 = add_node("ns1", extra);
  ASSERT_TRUE(eventually([&] { return connected(n1); }, 10000));
  const std::string key = prefix_ + "/obs/ns1/app.example.com./A/primary";
  auto kv = [&] { return etcd_.entry(key); };
  auto stored = [&] { return etcd_.value_of(key); };  // the node's view as etcd holds it, or {} before its first write
  ASSERT_TRUE(eventually([&] { return stored().value("up", false); }, 5000)) << stored().dump();
  ASSERT_TRUE(kv().contains("lease")) << kv().dump();
  json put = etcd_.call(
      "/v3/kv/put", {{"key", admin::base64_encode(key)},
                     {"value", admin::base64_encode(R"({"up":false,"rtt_ms":0,"detail":"http: Timeout was reached"})")},
                     {"lease", kv()["lease"]}});
  int64_t put_at = std::stoll(put["header"]["revision"].get<std::string>());
  ASSERT_TRUE(eventually([&] { return stored().value("up", false); }, 3000)) << stored().dump();
  EXPECT_GT(std::stoll(kv()["mod_revision"].get<std::string>()), put_at) << "written back after the stale write";
  EXPECT_EQ(stored().value("detail", "?"), "") << stored().dump();
}

TEST_F(Cluster, TimedOverride_EndsOnceForTheWholeCluster) {
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  Node& c = add_node("ns3");
  for (Node* n : {&a1, &b, &c}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  json r = call(b, {{"cmd", "force"},
                    {"record", "app.example.com"},
                    {"endpoint", "primary"},
                    {"state", "down"},
                    {"for", "2s"},
                    {"reason", "drill"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  for (Node* n : {&a1, &b, &c})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "198.51.100.20"; }, 1000));
  for (Node* n : {&a1, &b, &c})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 4000)) << n->name;
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // late expiry writes would land by now
  for (Node* n : {&a1, &b, &c}) {
    int expires = 0;
    for (const auto& e : history(*n))
      if (e["action"] == "expire" && e["endpoint"] == "app.example.com./A/primary") ++expires;
    EXPECT_EQ(expires, 1) << n->name;
  }
}

TEST_F(Cluster, HealthVerdicts_AgreeOnEveryNode_AndAreJournaledOnce) {
  Endpoint web;
  records_ = "checks:\n  web: { type: http, path: /health, interval: 200ms, timeout: 150ms, fall: 2, rise: 2 }\n"
             "records:\n" + app_failover(web.port());
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  Node& c = add_node("ns3");
  for (Node* n : {&a1, &b, &c}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  for (Node* n : {&a1, &b, &c}) EXPECT_EQ(a(*n, "app.example.com"), "192.0.2.20");
  web.stop();
  for (Node* n : {&a1, &b, &c})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "198.51.100.20"; }, 5000)) << n->name;
  web.start();
  for (Node* n : {&a1, &b, &c})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 5000)) << n->name;
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  for (Node* n : {&a1, &b, &c}) {
    std::vector<std::string> flips;
    for (const auto& e : history(*n))
      if (e["action"] == "health" && e["endpoint"] == "app.example.com./A/primary") flips.push_back(e["to"]);
    EXPECT_EQ(flips, (std::vector<std::string>{"down", "up"})) << n->name;
  }
}

// Failover never waits on etcd: with every etcd member hung (SIGSTOP: the
// connections stay open, nothing answers), each node follows its own health
// checks within the same deadline as with etcd healthy; when etcd comes back the nodes
// converge on the cluster's verdict without an answer flapping, and each
// flip is journaled once.
TEST_F(Cluster, EtcdHung_FailoverIsAsFastAsWithEtcd_AndConvergesWithoutFlapping) {
  Endpoint web;
  records_ = "checks:\n  web: { type: http, path: /health, interval: 1s, timeout: 400ms, fall: 2, rise: 2 }\n"
             "records:\n" + app_failover(web.port());
  // Three vantages: with etcd, two must see the endpoint down (quorum 0.5);
  // cut off, a node has only its own probes — and acts on them at once
  // instead of counting the others' last views until they go stale.
  Node& a1 = add_node("ns1");  // writes the verdicts (first by name)
  Node& b = add_node("ns2");
  Node& c = add_node("ns3");
  std::vector<Node*> both{&a1, &b, &c};
  for (Node* n : both) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  for (Node* n : both) ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 5000));
  // The endpoint dies; how long until each node answers the standby.
  auto failover = [&] {
    std::map<std::string, double> ms;
    web.stop();  // (as in the health tests: from when it is down)
    auto t0 = std::chrono::steady_clock::now();
    while (ms.size() < both.size() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8)) {
      for (Node* n : both)
        if (!ms.count(n->name) && a(*n, "app.example.com") == "198.51.100.20")
          ms[n->name] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return ms;
  };
  auto healthy = failover();
  web.start();
  for (Node* n : both) ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 5000));
  for (int i = 0; i < etcd_.size(); ++i) etcd_.pause(i);
  auto hung = failover();
  for (Node* n : both) {
    ASSERT_TRUE(healthy.count(n->name) && hung.count(n->name)) << n->name << " never failed over";
    std::cout << n->name << ": failover " << healthy[n->name] << " ms with etcd, " << hung[n->name]
              << " ms with etcd hung\n";
    // The health tests' deadline, etcd or not: interval x fall + 0.5 s.
    EXPECT_LE(healthy[n->name], 2500) << n->name;
    EXPECT_LE(hung[n->name], 2500) << n->name << n->vaned->process().output();
  }
  // etcd back while the endpoint is still down: every answer stays the standby.
  for (int i = 0; i < etcd_.size(); ++i) etcd_.resume(i);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  int samples = 0;
  while (std::chrono::steady_clock::now() < until) {
    for (Node* n : both) EXPECT_EQ(a(*n, "app.example.com"), "198.51.100.20") << n->name << " flapped";
    ++samples;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(samples, 50);
  for (Node* n : both) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;
  web.start();
  for (Node* n : both)
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 5000)) << n->name;
  // Each flip journaled once, the same on every node.
  for (Node* n : both) {
    json journaled = json::array();
    EXPECT_TRUE(eventually(
        [&] {
          std::vector<std::string> flips;
          journaled = json::array();
          for (const auto& e : history(*n))
            if (e["action"] == "health" && e["endpoint"] == "app.example.com./A/primary") {
              flips.push_back(e["to"]);
              journaled.push_back(e);
            }
          return flips == std::vector<std::string>{"down", "up", "down", "up"};
        },
        5000))
        << n->name << ": " << journaled.dump() << "\n"
        << n->vaned->process().output();
  }
}

// The node that writes verdicts, cut off from a hung etcd, sees the
// endpoint come back and fail again: both flips apply at once, and once etcd
// answers each is journaled — once, in order, with when it was decided —
// though etcd's verdict ends where it was (the flips back and forth were
// lost before, and the last one journaled twice). `back_at_resume`: the
// endpoint comes back as etcd resumes, so its verdict races the late ones'
// writes (one decided while a write for its endpoint is out waits for it:
// written at once, it could land before the flips still to journal, and
// take them with it).
void Cluster::flips_while_etcd_hung(bool back_at_resume) {
  Endpoint web;
  records_ = app_checked_every_500ms(web);
  Node& n = add_node("ns1");
  ASSERT_TRUE(eventually([&] { return connected(n); }, 10000));
  ASSERT_TRUE(eventually([&] { return a(n, "app.example.com") == "192.0.2.20"; }, 5000));
  auto flips = [&] {
    json out = json::array();
    for (const auto& e : history(n))
      if (e["action"] == "health" && e["endpoint"] == "app.example.com./A/primary") out.push_back(e);
    return out;
  };
  web.stop();
  ASSERT_TRUE(eventually([&] { return flips().size() == 1; }, 5000));
  for (int i = 0; i < etcd_.size(); ++i) etcd_.pause(i);
  ASSERT_TRUE(eventually([&] { return !connected(n); }, 5000));
  web.start();
  ASSERT_TRUE(eventually([&] { return a(n, "app.example.com") == "192.0.2.20"; }, 5000)) << "up, cut off";
  web.stop();
  ASSERT_TRUE(eventually([&] { return a(n, "app.example.com") == "198.51.100.20"; }, 5000)) << "down, cut off";
  if (back_at_resume) web.start();
  for (int i = 0; i < etcd_.size(); ++i) etcd_.resume(i);
  ASSERT_TRUE(eventually([&] { return connected(n); }, 10000));
  if (!back_at_resume) web.start();
  ASSERT_TRUE(eventually([&] { return a(n, "app.example.com") == "192.0.2.20"; }, 5000));
  json got;
  EXPECT_TRUE(eventually([&] { return (got = flips()).size() >= 4; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // nothing more comes
  got = flips();
  ASSERT_EQ(got.size(), 4u) << got.dump() << "\n" << n.vaned->process().output();
  std::vector<std::string> to, from;
  for (const auto& e : got) to.push_back(e["to"]), from.push_back(e["from"]);
  EXPECT_EQ(to, (std::vector<std::string>{"down", "up", "down", "up"})) << got.dump();
  EXPECT_EQ(from, (std::vector<std::string>{"up", "down", "up", "down"})) << got.dump();
  // The two decided while cut off say so, and when.
  for (int i : {1, 2}) {
    EXPECT_NE(got[i]["detail"].get<std::string>().find("when etcd did not answer"), std::string::npos) << got[i];
    ASSERT_TRUE(got[i].contains("decided_ms")) << got[i];
    EXPECT_LT(got[i]["decided_ms"].get<int64_t>(), got[i]["at_ms"].get<int64_t>()) << got[i];
  }
  EXPECT_LT(got[1]["decided_ms"].get<int64_t>(), got[2]["decided_ms"].get<int64_t>());
  if (!back_at_resume) {
    EXPECT_FALSE(got[3].contains("decided_ms")) << "decided while connected: " << got[3];
  }
  // etcd ends with the last verdict.
  EXPECT_TRUE(eventually([&] { return !primary_of(n).value("health_local", false); }, 5000));
}

TEST_F(Cluster, EtcdHung_FlipsDecidedMeanwhile_AreEachJournaledOnceInOrder) {
  flips_while_etcd_hung(false);
}

TEST_F(Cluster, EtcdHung_EndpointBackAsEtcdResumes_EveryFlipJournaledOnceInOrder) {
  flips_while_etcd_hung(true);
}

// Two nodes, etcd hung while the endpoint fails and comes back, ending
// where etcd's verdict was: the node that writes verdicts journals both
// flips (no verdict changes in etcd); the other node, which decided the same
// ones, journals none of its own (`health-local`) — once is the rule.
TEST_F(Cluster, EtcdHung_TwoNodesFlipAndReturn_OnlyTheWriterJournalsTheFlips) {
  Endpoint web;
  records_ = app_checked_every_500ms(web);
  Node& n1 = add_node("ns1");
  Node& n2 = add_node("ns2");
  for (Node* n : {&n1, &n2}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  auto entries = [&](Node& n, const std::string& action) {
    json out = json::array();
    for (const auto& e : history(n))
      if (e["action"] == action && e["endpoint"] == "app.example.com./A/primary") out.push_back(e);
    return out;
  };
  // etcd holds "up" (a flip each way while connected).
  web.stop();
  ASSERT_TRUE(eventually([&] { return entries(n1, "health").size() == 1; }, 5000));
  web.start();
  ASSERT_TRUE(eventually([&] { return entries(n1, "health").size() == 2; }, 5000));
  for (Node* n : {&n1, &n2})
    ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 5000)) << n->name;

  for (int i = 0; i < etcd_.size(); ++i) etcd_.pause(i);
  for (Node* n : {&n1, &n2}) ASSERT_TRUE(eventually([&] { return !connected(*n); }, 5000)) << n->name;
  web.stop();
  for (Node* n : {&n1, &n2})
    ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "198.51.100.20"; }, 5000)) << n->name;
  web.start();
  for (Node* n : {&n1, &n2})
    ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 5000)) << n->name;
  for (int i = 0; i < etcd_.size(); ++i) etcd_.resume(i);
  for (Node* n : {&n1, &n2}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;

  // The two flips decided while etcd hung, journaled by ns1 once each, and
  // nothing after them: a view write of ns2's that was in flight when etcd
  // hung is carried out as it resumes, outdated ("down"); the other
  // vantages' views count again only 1 s after etcd answers, by when ns2's
  // newer one has replaced it (counted at once, it flipped ns1 down and up
  // again in 0.1 s, under load).
  auto story = [&](Node& n) {
    std::vector<std::string> out;
    for (const auto& e : entries(n, "health"))
      out.push_back(e["node"].get<std::string>() + " " + e["to"].get<std::string>() +
                    (e.contains("decided_ms") ? " (late)" : ""));
    return out;
  };
  const std::vector<std::string> want{"ns1 down", "ns1 up", "ns1 down (late)", "ns1 up (late)"};
  EXPECT_TRUE(eventually([&] { return story(n2) == want; }, 5000)) << entries(n2, "health").dump();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // past ns2's grace (2 s)
  for (Node* n : {&n1, &n2}) {
    EXPECT_EQ(story(*n), want) << n->name << ": " << entries(*n, "health").dump();
    EXPECT_EQ(entries(*n, "health-local"), json::array()) << n->name << "\n" << n2.vaned->process().output();
  }
}

// A hung etcd leader (SIGSTOP: it holds its connections and answers
// nothing), the member every node's watch is on: a write is acknowledged by
// the new leader or refused within 3 s, answers never stall, and every
// node's watch starts again elsewhere — a change written after the election
// reaches all of them.
TEST_F(Cluster, EtcdLeaderHung_WritesMoveOn_AnswersNeverStall_WatchesReconnect) {
  for (const char* n : {"ns1", "ns2", "ns3"}) add_node(n);
  for (auto& n : nodes_) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  // The member every node's watch starts on is the one that leads, and hangs.
  const int leader = 0;
  ASSERT_TRUE(etcd_.make_leader(leader));
  std::atomic<bool> done{false};
  std::atomic<int> answered{0}, stalled{0};
  std::atomic<int64_t> worst_us{0};
  std::thread prober([&] {
    while (!done) {
      for (auto& n : nodes_) {
        auto t0 = std::chrono::steady_clock::now();
        std::string got = a(*n);  // 500 ms timeout
        int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        worst_us = std::max<int64_t>(worst_us, us);
        (got == "<timeout>" ? stalled : answered)++;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  etcd_.pause(leader);
  // A node whose watch was on the hung leader refuses writes (its state is
  // behind: "changed concurrently") until its watch starts again elsewhere
  // (3 s after its own heartbeat failed to come back), then takes them.
  int acked = 0, refused = 0, last = -1, tail_acked = 0;
  const int kWrites = 16;
  for (int i = 0; i < kWrites; ++i) {
    Node& n = *nodes_[size_t(i) % nodes_.size()];
    auto t0 = std::chrono::steady_clock::now();
    json r = weight(n, "use3", 10 + i);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 3.2) << n.name << ": " << r.dump();
    if (r["ok"].get<bool>()) {
      ++acked;
      last = 10 + i;
      tail_acked += i >= kWrites - 3;
    } else {
      ++refused;
      std::string err = r["error"].get<std::string>();
      EXPECT_TRUE(err.find("not acknowledged") != std::string::npos ||
                  err.find("changed concurrently") != std::string::npos)
          << r.dump();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  std::cout << "leader hung: " << acked << " writes acknowledged, " << refused << " refused\n";
  EXPECT_EQ(tail_acked, 3) << "after the election and the watches' restart, every node takes writes";
  for (auto& n : nodes_)
    EXPECT_TRUE(eventually([&] { return weights(*n)["use3"] == last; }, 5000))
        << n->name << " missed the change\n" << n->vaned->process().output();
  done = true;
  prober.join();
  etcd_.resume(leader);
  std::cout << "answers during the hang: " << answered << ", none in 500 ms: " << stalled << ", slowest "
            << worst_us / 1000.0 << " ms\n";
  EXPECT_GT(answered, 100);
  EXPECT_EQ(stalled, 0);
}

// A node whose clock is 5 s ahead (libfaketime, monotonic clocks left
// alone) finds it from the others' heartbeats and keeps the cluster's time:
// timed overrides set on a right node or on the skewed one end when they
// should on every node — never early, never twice — and the journal stays
// in etcd's revision order.
TEST_F(Cluster, ClockSkew_ANodeFiveSecondsAhead_EndsOverridesAtTheClustersTime) {
  // libfaketime has no effect on an ASan build (ASan's interceptors bind the
  // clock calls first; preloading ASan ahead of it hangs at start): the
  // normal build's run of the suite is where this is checked.
  if (under_asan()) GTEST_SKIP() << "libfaketime cannot be used under ASan";
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  Node& c = add_node("ns3", "", kExampleZone, {},
                     {"env", "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", "FAKETIME=+5s",
                      "FAKETIME_DONT_FAKE_MONOTONIC=1"});
  std::vector<Node*> all{&a1, &b, &c};
  for (Node* n : all) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  auto offset = [&](Node& n) { return cluster_status(n).value("clock_offset_ms", int64_t{0}); };
  ASSERT_TRUE(eventually([&] { return std::abs(offset(c) + 5000) < 300; }, 8000)) << offset(c);
  EXPECT_LT(std::abs(offset(a1)), 300);
  std::string ctl_out;
  run_ctl(VANECTL_PATH, c.sock(), {"status"}, ctl_out);
  EXPECT_NE(ctl_out.find("clock is 5.0 s ahead of the cluster's"), std::string::npos) << ctl_out;
  auto expires = [&](Node& n) {
    int count = 0;
    for (const auto& e : history(n)) count += e["action"] == "expire" && e["endpoint"] == "app.example.com./A/primary";
    return count;
  };
  int round = 0;
  for (Node* from : {&a1, &c}) {
    ++round;
    json r = call(*from, {{"cmd", "force"},
                          {"record", "app.example.com"},
                          {"endpoint", "primary"},
                          {"state", "down"},
                          {"for", "3s"},
                          {"reason", "drill from " + from->name}});
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    auto t0 = std::chrono::steady_clock::now();
    for (Node* n : all)
      ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "198.51.100.20"; }, 1000)) << n->name;
    // In force everywhere until its end (less the bound: 0.1 s, and the test's own slack).
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(2600)) {
      for (Node* n : all)
        ASSERT_EQ(a(*n, "app.example.com"), "198.51.100.20") << n->name << ": ended early (set on " << from->name << ")";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (Node* n : all)
      EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 1500))
          << n->name << ": ended late (set on " << from->name << ")";
    // Every node has heard of the end (journaled by whichever node was
    // first) before the next change to the endpoint: a change through a node
    // that has not is refused as "changed concurrently" (README), a race of
    // milliseconds this test is not about.
    for (Node* n : all) EXPECT_TRUE(eventually([&] { return expires(*n) >= round; }, 2000)) << n->name;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // late expiry writes would land by now
  for (Node* n : all) {
    int64_t seq = 0;
    for (const auto& e : history(*n)) {
      if (e.contains("seq")) {
        EXPECT_GT(e["seq"].get<int64_t>(), seq) << "journal out of revision order on " << n->name;
        seq = e["seq"].get<int64_t>();
      }
    }
    EXPECT_EQ(expires(*n), 2) << n->name;
  }
}

// failback: manual in a cluster: the hold is written once (by the node that
// writes verdicts), every node keeps answering the standby once the primary
// is healthy again, and `vanectl failback` on any node releases it on all.
TEST_F(Cluster, FailbackHold_IsSharedAndReleasedFromAnyNode) {
  Endpoint web;
  std::string rec = app_failover(web.port());
  rec.insert(rec.find("    endpoints:"), "    failback: manual\n");
  records_ = "checks:\n  web: { type: http, path: /health, body_contains: ok, interval: 200ms, timeout: 150ms, "
             "fall: 2, rise: 2 }\nrecords:\n" + rec;
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }));
  web.lie(true);
  for (Node* n : {&a1, &b})
    ASSERT_TRUE(eventually([&] { return status(*n)["records"][0]["held"].get<bool>(); }, 5000)) << n->name;
  web.lie(false);
  for (Node* n : {&a1, &b})
    ASSERT_TRUE(eventually([&] { return status(*n)["records"][0]["endpoints"][0]["health"] == "up"; }, 5000));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (Node* n : {&a1, &b}) EXPECT_EQ(a(*n, "app.example.com"), "198.51.100.20") << n->name;
  json r = call(b, {{"cmd", "failback"}, {"record", "app.example.com"}, {"reason", "re-synced"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  for (Node* n : {&a1, &b})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20"; }, 2000)) << n->name;
  for (Node* n : {&a1, &b}) {
    std::vector<std::string> actions;
    for (const auto& e : history(*n))
      if (e["action"] == "hold" || e["action"] == "failback") actions.push_back(e["action"]);
    EXPECT_EQ(actions, (std::vector<std::string>{"hold", "failback"})) << n->name;
  }
}

// A drill and a ramp scheduled through one node run on every node: the plan
// is in etcd, the steps are written once, the TTL is lowered everywhere.
TEST_F(Cluster, DrillAndRamp_RunOnEveryNode) {
  Node& a1 = add_node("ns1");
  Node& b = add_node("ns2");
  for (Node* n : {&a1, &b}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000));
  json d = call(b, {{"cmd", "drill"}, {"record", "app.example.com"}, {"endpoint", "primary"}, {"at", "+3s"},
                    {"for", "3s"}, {"lower_ttl", 5}});
  ASSERT_TRUE(d["ok"].get<bool>()) << d.dump();
  auto ttl = [&](const Node& n) {
    auto r = query("127.0.0.1", n.port(), "app.example.com", "A");
    return r && !r->answer.empty() ? std::stoi(r->answer[0].substr(r->answer[0].find(' ') + 1)) : -1;
  };
  for (Node* n : {&a1, &b}) {
    EXPECT_TRUE(eventually([&] { return call(*n, {{"cmd", "drill"}, {"action", "list"}})["drills"].size() == 1; }, 2000))
        << n->name;
    EXPECT_TRUE(eventually([&] { return ttl(*n) >= 0 && ttl(*n) <= 5; }, 2000)) << n->name;  // counting down to the start
  }
  for (Node* n : {&a1, &b})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "198.51.100.20"; }, 5000)) << n->name;
  for (Node* n : {&a1, &b})
    EXPECT_TRUE(eventually([&] { return a(*n, "app.example.com") == "192.0.2.20" && ttl(*n) > 5; }, 6000)) << n->name;
  ASSERT_TRUE(call(a1, {{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use2"}, {"weight", 200},
                        {"over", "1h"}})["ok"].get<bool>());
  EXPECT_TRUE(eventually([&] {
    json s = status(b);
    return s["records"][0]["endpoints"][1].contains("ramp");
  }, 2000));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  for (Node* n : {&a1, &b}) {
    std::map<std::string, int> steps;
    for (const auto& e : history(*n)) ++steps[e["action"].get<std::string>()];
    EXPECT_EQ(steps["drill"], 1) << n->name;
    EXPECT_EQ(steps["drill-start"], 1) << n->name;
    EXPECT_EQ(steps["drill-end"], 1) << n->name;
    EXPECT_EQ(steps["ramp"], 1) << n->name;
  }
}

// Zone transfers in a cluster: the served serial is the file's + the etcd
// revision at which what transfers carry last changed, so two nodes that
// follow the same changes give the same serial for the same state, and it
// only ever rises — a secondary may follow either.
TEST_F(Cluster, TransferSerial_IsTheSameOnEveryNode_AndOnlyRises) {
  zone_opts_ = ", transfer: { allow: [{ cidr: 127.0.0.0/8 }] }";
  Node& n1 = add_node("ns1");
  Node& n2 = add_node("ns2");
  for (Node* n : {&n1, &n2}) ASSERT_TRUE(eventually([&] { return connected(*n); }, 10000)) << n->name;
  auto serial = [&](const Node& n) -> int64_t {
    auto r = query("127.0.0.1", n.port(), "example.com", "SOA", {.timeout_ms = 500});
    if (!r || r->answer.size() != 1) return -1;
    std::istringstream in(r->answer[0]);
    std::string f;
    for (int i = 0; i < 7; ++i) in >> f;
    return std::stoll(f);
  };
  ASSERT_TRUE(eventually([&] { return serial(n1) == serial(n2) && serial(n1) > 0; }, 5000))
      << serial(n1) << " " << serial(n2);
  int64_t last = serial(n1);
  // Changes through either node, each visible in a transfer.
  const std::vector<std::pair<Node*, json>> changes = {
      {&n1, {{"cmd", "drain"}, {"record", "app.example.com"}, {"endpoint", "primary"}}},
      {&n2, {{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use2"}, {"weight", 255}}},
      {&n2, {{"cmd", "undrain"}, {"record", "app.example.com"}, {"endpoint", "primary"}}},
      {&n1, {{"cmd", "weight"}, {"record", "www.example.com"}, {"endpoint", "use1"}, {"weight", 0}}}};
  for (const auto& [node, req] : changes) {
    ASSERT_TRUE(call(*node, req)["ok"].get<bool>()) << req.dump();
    ASSERT_TRUE(eventually([&] { return serial(n1) > last && serial(n1) == serial(n2); }, 5000))
        << req.dump() << ": " << last << " -> " << serial(n1) << " / " << serial(n2);
    last = serial(n1);
  }
  // A restart keeps it: same state, same serial.
  kill(n2, SIGTERM);
  start(n2);
  ASSERT_TRUE(eventually([&] { return connected(n2); }, 10000));
  EXPECT_EQ(serial(n2), last);
  EXPECT_EQ(serial(n1), last);
}

TEST_F(Cluster, ANodeWithAnotherConfigDigest_IsFlagged) {
  Node& a1 = add_node("ns1");
  add_node("ns2");
  std::string other = std::string(kExampleZone) + "extra IN A 192.0.2.99\n";
  add_node("ns3", "", other);
  ASSERT_TRUE(eventually([&] { return cluster_status(a1)["nodes"].size() == 3; }, 10000));
  json cs = cluster_status(a1);
  EXPECT_TRUE(cs["digest_mismatch"].get<bool>());
  for (const auto& n : cs["nodes"]) {
    EXPECT_EQ(n["digest_mismatch"].get<bool>(), n["node"] == "ns3") << n.dump();
  }
  auto out = Process({VANECTL_PATH, "-s", a1.sock(), "status"});
  out.wait(5000);
  EXPECT_NE(out.output().find("DIFFERS from the other nodes"), std::string::npos) << out.output();
}

// Signed zones: keys are files deployed to every node (never etcd). Nodes
// with the same key files serve the same DNSKEY RRset and sign with it; a
// node that made a key of its own is flagged like any config difference.
TEST_F(Cluster, SignedZone_NodesWithTheSameKeyFilesAgree_ANodeWithItsOwnKeyIsFlagged) {
  zone_opts_ = ", dnssec: { signing: online, key_dir: keys }";
  Node& n1 = add_node("ns1");
  ASSERT_TRUE(n1.vaned->process().wait_for_output("had no DNSSEC key: made", 2000));
  auto n2 = std::make_unique<Node>();  // deployed with ns1's key files
  n2->name = "ns2";
  n2->dir.write("example.com.zone", kExampleZone);
  for (const auto& f : std::filesystem::directory_iterator(n1.dir.path() + "/keys")) {
    std::ifstream in(f.path());
    std::stringstream ss;
    ss << in.rdbuf();
    n2->dir.write("keys/" + f.path().filename().string(), ss.str());
  }
  nodes_.push_back(std::move(n2));
  start(*nodes_.back());
  Node& ns2 = *nodes_.back();
  EXPECT_FALSE(ns2.vaned->process().wait_for_output("had no DNSSEC key", 500));
  add_node("ns3");  // nobody gave it the keys: it made its own
  auto dnskey = [&](const Node& n) {
    auto r = query("127.0.0.1", n.port(), "example.com", "DNSKEY", {.tcp = true, .edns = true, .do_bit = true});
    std::string k;
    for (const auto& rr : r ? r->answer : std::vector<std::string>{})
      if (rr.find(" IN DNSKEY ") != std::string::npos) k += rr;
    return k;
  };
  EXPECT_FALSE(dnskey(n1).empty());
  EXPECT_EQ(dnskey(n1), dnskey(ns2));
  EXPECT_NE(dnskey(n1), dnskey(*nodes_.back()));
  ASSERT_TRUE(eventually([&] { return cluster_status(n1)["nodes"].size() == 3; }, 10000));
  json cs = cluster_status(n1);
  EXPECT_TRUE(cs["digest_mismatch"].get<bool>());
  for (const auto& n : cs["nodes"]) EXPECT_EQ(n["digest_mismatch"].get<bool>(), n["node"] == "ns3") << n.dump();
  // Nothing of the keys is in etcd.
  std::string endpoints;
  for (const auto& u : etcd_.urls()) endpoints += (endpoints.empty() ? "" : ",") + u;
  Process get({"etcdctl", "--endpoints", endpoints, "get", "--prefix", prefix_ + "/"});
  ASSERT_EQ(get.wait(10000), 0) << get.output();
  std::string all = get.output();
  EXPECT_NE(all.find(prefix_ + "/nodes/ns1"), std::string::npos) << "the dump is of the cluster's prefix";
  EXPECT_EQ(all.find("PrivateKey"), std::string::npos);
  EXPECT_EQ(all.find("DNSKEY"), std::string::npos);
}

TEST_F(Cluster, FirstNodeSeedsAnEmptyPrefix_AJoiningNodeAdoptsTheClusterState) {
  // ns1 has run alone: its RocksDB holds a flip.
  auto n1 = std::make_unique<Node>();
  n1->name = "ns1";
  n1->dir.write("example.com.zone", kExampleZone);
  start(*n1, false);
  ASSERT_TRUE(weight(*n1, "use1", 0)["ok"].get<bool>());
  ASSERT_TRUE(weight(*n1, "use2", 255)["ok"].get<bool>());
  kill(*n1, SIGTERM);
  // ns2 has run alone too, with another flip.
  auto n2 = std::make_unique<Node>();
  n2->name = "ns2";
  n2->dir.write("example.com.zone", kExampleZone);
  start(*n2, false);
  ASSERT_TRUE(weight(*n2, "use3", 255)["ok"].get<bool>());
  kill(*n2, SIGTERM);
  // ns1 is first into the cluster: the empty prefix takes its state.
  start(*n1);
  ASSERT_TRUE(eventually([&] { return connected(*n1); }, 10000));
  EXPECT_NE(n1->vaned->process().output().find("was empty: seeded it from this node's state (2 weights"),
            std::string::npos)
      << n1->vaned->process().output();
  // ns2 joins: it adopts the cluster's state, and its own flip is gone.
  start(*n2);
  ASSERT_TRUE(eventually([&] { return connected(*n2); }, 10000));
  EXPECT_TRUE(eventually([&] { return a(*n2) == "198.51.100.10"; }, 2000));
  auto w = weights(*n2);
  EXPECT_EQ(w["use1"], 0);
  EXPECT_EQ(w["use2"], 255);
  EXPECT_EQ(w["use3"], 0);
  json h = history(*n2);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.front()["action"], "seed");
  EXPECT_EQ(h.front()["node"], "ns1");
  nodes_.push_back(std::move(n1));
  nodes_.push_back(std::move(n2));
}

// etcd with authentication on: a user whose role may read and write the
// prefix only. A wrong password is a clear error, and the node still answers.
TEST_F(Cluster, EtcdWithAuth_APrefixUserWorks_AWrongPasswordIsAClearError) {
  std::string endpoints;
  for (const auto& u : etcd_.urls()) endpoints += (endpoints.empty() ? "" : ",") + u;
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"etcdctl", "--endpoints", endpoints});
    Process p(args);
    EXPECT_EQ(p.wait(10000), 0) << p.output();
  };
  ctl({"user", "add", "root", "--new-user-password", "rootpw"});
  ctl({"role", "add", "vane-rw"});
  ctl({"role", "grant-permission", "vane-rw", "--prefix=true", "readwrite", prefix_ + "/"});
  ctl({"user", "add", "vane", "--new-user-password", "vanepw"});
  ctl({"user", "grant-role", "vane", "vane-rw"});
  ctl({"auth", "enable"});
  auto clustered = [&](Node& n) {
    return "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: example.com.zone }]\n"
           "cluster:\n  etcd: " + etcd_.yaml_urls() + "\n  prefix: " + prefix_ + "\n  node: " + n.name +
           "\n  auth: { user: vane, password_file: etcd.pass }\n" + records_;
  };
  auto n1 = std::make_unique<Node>(), n2 = std::make_unique<Node>();
  n1->name = "ns1", n2->name = "ns2";
  for (Node* n : {n1.get(), n2.get()}) n->dir.write("example.com.zone", kExampleZone);
  n1->dir.write("etcd.pass", "vanepw\n");
  n2->dir.write("etcd.pass", "wrong\n");
  n1->vaned = std::make_unique<Vaned>(n1->dir, clustered(*n1));
  n2->vaned = std::make_unique<Vaned>(n2->dir, clustered(*n2));
  ASSERT_TRUE(eventually([&] { return connected(*n1); }, 10000)) << n1->vaned->process().output();
  json r = weight(*n1, "use1", 0);
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  // The wrong password: not connected, the reason in status, writes refused, answers go on.
  ASSERT_TRUE(eventually([&] { return cluster_status(*n2).contains("error"); }, 10000));
  EXPECT_FALSE(connected(*n2));
  EXPECT_NE(cluster_status(*n2)["error"].get<std::string>().find("authenticate as vane"), std::string::npos)
      << cluster_status(*n2).dump();
  json w = weight(*n2, "use2", 255);
  EXPECT_FALSE(w["ok"].get<bool>());
  EXPECT_NE(w["error"].get<std::string>().find("authentication failed"), std::string::npos) << w.dump();
  EXPECT_EQ(a(*n2), "192.0.2.10");
  nodes_.push_back(std::move(n1));
  nodes_.push_back(std::move(n2));
}

// etcd over TLS with client certificates (cluster.tls): a node with the
// right CA and a client certificate works; one that does not trust the
// server's CA is told why.
TEST_F(Cluster, EtcdOverTls_WithClientCertificates) {
  TempDir pki;
  auto sh = [&](const std::string& cmd) {
    Process p({"/bin/sh", "-c", "cd " + pki.path() + " && " + cmd});
    ASSERT_EQ(p.wait(30000), 0) << cmd << "\n" << p.output();
  };
  auto ca = [&](const std::string& name) {
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=" + name +
       " -keyout " + name + ".key -out " + name + ".pem");
  };
  auto cert = [&](const std::string& name, const std::string& ext) {
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + name + " -keyout " + name +
       ".key -out " + name + ".csr && printf '" + ext + "' > " + name + ".ext && openssl x509 -req -in " + name +
       ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile " + name + ".ext -out " + name + ".pem");
  };
  ca("ca");
  ca("other-ca");
  // etcd's JSON gateway dials its own gRPC port with the server certificate:
  // with --client-cert-auth that certificate must allow clientAuth as well.
  cert("server", "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n");
  cert("client", "extendedKeyUsage=clientAuth\\n");
  uint16_t port = stable_port(), peer = stable_port();
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  Process etcd({"etcd", "--name", "t0", "--data-dir", pki.path() + "/data", "--listen-client-urls", url,
                "--advertise-client-urls", url, "--listen-peer-urls", "http://127.0.0.1:" + std::to_string(peer),
                "--initial-advertise-peer-urls", "http://127.0.0.1:" + std::to_string(peer), "--initial-cluster",
                "t0=http://127.0.0.1:" + std::to_string(peer), "--cert-file", pki.path() + "/server.pem",
                "--key-file", pki.path() + "/server.key", "--trusted-ca-file", pki.path() + "/ca.pem",
                "--client-cert-auth", "--log-level", "warn"});
  auto node_config = [&](const std::string& name, const std::string& ca_file) {
    return "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: example.com.zone }]\n"
           "cluster:\n  etcd: [\"" + url + "\"]\n  prefix: " + prefix_ + "\n  node: " + name + "\n  tls: { ca: " +
           pki.path() + "/" + ca_file + ", cert: " + pki.path() + "/client.pem, key: " + pki.path() +
           "/client.key }\n" + records_;
  };
  auto n1 = std::make_unique<Node>(), n2 = std::make_unique<Node>();
  n1->name = "ns1", n2->name = "ns2";
  for (Node* n : {n1.get(), n2.get()}) n->dir.write("example.com.zone", kExampleZone);
  n1->vaned = std::make_unique<Vaned>(n1->dir, node_config("ns1", "ca.pem"));
  n2->vaned = std::make_unique<Vaned>(n2->dir, node_config("ns2", "other-ca.pem"));
  ASSERT_TRUE(eventually([&] { return connected(*n1); }, 15000))
      << cluster_status(*n1).dump() << n1->vaned->process().output() << etcd.output();
  json r = weight(*n1, "use1", 0);
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_TRUE(eventually([&] { return cluster_status(*n2).contains("error"); }, 10000));
  EXPECT_FALSE(connected(*n2));
  std::string why = cluster_status(*n2)["error"].get<std::string>();
  EXPECT_NE(why.find("certificate"), std::string::npos) << why;
  EXPECT_NE(why.find(url), std::string::npos) << why;
  nodes_.push_back(std::move(n1));
  nodes_.push_back(std::move(n2));
}

}  // namespace
}  // namespace vane::test
