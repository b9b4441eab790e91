#include "netlab.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace vane::test {

namespace {

int sh(const std::string& cmd) { return system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

NetLab::NetLab() {
  tag_ = std::to_string(getpid() % 100000);
  hub_ = "vl" + tag_ + "-hub";
  if (sh("ip netns add " + hub_) != 0) {
    error_ = "ip netns add failed (no CAP_SYS_ADMIN, or no network namespaces here)";
    return;
  }
  sh("ip -n " + hub_ + " link set lo up");
  if (sh("ip -n " + hub_ + " link add br0 type bridge") != 0 || sh("ip -n " + hub_ + " link set br0 up") != 0) {
    error_ = "cannot make a bridge";
    return;
  }
  if (sh("ip netns exec " + hub_ + " nft list ruleset") != 0) {
    error_ = "nft does not work here (package nftables, kernel nf_tables)";
    return;
  }
  ok_ = true;
}

NetLab::~NetLab() {
  for (const auto& [name, h] : hosts_) sh("ip netns del " + h.ns);
  sh("ip netns del " + hub_);
}

std::string NetLab::add(const std::string& host) {
  size_t k = hosts_.size() + 2;  // .1 is left for a gateway nobody needs
  Host h;
  h.ns = "vl" + tag_ + "-" + host;
  h.ip = "10.78.0." + std::to_string(k);
  std::string port = "vl" + tag_ + "p" + std::to_string(k);
  bool good = sh("ip netns add " + h.ns) == 0 &&
              sh("ip link add " + port + " netns " + hub_ + " type veth peer name eth0 netns " + h.ns) == 0 &&
              sh("ip -n " + hub_ + " link set " + port + " master br0 up") == 0 &&
              sh("ip -n " + h.ns + " addr add " + h.ip + "/24 dev eth0") == 0 &&
              sh("ip -n " + h.ns + " link set eth0 up") == 0 && sh("ip -n " + h.ns + " link set lo up") == 0;
  if (!good) throw std::runtime_error("netlab: cannot add host " + host);
  hosts_[host] = h;
  return h.ip;
}

// The host's whole rule set, replaced in one nft transaction.
void NetLab::apply(Host& h) {
  std::string rules = "table inet vanelab\ndelete table inet vanelab\ntable inet vanelab {\n"
                      " chain out { type filter hook output priority 0; policy accept;\n";
  for (const auto& a : h.cut) rules += "  ip daddr " + a + " drop\n";
  for (const auto& [a, pct] : h.loss)
    rules += "  ip daddr " + a + " numgen random mod 100 < " + std::to_string(pct) + " drop\n";
  rules += " }\n chain in { type filter hook input priority 0; policy accept;\n";
  for (const auto& a : h.cut) rules += "  ip saddr " + a + " drop\n";
  rules += " }\n}\n";
  FILE* p = popen(("ip netns exec " + h.ns + " nft -f -").c_str(), "w");
  if (!p) throw std::runtime_error("netlab: cannot run nft");
  fputs(rules.c_str(), p);
  if (pclose(p) != 0) throw std::runtime_error("netlab: nft refused:\n" + rules);
}

void NetLab::cut(const std::string& a, const std::string& b) {
  Host& ha = hosts_.at(a);
  ha.cut.insert(hosts_.at(b).ip);
  apply(ha);
}

void NetLab::lose(const std::string& from, const std::string& to, int percent) {
  Host& h = hosts_.at(from);
  h.loss[hosts_.at(to).ip] = percent;
  apply(h);
}

void NetLab::heal() {
  for (auto& [name, h] : hosts_) {
    if (h.cut.empty() && h.loss.empty()) continue;
    h.cut.clear();
    h.loss.clear();
    apply(h);
  }
}

void NetLab::heal(const std::string& a, const std::string& b) {
  Host& ha = hosts_.at(a);
  ha.cut.erase(hosts_.at(b).ip);
  apply(ha);
}

NetLab::Inside::Inside(const std::string& netns) {
  home_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int fd = open(("/var/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (home_ < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    if (fd >= 0) close(fd);
    if (home_ >= 0) close(home_);
    throw std::runtime_error("netlab: cannot enter " + netns);
  }
  close(fd);
}

NetLab::Inside::~Inside() {
  if (setns(home_, CLONE_NEWNET) != 0) std::abort();  // a test thread left in a lab namespace would lie
  close(home_);
}

}  // namespace vane::test
