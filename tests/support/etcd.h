// A real etcd cluster for tests: N members of Debian's etcd on 127.0.0.1
// with ephemeral ports and temp data dirs, started by the test and stopped
// by PID. Members can be killed, restarted, and asked who leads.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "netlab.h"
#include "process.h"

namespace vane::test {

class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 3);
  // One member on each of the lab's hosts (named after them), on the
  // host's address and etcd's usual ports.
  EtcdCluster(const NetLab& lab, const std::vector<std::string>& hosts);
  ~EtcdCluster();

  // "http://127.0.0.1:P1", ... — for a vaned's cluster.etcd.
  std::vector<std::string> urls() const;
  std::string yaml_urls() const;  // ["http://...", ...]
  int size() const { return int(members_.size()); }

  void kill(int i, int sig = 9);  // stops member i (SIGKILL by default)
  void start(int i);              // (re)starts member i on its data dir
  void kill_all();
  // SIGSTOP / SIGCONT: a member that holds its connections and answers nothing (a hung process).
  void pause(int i);
  void resume(int i);
  void start_all();
  // Flags every member starts with from its next start on (e.g. "--max-txn-ops", "300").
  void set_flags(std::vector<std::string> flags) { flags_ = std::move(flags); }
  bool running(int i) const;
  // Index of the member that leads now, or -1 (no quorum, or none answers).
  int leader();
  // Hands leadership to member i (etcd's transfer-leadership); true once it leads.
  bool make_leader(int i);
  // Waits until a leader is elected and every running member answers.
  bool wait_healthy(int timeout_ms = 20000);

  // A v3 JSON call to any running member (e.g. "/v3/kv/compaction").
  nlohmann::json call(const std::string& path, const nlohmann::json& body);
  int64_t revision();
  // A key's entry as etcd stores it ({key, value, lease, mod_revision, ...},
  // the value in base64), or null while there is no such key.
  nlohmann::json entry(const std::string& key);
  // A key's value parsed as JSON, or {} while there is no such key (or it
  // holds no JSON object): ready for .value(...) in a poll.
  nlohmann::json value_of(const std::string& key);
  std::string logs() const;  // every member's output, for a failure message

 private:
  void boot();
  std::optional<nlohmann::json> ask(int i, const std::string& path, const nlohmann::json& body) const;

  struct Member {
    std::string name, host = "127.0.0.1", lab_host;
    uint16_t client = 0, peer = 0;
    std::unique_ptr<Process> proc;
  };
  const NetLab* lab_ = nullptr;
  TempDir dir_;
  std::vector<Member> members_;
  std::vector<std::string> flags_;
  std::string initial_;
};

}  // namespace vane::test
