#include "etcd.h"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "etcd_client.h"

namespace vane::test {

namespace {

std::optional<nlohmann::json> post(const std::string& host, uint16_t port, const std::string& path,
                                   const nlohmann::json& body) {
  httplib::Client c(host, port);
  c.set_connection_timeout(0, 300000);
  c.set_read_timeout(2, 0);
  auto r = c.Post(path, body.dump(), "application/json");
  if (!r || r->status != 200) return std::nullopt;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace

EtcdCluster::EtcdCluster(int members) {
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "e" + std::to_string(i);
    m.client = stable_port();
    do m.peer = stable_port();
    while (m.peer == m.client);
    initial_ += (initial_.empty() ? "" : ",") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer);
    members_.push_back(std::move(m));
  }
  boot();
}

EtcdCluster::EtcdCluster(const NetLab& lab, const std::vector<std::string>& hosts) : lab_(&lab) {
  for (const auto& host : hosts) {
    Member m;
    m.name = host;
    m.lab_host = host;
    m.host = lab.ip(host);
    m.client = 2379;
    m.peer = 2380;
    initial_ += (initial_.empty() ? "" : ",") + m.name + "=http://" + m.host + ":2380";
    members_.push_back(std::move(m));
  }
  boot();
}

std::optional<nlohmann::json> EtcdCluster::ask(int i, const std::string& path, const nlohmann::json& body) const {
  const Member& m = members_[size_t(i)];
  if (!lab_) return post(m.host, m.client, path, body);
  NetLab::Inside in(*lab_, m.lab_host);
  return post(m.host, m.client, path, body);
}

void EtcdCluster::boot() {
  start_all();
  if (!wait_healthy()) {
    throw std::runtime_error("etcd cluster did not become healthy:\n" + logs());
  }
}

EtcdCluster::~EtcdCluster() { kill_all(); }

std::vector<std::string> EtcdCluster::urls() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back("http://" + m.host + ":" + std::to_string(m.client));
  return out;
}

std::string EtcdCluster::yaml_urls() const {
  std::string s;
  for (const auto& u : urls()) s += (s.empty() ? "\"" : ", \"") + u + "\"";
  return "[" + s + "]";
}

void EtcdCluster::start(int i) {
  Member& m = members_[size_t(i)];
  if (m.proc && m.proc->running()) return;
  std::string client = "http://" + m.host + ":" + std::to_string(m.client);
  std::string peer = "http://" + m.host + ":" + std::to_string(m.peer);
  std::vector<std::string> argv;
  if (lab_) argv = lab_->exec(m.lab_host);
  // Short heartbeats: elections in about a second, as on a LAN.
  std::vector<std::string> etcd{
      "etcd", "--name", m.name, "--data-dir", dir_.path() + "/" + m.name, "--listen-client-urls", client,
      "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", initial_, "--initial-cluster-state", "new", "--initial-cluster-token",
      "vane-test-" + std::to_string(members_[0].client) + "-" + std::to_string(getpid()), "--heartbeat-interval",
      "50", "--election-timeout", "500", "--log-level", "warn"};
  argv.insert(argv.end(), etcd.begin(), etcd.end());
  argv.insert(argv.end(), flags_.begin(), flags_.end());
  m.proc = std::make_unique<Process>(argv);
}

void EtcdCluster::start_all() {
  for (int i = 0; i < size(); ++i) start(i);
}

void EtcdCluster::kill(int i, int sig) {
  Member& m = members_[size_t(i)];
  if (!m.proc) return;
  m.proc->signal(sig);
  m.proc->wait(10000);
  m.proc.reset();
}

void EtcdCluster::kill_all() {
  for (int i = 0; i < size(); ++i) kill(i);
}

void EtcdCluster::pause(int i) {
  if (Member& m = members_[size_t(i)]; m.proc) m.proc->signal(SIGSTOP);
}

void EtcdCluster::resume(int i) {
  if (Member& m = members_[size_t(i)]; m.proc) m.proc->signal(SIGCONT);
}

bool EtcdCluster::running(int i) const { return members_[size_t(i)].proc != nullptr; }

int EtcdCluster::leader() {
  for (int i = 0; i < size(); ++i) {
    if (!running(i)) continue;
    auto s = ask(i, "/v3/maintenance/status", nlohmann::json::object());
    if (!s || !s->contains("leader")) continue;
    std::string lead = (*s)["leader"].is_string() ? (*s)["leader"].get<std::string>() : (*s)["leader"].dump();
    for (int j = 0; j < size(); ++j) {
      if (!running(j)) continue;
      auto t = ask(j, "/v3/maintenance/status", nlohmann::json::object());
      if (!t) continue;
      const auto& id = (*t)["header"]["member_id"];
      if ((id.is_string() ? id.get<std::string>() : id.dump()) == lead) return j;
    }
  }
  return -1;
}

bool EtcdCluster::wait_healthy(int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    bool all = leader() >= 0;
    for (int i = 0; all && i < size(); ++i)
      if (running(i)) all = ask(i, "/v3/kv/range", {{"key", "AA=="}}).has_value();
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

bool EtcdCluster::make_leader(int i) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int l = leader();
    if (l == i) return true;
    auto me = ask(i, "/v3/maintenance/status", nlohmann::json::object());
    if (l >= 0 && me) {
      const auto& id = (*me)["header"]["member_id"];
      ask(l, "/v3/maintenance/transfer-leadership",
           {{"targetID", id.is_string() ? id.get<std::string>() : id.dump()}});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

nlohmann::json EtcdCluster::call(const std::string& path, const nlohmann::json& body) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    for (int i = 0; i < size(); ++i)
      if (running(i))
        if (auto r = ask(i, path, body)) return *r;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("no etcd member answered " + path);
}

std::string EtcdCluster::logs() const {
  std::string out;
  for (const auto& m : members_) out += "--- " + m.name + (m.proc ? "" : " (stopped)") + ":\n" + (m.proc ? m.proc->output() : "") + "\n";
  return out;
}

int64_t EtcdCluster::revision() {
  auto r = call("/v3/kv/range", {{"key", "AA=="}});
  const auto& rev = r["header"]["revision"];
  return rev.is_string() ? std::stoll(rev.get<std::string>()) : rev.get<int64_t>();
}

nlohmann::json EtcdCluster::entry(const std::string& key) {
  auto r = call("/v3/kv/range", {{"key", admin::base64_encode(key)}});
  return r.contains("kvs") && !r["kvs"].empty() ? r["kvs"][0] : nlohmann::json();
}

nlohmann::json EtcdCluster::value_of(const std::string& key) {
  auto e = entry(key);
  if (!e.is_object()) return nlohmann::json::object();
  auto v = nlohmann::json::parse(admin::base64_decode(e["value"].get<std::string>()), nullptr, false);
  return v.is_object() ? v : nlohmann::json::object();
}

}  // namespace vane::test
