// Network namespaces for partition tests. A lab is a bridge in a hub
// namespace and one namespace per host (10.78.0.k/24), each host plugged
// into the bridge by a veth pair. Links are cut or made lossy with nftables
// rules inside a host's namespace: packets vanish silently, as in a real
// partition (no "unreachable" to fail fast on). Everything is deleted with
// the lab; the processes in it belong to their owners, who stop them by PID.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vane::test {

class NetLab {
 public:
  NetLab();
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  bool ok() const { return ok_; }  // false where namespaces or nft cannot be made
  const std::string& error() const { return error_; }

  // Adds a host and returns its address.
  std::string add(const std::string& host);
  std::string ip(const std::string& host) const { return hosts_.at(host).ip; }
  std::string ns(const std::string& host) const { return hosts_.at(host).ns; }
  // A command prefix that runs a program on the host.
  std::vector<std::string> exec(const std::string& host) const { return {"ip", "netns", "exec", ns(host)}; }

  // Nothing passes between a and b, either way.
  void cut(const std::string& a, const std::string& b);
  // `percent` of the packets from `from` to `to` are lost (the other way is clean).
  void lose(const std::string& from, const std::string& to, int percent);
  void heal();  // every link clean again
  void heal(const std::string& a, const std::string& b);  // undoes cut(a, b)

  // The calling thread works in the host's namespace while this is in
  // scope: sockets it opens (and threads it starts) live there.
  class Inside {
   public:
    Inside(const NetLab& lab, const std::string& host) : Inside(lab.ns(host)) {}
    explicit Inside(const std::string& netns);  // any named namespace (`ip netns add`); throws if it cannot
    ~Inside();
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;

   private:
    int home_ = -1;
  };

 private:
  struct Host {
    std::string ns, ip;
    std::set<std::string> cut;           // addresses cut off
    std::map<std::string, int> loss;     // address -> percent lost on the way out
  };
  void apply(Host& h);

  std::string tag_, hub_, error_;
  bool ok_ = false;
  std::map<std::string, Host> hosts_;
};

}  // namespace vane::test
