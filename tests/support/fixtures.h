// Small zones shared by the integration tests.
#pragma once

#include <httplib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>

#include "process.h"

namespace vane::test {

// r.test with an SOA of `serial` and www.r.test A `www` (6 lines, 4 records).
inline std::string zone_with(const std::string& www, int serial) {
  return "$ORIGIN r.test.\n$TTL 300\n@ IN SOA ns hostmaster " + std::to_string(serial) +
         " 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\nwww IN A " + www + "\n";
}

// example.com with just SOA, NS and the name server's A (steered records come from the config).
inline const char* kExampleZone =
    "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\n"
    "ns IN A 192.0.2.1\n";

// records: entries shared by the admin, operator-view and cluster tests.
// www.example.com, weighted: use1 255 / use2 0 (/ use3 0) — the 255/0 flip.
inline std::string www_weighted(bool with_use3) {
  std::string s = R"(  - name: www.example.com
    type: A
    policy: weighted
    endpoints:
      - { name: use1, address: 192.0.2.10, weight: 255 }
      - { name: use2, address: 198.51.100.10, weight: 0 }
)";
  if (with_use3) s += "      - { name: use3, address: 203.0.113.10, weight: 0 }\n";
  return s;
}

// app.example.com, failover: primary 192.0.2.20, standby 198.51.100.20; each
// checked by `check` at 127.0.0.1:port when its port is not 0.
inline std::string app_failover(uint16_t primary_port = 0, uint16_t standby_port = 0, const std::string& check = "web") {
  auto probe = [&](uint16_t port) {
    return port ? ", host: 127.0.0.1, port: " + std::to_string(port) + ", check: " + check : std::string();
  };
  return "  - name: app.example.com\n    type: A\n    policy: failover\n    endpoints:\n"
         "      - { name: primary, address: 192.0.2.20, priority: 1" + probe(primary_port) + " }\n"
         "      - { name: standby, address: 198.51.100.20, priority: 2" + probe(standby_port) + " }\n";
}

// The port a listener of vaned's took, from its "`what` on HOST:PORT" line
// (listen port 0); 0 before that line.
inline uint16_t logged_port(Process& p, const std::string& what) {
  std::smatch m;
  std::string out = p.output();
  return std::regex_search(out, m, std::regex(what + R"( on [^ ]*:(\d+) )")) ? uint16_t(std::stoi(m[1])) : 0;
}
// http.listen's and api.listen's.
inline uint16_t http_port(Process& p) {
  return logged_port(p, "http");
}
inline uint16_t api_port(Process& p) {
  return logged_port(p, "api");
}

// Debian's Chromium (scripts/test.sh installs it), or "".
inline std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

// A page as headless Chromium renders it, after its script has polled.
inline std::string rendered(const std::string& url) {
  Process p(
      {chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom", url});
  p.wait(60000);
  return p.output();
}

// Polls `f` every 20 ms until it holds or `timeout_ms` passes.
// A sample from vaned's /metrics, its labels written out as vaned writes
// them (`vane_x{kind="a"}`), or -1.
inline double metric(uint16_t http, const std::string& series) {
  httplib::Client c("127.0.0.1", http);
  auto r = c.Get("/metrics");
  if (!r) return -1;
  size_t at = r->body.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(r->body.substr(at + series.size() + 2));
}

// A stream socket on a unix path: connected to it, or bound and listening
// there (backlog 4); -1 when that fails.
inline int unix_socket(const std::string& path, bool listening = false) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) return -1;
  memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  auto* addr = reinterpret_cast<sockaddr*>(&sun);
  bool ok = listening ? bind(fd, addr, sizeof sun) == 0 && listen(fd, 4) == 0 : connect(fd, addr, sizeof sun) == 0;
  if (!ok) {
    close(fd);
    return -1;
  }
  return fd;
}

// A 40 MiB tmpfs mounted on `dir` (made if missing) while this lives: a
// state disk a test can fill. Mounting needs root: mounted() and error().
class SmallDisk {
 public:
  explicit SmallDisk(std::string dir) : dir_(std::move(dir)) {
    mkdir(dir_.c_str(), 0750);
    mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=40m") == 0;
    if (!mounted_) error_ = "mount tmpfs on " + dir_ + ": " + strerror(errno) + " (the test needs root)";
  }
  ~SmallDisk() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  // Writes zeros to a file in it until the file system says no; free()
  // removes that file.
  void fill() const {
    std::ofstream f(dir_ + "/fill", std::ios::binary);
    std::string block(4096, '\0');
    while (f.write(block.data(), std::streamsize(block.size())) && f.flush()) {
    }
  }
  void free() const { unlink((dir_ + "/fill").c_str()); }

 private:
  std::string dir_, error_;
  bool mounted_ = false;
};

inline bool eventually(const std::function<bool()>& f, int timeout_ms = 5000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

}  // namespace vane::test
