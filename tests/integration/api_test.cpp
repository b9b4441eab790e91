// The HTTP API (api.listen) against a running vaned: every status code it
// documents, a flip through it answered by DNS and journaled with the
// token's name, scopes (write:ZONE refused on another zone), Idempotency-Key,
// a storm of bad tokens beside DNS and a good client, TLS with client
// certificates (openssl-made CA), the remote vanectl, and the OpenAPI
// document checked by a real validator (npm @apidevtools/swagger-parser,
// installed by scripts/test.sh) and walked path by path.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <tuple>

#include "client.h"
#include "dns_client.h"
#include "fixtures.h"
#include "process.h"

namespace vane::test {
namespace {

using nlohmann::json;

const char* kOtherZone =
    "$ORIGIN other.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\n";

const std::map<std::string, std::string> kTokens{{"ci", "ci-0123456789abcdef0123"},
                                                 {"ro", "ro-0123456789abcdef0123"},
                                                 {"ops", "ops-0123456789abcdef012"},
                                                 {"root", "root-0123456789abcdef01"}};

std::string config(const std::string& tls = "") {
  return "listen: [\"127.0.0.1:0\"]\nthreads: 1\n"
         "zones:\n  - { name: example.com, file: example.com.zone }\n  - { name: other.test, file: other.test.zone }\n"
         "records:\n" +
         www_weighted(false) + app_failover() +
         "  - name: www.other.test\n    type: A\n    policy: weighted\n    endpoints:\n"
         "      - { name: a, address: 203.0.113.1, weight: 1 }\n      - { name: b, address: 203.0.113.2, weight: 1 }\n"
         "api:\n  listen: \"127.0.0.1:0\"\n" +
         tls +
         "  tokens:\n"
         "    - { name: ci, token_file: ci.token, scope: [read, \"write:example.com\"] }\n"
         "    - { name: ro, token_file: ro.token, scope: read, rate: 1 }\n"
         "    - { name: ops, token_file: ops.token, scope: write }\n"
         "    - { name: root, token_file: root.token, scope: admin }\n";
}

struct Answer {
  int status = 0;
  json body;
  httplib::Headers headers;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("example.com.zone", kExampleZone);
    dir_.write("other.test.zone", kOtherZone);
    for (const auto& [name, secret] : kTokens) dir_.write(name + ".token", secret + "\n");
  }
  void start(const std::string& tls = "") {
    vaned_ = std::make_unique<Vaned>(dir_, config(tls));
    ASSERT_TRUE(eventually([&] { return api_port(vaned_->process()) != 0; })) << vaned_->process().output();
    port_ = api_port(vaned_->process());
  }
  static Answer result(const httplib::Result& r) {
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.body = json::parse(r->body, nullptr, false);
    a.headers = r->headers;
    return a;
  }
  Answer post(const std::string& path, const std::string& body, const std::string& token = "root",
              httplib::Headers headers = {}) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + (kTokens.count(token) ? kTokens.at(token) : token));
    return result(c.Post(path.c_str(), headers, body, "application/json"));
  }
  Answer get(const std::string& path, const std::string& token = "root") {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + (kTokens.count(token) ? kTokens.at(token) : token));
    return result(c.Get(path.c_str(), headers));
  }
  std::string a(const std::string& name) {
    auto r = query("127.0.0.1", vaned_->port(), name, "A");
    return r && r->answer.size() == 1 ? r->answer[0].substr(r->answer[0].rfind(' ') + 1) : "<none>";
  }
  json history(int limit = 50) {
    auto r = admin::call(dir_.path() + "/state/admin.sock", {{"cmd", "history"}, {"limit", limit}}, 10000);
    return r ? (*r)["entries"] : json::array();
  }

  TempDir dir_;
  std::unique_ptr<Vaned> vaned_;
  uint16_t port_ = 0;
};

// Every code the API documents, each for the reason it documents.
TEST_F(ApiTest, StatusCodes_EachForItsReason) {
  start();
  const std::string flip = R"({"record":"www.example.com","endpoint":"use2","weight":9})";
  // 401: no token, a wrong one, a token of the right length but not ours.
  Answer r = post("/v1/weight", flip, "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body["ok"], false);
  EXPECT_NE(r.body["error"].get<std::string>().find("missing bearer token"), std::string::npos);
  EXPECT_EQ(r.headers.find("WWW-Authenticate")->second, "Bearer realm=\"vane\"");
  EXPECT_EQ(post("/v1/weight", flip, "nope").status, 401);
  EXPECT_EQ(post("/v1/weight", flip, "ci-0123456789abcdef0124").status, 401);
  EXPECT_EQ(get("/v1/status", "").status, 401);
  // 403: a read token writing; write:example.com on other.test; write without admin reloading.
  r = post("/v1/weight", flip, "ro");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body["error"].get<std::string>().find("token 'ro' (scope: read) may not weight"), std::string::npos);
  r = post("/v1/weight", R"({"record":"www.other.test","endpoint":"a","weight":0})", "ci");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body["error"].get<std::string>().find("may write in example.com. only; this changes zone other.test."),
            std::string::npos);
  // A region's endpoints span every zone unless the request names one.
  r = post("/v1/drain", R"({"region":"us-east-1"})", "ci");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body["error"].get<std::string>().find("this changes zone every zone"), std::string::npos) << r.body;
  EXPECT_EQ(post("/v1/drain", R"({"region":"us-east-1","zone":"other.test"})", "ci").status, 403);
  EXPECT_EQ(post("/v1/reload", "{}", "ops").status, 403);
  EXPECT_EQ(post("/v1/dnssec", R"({"action":"keygen","zone":"example.com"})", "ci").status, 403);
  EXPECT_EQ(post("/v1/drain", R"({"record":"app.example.com","endpoint":"standby"})", "ro").status, 403);
  EXPECT_EQ(post("/v1/drill", R"({"action":"list"})", "ops").status, 403);  // write does not read
  EXPECT_EQ(post("/v1/drill", R"({"action":"list"})", "ci").status, 200);
  // None of those changed anything.
  for (const auto& e : history()) EXPECT_NE(e.value("action", ""), "weight") << e;
  // 400: the field at fault named.
  r = post("/v1/weight", R"({"record":"www.example.com","endpoint":"use2","weight":9,"colour":"red"})", "ci");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"], "unknown field 'colour' for weight");
  r = post("/v1/weight", R"({"record":"www.example.com","endpoint":"use2","weight":"nine"})", "ci");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"], "\"weight\" must be 0..255 or \"config\"");
  r = post("/v1/weight", R"({"record":"www.example.com","endpoint":"use2","wei)", "ci");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body["error"].get<std::string>().find("body is not valid JSON"), std::string::npos);
  EXPECT_NE(r.body["error"].get<std::string>().find("column 51"), std::string::npos) << r.body;
  r = post("/v1/weight", R"({"cmd":"reload"})", "ci");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(post("/v1/weight", "[1,2]", "ci").status, 400);
  r = get("/v1/history?limit=abc", "ci");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"], "\"limit\" must be a whole number");
  r = get("/v1/status?colour=red", "ci");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body["error"].get<std::string>().find("unknown parameter 'colour'"), std::string::npos);
  // 404: unknown record, endpoint, zone, drill, path.
  r = post("/v1/weight", R"({"record":"nope.example.com","endpoint":"use2","weight":9})", "ops");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body["code"], "not_found");
  EXPECT_EQ(post("/v1/drain", R"({"record":"www.example.com","endpoint":"use9"})", "ops").status, 404);
  EXPECT_EQ(get("/v1/status?filter=nowhere.test", "ci").status, 404);
  EXPECT_EQ(post("/v1/drill", R"({"action":"cancel","id":777})", "ops").status, 404);
  EXPECT_EQ(get("/v1/frobnicate", "ci").status, 404);
  EXPECT_EQ(get("/metrics", "ci").status, 404);
  // 405 with Allow.
  r = get("/v1/weight", "ci");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.find("Allow")->second, "POST");
  // 413: past api.max_body (64 KiB by default), before anything is parsed.
  r = post("/v1/weight", std::string(70000, ' '), "ci");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body["ok"], false);
  // 200 after all that: the API still works and the flip lands.
  r = post("/v1/weight", flip, "ci");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["weight"], 9);
  // 429: "ro" has rate 1/s (burst 10): the 11th request in a burst is refused, with Retry-After.
  int limited = 0;
  std::string retry;
  for (int i = 0; i < 15; ++i) {
    Answer h = get("/v1/status?filter=www.example.com", "ro");
    if (h.status == 429) {
      ++limited;
      retry = h.headers.find("Retry-After")->second;
    } else {
      EXPECT_EQ(h.status, 200);
    }
  }
  EXPECT_GE(limited, 4);
  EXPECT_EQ(retry, "1");
  // Another token is not slowed by ro's rate.
  EXPECT_EQ(get("/v1/status", "ci").status, 200);
}

TEST_F(ApiTest, FlipThroughApi_AnsweredByDnsAndJournaledWithTokenName) {
  start();
  EXPECT_EQ(a("www.example.com"), "192.0.2.10");
  Answer r = post("/v1/weight", R"({"record":"www.example.com","endpoint":"use1","weight":0,"reason":"drill 7"})", "ci");
  ASSERT_EQ(r.status, 200) << r.body;
  r = post("/v1/weight", R"({"record":"www.example.com","endpoint":"use2","weight":255})", "ci");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["ok"], true);
  EXPECT_EQ(r.body["record"], "www.example.com./A");
  EXPECT_EQ(r.body["endpoint"], "use2");
  EXPECT_EQ(r.body["weight"], 255);
  uint64_t seq = r.body["seq"];
  // The whole answer, as DNS gives it now.
  auto q = query("127.0.0.1", vaned_->port(), "www.example.com", "A");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->rcode, "NOERROR");
  EXPECT_TRUE(q->aa);
  ASSERT_EQ(q->answer.size(), 1u);
  EXPECT_EQ(q->answer[0], "www.example.com. 60 IN A 198.51.100.10");
  EXPECT_TRUE(q->authority.empty());
  for (int i = 0; i < 30; ++i) ASSERT_EQ(a("www.example.com"), "198.51.100.10");
  // The journal names the token, not a uid.
  json entries = history();
  json last = entries.back();
  EXPECT_EQ(last["seq"], seq);
  EXPECT_EQ(last["by"], "ci");
  EXPECT_EQ(last["via"], "api");
  EXPECT_FALSE(last.contains("uid"));
  EXPECT_EQ(entries[entries.size() - 2]["reason"], "drill 7");
  std::string out;
  ASSERT_EQ(run_ctl(VANECTL_PATH, dir_.path() + "/state/admin.sock", {"history", "--limit", "2"}, out), 0) << out;
  EXPECT_NE(out.find(std::to_string(seq) + "  "), std::string::npos) << out;
  EXPECT_NE(out.find(" ci "), std::string::npos) << out;
  // The same JSON as vanectl --json on the socket, for reads.
  Answer st = get("/v1/history?limit=2", "ci");
  ASSERT_EQ(st.status, 200);
  EXPECT_EQ(st.body["entries"], history(2));
  // Survives kill -9, like any acknowledged change.
  vaned_->process().signal(SIGKILL);
  vaned_->process().wait(10000);
  start();
  EXPECT_EQ(a("www.example.com"), "198.51.100.10");
  // An Idempotency-Key retried gets the first answer; the change is applied once.
  const std::string drain = R"({"record":"app.example.com","endpoint":"standby","reason":"retry me"})";
  Answer first = post("/v1/drain", drain, "ops", {{"Idempotency-Key", "runbook-42"}});
  ASSERT_EQ(first.status, 200) << first.body;
  Answer again = post("/v1/drain", drain, "ops", {{"Idempotency-Key", "runbook-42"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.headers.find("Idempotent-Replayed")->second, "true");
  int drains = 0;
  for (const auto& e : history()) drains += e.value("action", "") == "drain";
  EXPECT_EQ(drains, 1);
  // The same key for another body: 409, nothing done; another token's same key is its own.
  Answer other = post("/v1/undrain", drain, "ops", {{"Idempotency-Key", "runbook-42"}});
  EXPECT_EQ(other.status, 409);
  EXPECT_EQ(post("/v1/undrain", R"({"record":"app.example.com","endpoint":"standby"})", "ci",
                 {{"Idempotency-Key", "runbook-42"}})
                .status,
            200);
  // Tokens are read again on reload: a rotated secret works, the old one is refused.
  dir_.write("ci.token", "ci-rotated-0123456789abcdef\n");
  ASSERT_EQ(post("/v1/reload", "{}", "root").status, 200);
  EXPECT_EQ(get("/v1/status", "ci").status, 401);
  EXPECT_EQ(get("/v1/status", "ci-rotated-0123456789abcdef").status, 200);
  // The token's secret is nowhere in the log or the journal.
  std::string log = vaned_->process().output();
  for (const auto& [name, secret] : kTokens) EXPECT_EQ(log.find(secret), std::string::npos) << name;
  EXPECT_EQ(history(100).dump().find("0123456789abcdef"), std::string::npos);
}

// 300 requests with bad tokens, from 4 threads at once, beside DNS queries
// and a good API client: every query answered, every good request served.
TEST_F(ApiTest, BadTokenStorm_LeavesDnsAndGoodClientUnaffected) {
  start();
  std::atomic<int> bad_401{0}, other{0};
  std::vector<std::thread> storm;
  for (int t = 0; t < 4; ++t)
    storm.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port_);
      for (int i = 0; i < 75; ++i) {
        httplib::Headers h{{"Authorization", "Bearer guess-" + std::to_string(t) + "-" + std::to_string(i) + "-0123456789"}};
        auto r = c.Post("/v1/weight", h, R"({"record":"www.example.com","endpoint":"use2","weight":255})",
                        "application/json");
        (r && r->status == 401 ? bad_401 : other)++;
      }
    });
  int answered = 0, good = 0;
  for (int i = 0; i < 200; ++i) {
    answered += a("www.example.com") == "192.0.2.10";
    if (i % 20 == 0) good += get("/v1/status?filter=www.example.com", "ci").status == 200;
  }
  for (auto& t : storm) t.join();
  EXPECT_EQ(bad_401.load(), 300);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(answered, 200);
  EXPECT_EQ(good, 10);
  EXPECT_EQ(a("www.example.com"), "192.0.2.10");
  for (const auto& e : history()) EXPECT_NE(e.value("action", ""), "weight");
  // The API's threads yield to DNS: named vane-api, at nice 10.
  int api_threads = 0;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(vaned_->process().pid()) + "/task")) {
    std::ifstream comm(t.path() / "comm"), stat(t.path() / "stat");
    std::string name, line;
    std::getline(comm, name);
    std::getline(stat, line);
    if (name != "vane-api") continue;
    ++api_threads;
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(rest), {}};
    ASSERT_GE(f.size(), 17u);
    EXPECT_EQ(f[16], "10") << line;  // field 19, nice
  }
  EXPECT_GE(api_threads, 4);
}

// TLS with client certificates: a CA, a server certificate for 127.0.0.1
// and a client certificate, all made by openssl here.
TEST_F(ApiTest, Tls_ClientCertificateRequired_AndRemoteVanectl) {
  // A refused handshake can leave OpenSSL writing to a socket the server
  // closed: EPIPE, not a signal that ends the test binary.
  signal(SIGPIPE, SIG_IGN);
  const std::string d = dir_.path();
  auto sh = [&](const std::string& cmd) {
    Process p({"/bin/sh", "-c", "cd " + d + " && " + cmd});
    int rc = p.wait(30000);
    EXPECT_EQ(rc, 0) << cmd << "\n" << p.output();
  };
  const std::string req = "openssl req -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 ";
  sh(req + "-x509 -days 2 -subj /CN=vane-test-ca -keyout ca.key -out ca.pem");
  sh(req + "-subj /CN=127.0.0.1 -keyout api.key -out api.csr");
  dir_.write("san.ext", "subjectAltName=IP:127.0.0.1\n");
  sh("openssl x509 -req -in api.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out api.pem");
  sh(req + "-subj /CN=runbook -keyout client.key -out client.csr");
  sh("openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem");
  start("  tls: { cert: api.pem, key: api.key, client_ca: ca.pem }\n");
  EXPECT_NE(vaned_->process().output().find("(https, 4 tokens, client certificates required)"), std::string::npos);

  auto client = [&](bool with_cert) {
    auto c = with_cert ? std::make_unique<httplib::SSLClient>("127.0.0.1", port_, d + "/client.pem", d + "/client.key")
                       : std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    c->set_ca_cert_path((d + "/ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    return c;
  };
  auto c = client(true);
  httplib::Headers h{{"Authorization", "Bearer " + kTokens.at("ci")}};
  auto r = c->Get("/v1/status?filter=www.example.com", h);
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  // Over TLS the same codes: 401 and 403.
  r = c->Get("/v1/status", httplib::Headers{{"Authorization", "Bearer wrong-0123456789abcdef"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c->Post("/v1/weight", h, R"({"record":"www.other.test","endpoint":"a","weight":0})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  // ... and every other code the API gives.
  const std::vector<std::tuple<std::string, std::string, int>> cases{
      {"/v1/weight", R"({"record":"www.example.com","endpoint":"use2","weight":9,"x":1})", 400},
      {"/v1/weight", R"({"record":"www.example.com","endpoint":"use2")", 400},
      {"/v1/weight", R"({"record":"nope.example.com","endpoint":"use2","weight":9})", 404},
      {"/v1/nope", "{}", 404},
      {"/v1/weight", std::string(70000, ' '), 413},
  };
  for (const auto& [path, body, want] : cases) {
    r = c->Post(path.c_str(), h, body, "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, want) << path << " " << body.substr(0, 80) << ": " << r->body;
    EXPECT_EQ(json::parse(r->body)["ok"], false);
  }
  r = c->Get("/v1/weight", h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  int limited = 0;
  for (int i = 0; i < 14; ++i) {
    r = c->Get("/v1/history?limit=1", httplib::Headers{{"Authorization", "Bearer " + kTokens.at("ro")}});
    ASSERT_TRUE(r);
    if (r->status == 429) {
      ++limited;
      EXPECT_EQ(r->get_header_value("Retry-After"), "1");
    }
  }
  EXPECT_GE(limited, 3);
  const std::string drain = R"({"record":"app.example.com","endpoint":"standby"})";
  httplib::Headers keyed = h;
  keyed.emplace("Idempotency-Key", "tls-1");
  auto first = c->Post("/v1/drain", keyed, drain, "application/json");
  auto again = c->Post("/v1/drain", keyed, drain, "application/json");
  auto other = c->Post("/v1/undrain", keyed, drain, "application/json");
  ASSERT_TRUE(first && again && other);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(again->body, first->body);
  EXPECT_EQ(other->status, 409);
  // Without a client certificate the handshake fails: no HTTP at all.
  auto bare = client(false);
  r = bare->Get("/v1/status", h);
  EXPECT_FALSE(r);
  // Plain HTTP to the TLS port gets nothing either.
  httplib::Client plain("127.0.0.1", port_);
  auto p = plain.Get("/v1/status", h);
  EXPECT_TRUE(!p || p->status != 200);

  // The remote vanectl over https, with the CA and the client certificate.
  const std::string url = "https://127.0.0.1:" + std::to_string(port_);
  auto ctl = [&](std::vector<std::string> args, std::string& out) {
    std::vector<std::string> argv{VANECTL_PATH, "--url", url, "--token-file", d + "/ci.token", "--cacert", d + "/ca.pem",
                                  "--cert", d + "/client.pem", "--key", d + "/client.key"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process proc(argv);
    int rc = proc.wait(30000);
    out = proc.output();
    return rc;
  };
  std::string out;
  ASSERT_EQ(ctl({"weight", "www.example.com", "use2", "255", "--reason", "from the runbook"}, out), 0) << out;
  EXPECT_NE(out.find("www.example.com./A use2: weight 255"), std::string::npos) << out;
  ASSERT_EQ(ctl({"weight", "www.example.com", "use1", "0"}, out), 0) << out;
  EXPECT_EQ(a("www.example.com"), "198.51.100.10");
  ASSERT_EQ(ctl({"status"}, out), 0) << out;
  EXPECT_NE(out.find("www.example.com. A  policy weighted"), std::string::npos) << out;
  ASSERT_EQ(ctl({"history", "--limit", "2", "--json"}, out), 0) << out;
  json hist = json::parse(out);
  EXPECT_EQ(hist["entries"].back()["by"], "ci");
  ASSERT_EQ(ctl({"explain", "www.example.com", "--client", "192.0.2.1"}, out), 0) << out;
  // Its errors as on the socket: exit 1 with the reason.
  EXPECT_EQ(ctl({"weight", "www.other.test", "a", "0"}, out), 1);
  EXPECT_NE(out.find("may write in example.com. only"), std::string::npos) << out;
  EXPECT_EQ(ctl({"reload"}, out), 1);
  EXPECT_NE(out.find("it needs admin"), std::string::npos) << out;
  // A wrong CA: the server is not trusted, nothing sent.
  std::vector<std::string> argv{VANECTL_PATH, "--url", url, "--token-file", d + "/ci.token", "--cacert", d + "/client.pem",
                                "--cert", d + "/client.pem", "--key", d + "/client.key", "drain", "www.example.com", "use1"};
  Process bad(argv);
  EXPECT_EQ(bad.wait(30000), 2);
  EXPECT_NE(bad.output().find("cannot reach the API"), std::string::npos) << bad.output();
}

// GET /v1/openapi.json: valid OpenAPI 3 by a real validator, and every path
// and method it names answers with a status it documents.
TEST_F(ApiTest, OpenApi_ValidAndEveryPathAnswersAsDocumented) {
  start();
  Answer doc = get("/v1/openapi.json", "");  // no token needed to read the description
  ASSERT_EQ(doc.status, 200);
  ASSERT_TRUE(doc.body.is_object());
  std::string file = dir_.write("openapi.json", doc.body.dump(2));
  const std::string validator = std::string(VANE_SOURCE_DIR) + "/tests/api/validate.js";
  Process node({"/usr/bin/env", "NODE_PATH=" + std::string(VANE_SOURCE_DIR) + "/tests/api/node_modules", "node",
                validator, file});
  int rc = node.wait(60000);
  ASSERT_EQ(rc, 0) << node.output() << "\n(scripts/test.sh installs the validator: npm ci --prefix tests/api)";
  EXPECT_NE(node.output().find("valid: vane HTTP API 3.0.3"), std::string::npos) << node.output();

  size_t calls = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      std::set<int> documented;
      for (const auto& [code, resp] : op["responses"].items()) documented.insert(std::stoi(code));
      Answer r;
      if (method == "get") {
        std::string url = path, sep = "?";
        for (const auto& p : op.value("parameters", json::array()))
          if (p.value("required", false)) {
            url += sep + p["name"].get<std::string>() + "=app.example.com";
            sep = "&";
          }
        r = get(url);
      } else {
        json body = op["requestBody"]["content"]["application/json"]["example"];
        r = post(path, body.dump());
      }
      ++calls;
      EXPECT_TRUE(documented.count(r.status)) << method << " " << path << " answered " << r.status << ": " << r.body;
      EXPECT_TRUE(r.body.is_object()) << method << " " << path;
      if (r.status == 200 && path != "/v1/openapi.json") {
        EXPECT_EQ(r.body["ok"], true) << path;
      } else if (r.status != 200) {
        EXPECT_EQ(r.body["ok"], false) << path;
      }
      // Without a token, 401 — documented for everything but the description itself.
      if (path != "/v1/openapi.json") {
        Answer anon = method == "get" ? get(path, "") : post(path, "{}", "");
        EXPECT_EQ(anon.status, 401) << path;
        EXPECT_TRUE(documented.count(401)) << path;
      }
    }
  }
  EXPECT_EQ(calls, 16u);  // openapi.json, 3 reads by GET and POST, 9 more verbs by POST
  // Every verb the admin socket knows has its path.
  for (const char* verb : {"status", "weight", "drain", "undrain", "force", "failback", "drill", "explain", "reload",
                           "history", "dnssec", "zone"})
    EXPECT_TRUE(doc.body["paths"].contains(std::string("/v1/") + verb)) << verb;
}

}  // namespace
}  // namespace vane::test
