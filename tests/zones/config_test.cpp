// vane.yaml parsing: accepted keys, defaults, and errors with file:line.
#include "config.h"
#include "process.h"

#include <gtest/gtest.h>

#include <optional>

namespace vane {
namespace {

TEST(Config, MinimalConfig_GetsDefaults) {
  auto c = parse_config("zones: [{ name: example.com, file: z/example.com.zone }]\n", "/etc/vane/vane.yaml", "/etc/vane");
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].text, "127.0.0.1:5353");
  EXPECT_GE(c->threads, 1u);
  EXPECT_EQ(c->zones[0].file, "/etc/vane/z/example.com.zone");
  EXPECT_EQ(c->edns_udp_size, 1232);
  EXPECT_EQ(c->tcp.idle_timeout_ms, 10000u);
}

TEST(Config, DesignExampleKeys_AreAccepted) {
  auto c = parse_config(R"(
listen: ["127.0.0.1:5353", "[::1]:5353"]
threads: 2
state_dir: ./state
admin: { socket: ./state/admin.sock }
http: { listen: "127.0.0.1:8053", token_file: ./state/agent.token }
vantage: local
zones:
  - { name: example.com, file: zones/example.com.zone }
tcp: { idle_timeout: 5s, max_connections: 100, max_per_client: 10 }
)", "vane.yaml", "/srv");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->listen.size(), 2u);
  EXPECT_EQ(c->threads, 2u);
  EXPECT_EQ(c->admin_socket, "/srv/./state/admin.sock");
  EXPECT_EQ(c->http_listen, "127.0.0.1:8053");
  EXPECT_EQ(c->tcp.idle_timeout_ms, 5000u);
  EXPECT_EQ(c->tcp.max_per_client, 10u);
}

TEST(Config, Cluster_DesignKeysAccepted_NodeIsTheVantage) {
  auto c = parse_config(R"(
zones: [{ name: example.com, file: example.com.zone }]
cluster:
  etcd: ["http://10.0.0.1:2379", "https://10.0.0.2:2379/"]
  prefix: /vane/prod/
  node: ns1
  tls: { ca: ca.pem, cert: node.pem, key: node.key }
  auth: { user: vane, password_file: etcd.pass }
)", "vane.yaml", "/etc/vane");
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE(c->cluster.enabled());
  EXPECT_EQ(c->cluster.etcd, (std::vector<std::string>{"http://10.0.0.1:2379", "https://10.0.0.2:2379"}));
  EXPECT_EQ(c->cluster.prefix, "/vane/prod");
  EXPECT_EQ(c->cluster.node, "ns1");
  EXPECT_EQ(c->cluster.tls_ca, "/etc/vane/ca.pem");
  EXPECT_EQ(c->cluster.password_file, "/etc/vane/etcd.pass");
  EXPECT_EQ(c->vantage, "ns1");  // each node probes as itself
  EXPECT_EQ(serving_digest(*c), serving_digest(*c));
}

TEST(Config, Cluster_Absent_NodeStandsAlone) {
  auto c = parse_config("zones: [{ name: a.test, file: a }]\n", "vane.yaml", "");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->cluster.enabled());
  EXPECT_EQ(c->vantage, "local");
}

TEST(Config, Cluster_Mistakes_AreErrorsWithLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"cluster: { prefix: /x }", "cluster.etcd must be a non-empty list"},
      {"cluster: { etcd: [\"10.0.0.1:2379\"] }", "is not an http:// or https:// URL"},
      {"cluster: { etcd: [\"http://a:1\"], prefix: vane }", "cluster.prefix must be a key prefix"},
      {"cluster: { etcd: [\"http://a:1\"], node: \"ns 1\" }", "must be letters, digits"},
      {"cluster: { etcd: [\"http://a:1\"], tls: { cert: c.pem } }", "cert and key go together"},
      {"cluster: { etcd: [\"http://a:1\"], auth: { user: u } }", "needs user and password_file"},
      {"cluster: { etcd: [\"http://a:1\"], etc: 1 }", "unknown key 'etc' in cluster"},
  };
  for (const auto& [yaml, message] : cases) {
    auto c = parse_config(std::string("zones: [{ name: a.test, file: a }]\n") + yaml + "\n", "vane.yaml", "");
    ASSERT_FALSE(c) << yaml;
    EXPECT_EQ(c.error().file, "vane.yaml");
    EXPECT_EQ(c.error().line, 2) << yaml;
    EXPECT_NE(c.error().message.find(message), std::string::npos) << c.error().message;
  }
}

TEST(Config, ServingDigest_FollowsWhatIsServedNotWhereItListens) {
  auto a = parse_config("listen: [\"127.0.0.1:1\"]\nzones: [{ name: a.test, file: /nonexistent }]\n", "vane.yaml", "");
  auto b = parse_config("listen: [\"127.0.0.1:2\"]\nzones: [{ name: a.test, file: /nonexistent }]\n", "vane.yaml", "");
  auto c = parse_config("zones: [{ name: b.test, file: /nonexistent }]\n", "vane.yaml", "");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(serving_digest(*a), serving_digest(*b));
  EXPECT_NE(serving_digest(*a), serving_digest(*c));
}

TEST(Config, Rrl_KeysDefaultsAndMistakes) {
  auto c = parse_config("zones: [{ name: a.test, file: a }]\nrrl: { responses_per_second: 20, exempt: [10.0.0.0/8] }\n",
                        "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->rrl.rate, 20u);
  EXPECT_EQ(c->rrl.slip, 2u);
  EXPECT_EQ(c->rrl.v4_prefix, 24);
  EXPECT_EQ(c->rrl.v6_prefix, 56);
  ASSERT_EQ(c->rrl.exempt.size(), 1u);
  EXPECT_EQ(c->rrl.exempt[0].prefix, 8);
  auto off = parse_config("zones: [{ name: a.test, file: a }]\n", "vane.yaml", "");
  EXPECT_EQ(off->rrl.rate, 0u);  // absent: off
  const std::pair<const char*, const char*> cases[] = {
      {"rrl: { slip: 2 }", "rrl needs responses_per_second"},
      {"rrl: { responses_per_second: 0 }", "between 1 and 1000000"},
      {"rrl: { responses_per_second: 5, slip: 11 }", "rrl.slip must be between 0 and 10"},
      {"rrl: { responses_per_second: 5, ipv4_prefix: 33 }", "rrl.ipv4_prefix must be between 8 and 32"},
      {"rrl: { responses_per_second: 5, exempt: [10.0.0.1/8] }", "host bits set"},
      {"rrl: { responses_per_second: 5, window: 5 }", "unknown key 'window' in rrl"},
  };
  for (const auto& [yaml, message] : cases) {
    auto e = parse_config(std::string("zones: [{ name: a.test, file: a }]\n") + yaml + "\n", "vane.yaml", "");
    ASSERT_FALSE(e) << yaml;
    EXPECT_EQ(e.error().line, 2) << yaml;
    EXPECT_NE(e.error().message.find(message), std::string::npos) << e.error().message;
  }
}

TEST(Config, FailbackAndDamping_KeysDefaultsAndMistakes) {
  const std::string head =
      "zones: [{ name: a.test, file: a }]\nchecks:\n  web: { type: tcp, port: 80, damping: { flips: 4, window: 10m, "
      "hold: 15m } }\nrecords:\n";
  auto rec = [](const std::string& extra, const std::string& policy = "failover") {
    return "  - { name: app.a.test, type: A, policy: " + policy + extra +
           ", endpoints: [{ name: p, address: 192.0.2.1, check: web }] }\n";
  };
  auto c = parse_config(head + rec(", failback: manual"), "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->records[0].failback, zones::kFailbackManual);
  EXPECT_EQ(c->checks[0].damping_flips, 4u);
  EXPECT_EQ(c->checks[0].damping_window_ms, 600000u);
  EXPECT_EQ(c->checks[0].damping_hold_ms, 900000u);
  EXPECT_EQ(parse_config(head + rec(", failback: 10m"), "vane.yaml", "")->records[0].failback, 600000);
  EXPECT_EQ(parse_config(head + rec(""), "vane.yaml", "")->records[0].failback, zones::kFailbackAuto);
  EXPECT_NE(serving_digest(*parse_config(head + rec(", failback: 10m"), "vane.yaml", "")),
            serving_digest(*parse_config(head + rec(""), "vane.yaml", "")));
  const std::pair<std::string, const char*> cases[] = {
      {head + rec(", failback: soon"), "failback must be auto, manual or a duration"},
      {head + rec(", failback: manual", "weighted"), "failback is for failover records"},
      {head + rec(", ttl: 30, ttl_unsteady: 30"), "ttl_unsteady must be below the record's ttl (30)"},
      {"zones: [{ name: a.test, file: a }]\nchecks:\n  web: { type: tcp, port: 80, damping: { flips: 4 } }\n",
       "damping needs flips, window and hold"},
      {"zones: [{ name: a.test, file: a }]\nchecks:\n  web: { type: tcp, port: 80, damping: { flips: 0, window: 1m, "
       "hold: 1m } }\n",
       "damping flips must be between 1 and 1000"},
      {"zones: [{ name: a.test, file: a }]\nchecks:\n  web: { type: tcp, port: 80, damping: { flips: 2, window: 1m, "
       "hold: 1m, decay: 2 } }\n",
       "unknown key 'decay' in damping of check web"},
  };
  for (const auto& [yaml, message] : cases) {
    auto e = parse_config(yaml, "vane.yaml", "");
    ASSERT_FALSE(e) << yaml;
    EXPECT_GT(e.error().line, 2) << yaml;
    EXPECT_NE(e.error().message.find(message), std::string::npos) << e.error().message;
  }
}

TEST(AgentConfig, FetchesTargetsWithoutAConfig_AndChecksItsKeys) {
  vane::test::TempDir dir;
  auto a = load_agent_config(dir.write("a.yaml", "vantage: eu-1\nreport_to: http://10.0.0.1:8053\ntoken_file: t\n"
                                                  "targets_refresh: 2s\n"));
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_TRUE(a->config.empty());
  EXPECT_EQ(a->targets_refresh_ms, 2000u);
  EXPECT_EQ(a->token_file, dir.path() + "/t");
  EXPECT_EQ(a->report_to, std::vector<std::string>{"http://10.0.0.1:8053"});
  // Several nodes of a cluster: a report to each.
  a = load_agent_config(dir.write("a.yaml", "vantage: eu-1\nreport_to: [\"http://10.0.0.1:8053\", "
                                            "\"https://10.0.0.2:8053\"]\ntoken_file: t\n"));
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->report_to, (std::vector<std::string>{"http://10.0.0.1:8053", "https://10.0.0.2:8053"}));
  const std::pair<const char*, const char*> cases[] = {
      {"vantage: eu-1\ntoken_file: t\n", "needs report_to"},
      {"vantage: eu-1\nreport_to: []\ntoken_file: t\n", "needs report_to"},
      {"vantage: eu-1\nreport_to: [\"http://x:1\", \"10.0.0.2:8053\"]\ntoken_file: t\n", "http:// or https://"},
      {"vantage: eu-1\nreport_to: [\"http://x:1\", \"http://x:1\"]\ntoken_file: t\n", "names a URL twice"},
      {"vantage: eu-1\nreport_to: http://x:1\ntoken_file: t\nconfig: v.yaml\ntargets_refresh: 2s\n",
       "targets_refresh is for fetched targets"},
      {"vantage: eu-1\nreport_to: http://x:1\ntoken_file: t\ntargets_refresh: 100ms\n", "at least 500ms"},
      {"vantage: eu-1\nreport_to: http://x:1\n", "needs token_file"},
  };
  for (const auto& [yaml, message] : cases) {
    auto e = load_agent_config(dir.write("b.yaml", yaml));
    ASSERT_FALSE(e) << yaml;
    EXPECT_NE(e.error().message.find(message), std::string::npos) << e.error().to_string();
  }
}

TEST(Config, UnknownKey_IsAnErrorWithLine) {
  auto c = parse_config("zones: [{ name: a.test, file: a }]\nthread: 2\n", "vane.yaml", "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().to_string().substr(0, 33), "vane.yaml:2: unknown key 'thread'");
}

TEST(Config, BadListen_IsAnErrorWithLine) {
  auto c = parse_config("listen:\n  - 127.0.0.1\nzones: [{ name: a.test, file: a }]\n", "vane.yaml", "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().line, 2);
}

TEST(Config, DuplicateZone_IsAnError) {
  auto c = parse_config("zones: [{ name: a.test, file: a }, { name: A.test., file: b }]\n", "vane.yaml", "");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("listed twice"), std::string::npos);
}

TEST(Config, NoZones_IsAnError) {
  auto c = parse_config("threads: 1\n", "vane.yaml", "");
  ASSERT_FALSE(c);
}

TEST(Config, BrokenYaml_IsAnErrorWithLine) {
  auto c = parse_config("zones: [\n  { name: a\n", "vane.yaml", "");
  ASSERT_FALSE(c);
  EXPECT_GT(c.error().line, 0);
}

TEST(Durations, Units) {
  // text, ms (or nullopt: refused), µs (the same for parse_duration_us)
  const struct {
    const char* text;
    std::optional<uint64_t> ms, us;
  } cases[] = {
      {"10s", 10000, 10000000}, {"15m", 900000, 900000000}, {"250ms", 250, 250000}, {"3", 3000, 3000000},
      {"0", 0, 0},              {"ten", {}, {}},            {"5d", {}, {}},         {"us", {}, {}},
      {"5usec", {}, {}},        {"99999999999999h", {}, {}},  // would overflow
      {"100us", {}, 100},  // µs only where a key says so
  };
  for (const auto& c : cases) {
    uint64_t v = 0;
    EXPECT_EQ(parse_duration_ms(c.text, v) ? std::optional(v) : std::nullopt, c.ms) << c.text;
    EXPECT_EQ(parse_duration_us(c.text, v) ? std::optional(v) : std::nullopt, c.us) << c.text;
  }
}

TEST(Config, DnssecCds_OnByDefault_OffWhenAsked_ElseAnErrorWithLine) {
  auto zone = [](const std::string& dnssec) {
    return "zones:\n  - { name: example.com, file: example.com.zone, dnssec: { signing: online" + dnssec + " } }\n";
  };
  auto c = parse_config(zone(""), "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(c->zones[0].dnssec.cds);
  c = parse_config(zone(", cds: false"), "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_FALSE(c->zones[0].dnssec.cds);
  c = parse_config(zone(", cds: maybe"), "vane.yaml", "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().line, 2);
  EXPECT_NE(c.error().to_string().find("dnssec.cds must be true or false"), std::string::npos) << c.error().to_string();
}

TEST(Config, UdpCoalesceAndReceive_DefaultSetOffAndOutOfRange) {
  const std::string zones = "zones: [{ name: example.com, file: example.com.zone }]\n";
  auto c = parse_config(zones, "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->udp.coalesce_us, 0u) << "the default never waits";
  c = parse_config(zones + "udp: { coalesce: 250us }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->udp.coalesce_us, 250u);
  c = parse_config(zones + "udp: { coalesce: 0 }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->udp.coalesce_us, 0u);
  EXPECT_EQ(c->udp.receive, UdpOptions::Receive::kUnset) << "recvmmsg, decided at start";
  c = parse_config(zones + "udp: { receive: auto }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->udp.receive, UdpOptions::Receive::kAuto);
  c = parse_config(zones + "udp: { receive: recvmmsg }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->udp.receive, UdpOptions::Receive::kRecvmmsg);
  c = parse_config(zones + "udp: { receive: io_uring, coalesce: 100us }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->udp.receive, UdpOptions::Receive::kIoUring);
  for (const char* bad : {"udp: { coalesce: 2ms }\n", "udp: { coalesce: soon }\n", "udp: { batch: 64 }\n",
                          "udp: { receive: epoll }\n", "udp: { receive: [io_uring] }\n"}) {
    c = parse_config(zones + bad, "vane.yaml", "");
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().line, 2) << bad;
    EXPECT_NE(c.error().to_string().find("udp"), std::string::npos) << c.error().to_string();
  }
}

TEST(Config, EndpointMetrics_AutoByDefault_AllProblemsOrAnError) {
  const std::string zones = "zones: [{ name: example.com, file: example.com.zone }]\n";
  auto c = parse_config(zones, "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->endpoint_metrics, Config::EndpointMetrics::kAuto);
  c = parse_config(zones + "http: { listen: \"127.0.0.1:0\", endpoint_metrics: all }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->endpoint_metrics, Config::EndpointMetrics::kAll);
  c = parse_config(zones + "http: { listen: \"127.0.0.1:0\", endpoint_metrics: problems }\n", "vane.yaml", "");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->endpoint_metrics, Config::EndpointMetrics::kProblems);
  c = parse_config(zones + "http: { listen: \"127.0.0.1:0\",\n  endpoint_metrics: some }\n", "vane.yaml", "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().line, 3);
  EXPECT_NE(c.error().message.find("all, problems or auto"), std::string::npos) << c.error().to_string();
}

TEST(Config, Api_TokensScopesAndMistakesWithLine) {
  test::TempDir dir;
  dir.write("ci.token", "  0123456789abcdef-ci  \n");
  dir.write("short.token", "abc\n");
  dir.write("same.token", "0123456789abcdef-ci\n");
  dir.write("empty.token", "\n");
  const std::string zones = "zones: [{ name: example.com, file: example.com.zone }, { name: Other.Test, file: o }]\n";
  auto c = parse_config(zones + "api:\n  listen: \"127.0.0.1:8443\"\n  tokens:\n"
                                "    - { name: ci, token_file: ci.token, scope: [read, \"write:EXAMPLE.com\", \"write:other.test.\"], rate: 5 }\n",
                        dir.path() + "/vane.yaml", dir.path());
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE(c->api.enabled());
  EXPECT_FALSE(c->api.tls());
  EXPECT_EQ(c->api.max_body, 65536u);
  ASSERT_EQ(c->api.tokens.size(), 1u);
  const ApiToken& t = c->api.tokens[0];
  EXPECT_EQ(t.name, "ci");
  EXPECT_EQ(t.secret, "0123456789abcdef-ci");  // trimmed
  EXPECT_TRUE(t.read);
  EXPECT_FALSE(t.write);
  EXPECT_FALSE(t.admin);
  EXPECT_EQ(t.write_zones, (std::vector<std::string>{"example.com.", "other.test."}));
  EXPECT_EQ(t.rate, 5);
  EXPECT_EQ(t.line, 5);
  // [::1] and localhost are loopback too.
  for (const char* listen : {"[::1]:0", "localhost:8443", "127.0.0.2:1"}) {
    auto l = parse_config(zones + "api: { listen: \"" + listen + "\", tokens: [{ name: a, token_file: ci.token, scope: read }] }\n",
                          dir.path() + "/vane.yaml", dir.path());
    EXPECT_TRUE(l) << listen << ": " << l.error().to_string();
  }
  // Mistakes: file:line and what to do.
  const std::vector<std::pair<std::string, std::string>> bad{
      {"api: { tokens: [{ name: a, token_file: ci.token, scope: read }] }", "api needs listen"},
      {"api: { listen: \"0.0.0.0:8443\", tokens: [{ name: a, token_file: ci.token, scope: read }] }",
       "is not a loopback address: without tls"},
      {"api: { listen: \"10.0.0.1:8443\", tls: { cert: nope.pem, key: nope.key }, tokens: [] }", "api.tls.cert: cannot read"},
      {"api: { listen: \"127.0.0.1:8443\" }", "api needs tokens"},
      {"api: { listen: \"127.0.0.1\", tokens: [{ name: a, token_file: ci.token, scope: read }] }", "HOST:PORT"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: short.token, scope: read }] }", "at least 16 characters"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: empty.token, scope: read }] }", "token file is empty"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: missing.token, scope: read }] }", "cannot read token file"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: ci.token, scope: [read, writ] }] }", "unknown scope 'writ'"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: ci.token, scope: \"write:nowhere.test\" }] }",
       "scope write:nowhere.test names no zone"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: ci.token }] }", "needs scope"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: \"a b\", token_file: ci.token, scope: read }] }", "token name must be"},
      {"api: { listen: \"127.0.0.1:1\", tokens: [{ name: a, token_file: ci.token, scope: read },\n  { name: a, token_file: short.token, scope: read }] }",
       "named twice"},
      {"api: { listen: \"127.0.0.1:1\", tokens: [{ name: a, token_file: ci.token, scope: read },\n  { name: b, token_file: same.token, scope: read }] }",
       "same secret as another"},
      {"api: { listen: \"127.0.0.1:1\",\n  tokens: [{ name: a, token_file: ci.token, scope: read, rate: 0 }] }", "between 1 and"},
      {"api: { listen: \"127.0.0.1:1\",\n  colour: red, tokens: [] }", "unknown key 'colour' in api"},
  };
  for (const auto& [yaml, want] : bad) {
    auto e = parse_config(zones + yaml + "\n", dir.path() + "/vane.yaml", dir.path());
    ASSERT_FALSE(e) << yaml;
    EXPECT_NE(e.error().message.find(want), std::string::npos) << yaml << "\n" << e.error().to_string();
    EXPECT_EQ(e.error().file, dir.path() + "/vane.yaml") << yaml;
    int want_line = yaml.find('\n') == std::string::npos ? 2 : 3;
    EXPECT_EQ(e.error().line, want_line) << yaml << "\n" << e.error().to_string();
  }
  // The secret is never in an error message.
  auto e = parse_config(zones + "api: { listen: \"127.0.0.1:1\", tokens: [{ name: a, token_file: ci.token, scope: wrong }] }\n",
                        dir.path() + "/vane.yaml", dir.path());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().to_string().find("0123456789abcdef"), std::string::npos);
}

TEST(Listen, V4AndV6) {
  ListenAddr a;
  EXPECT_TRUE(parse_listen("0.0.0.0:53", a));
  EXPECT_TRUE(parse_listen("[::]:53", a));
  EXPECT_FALSE(parse_listen("::1:53", a));
  EXPECT_FALSE(parse_listen("127.0.0.1:70000", a));
  EXPECT_FALSE(parse_listen("localhost:53", a));
}

}  // namespace
}  // namespace vane
