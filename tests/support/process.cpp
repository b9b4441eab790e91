// Child processes for integration tests; stopped by PID, never left behind.
#include "process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <stdexcept>
#include <unordered_set>

#ifndef VANED_PATH
#error "VANED_PATH must be defined by the build"
#endif

namespace vane::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/vane-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(p).parent_path());
  std::ofstream(p) << content;
  return p;
}

Process::Process(std::vector<std::string> argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());  // a bare name is looked up on PATH (ip, kdig)
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];
  reader_ = std::thread([this] {
    char buf[4096];
    ssize_t n;
    while ((n = read(out_fd_, buf, sizeof buf)) > 0) {
      std::lock_guard lock(mu_);
      output_.append(buf, size_t(n));
      cv_.notify_all();
    }
  });
}

Process::~Process() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait(5000);
  }
  if (reader_.joinable()) reader_.join();
  close(out_fd_);
}

bool Process::wait_for_output(const std::string& needle, int timeout_ms) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return output_.find(needle) != std::string::npos; });
}

std::string Process::output() const {
  std::lock_guard lock(mu_);
  return output_;
}

void Process::signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

bool Process::running() {
  if (reaped_) return false;
  int st;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return true;
}

int Process::wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    usleep(10000);
  }
  // All output is in once the pipe reaches EOF.
  if (reader_.joinable()) reader_.join();
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

std::string vaned_path() { return VANED_PATH; }

Vaned::Vaned(const TempDir& dir, const std::string& config_yaml, const std::vector<std::string>& extra_args,
             const std::vector<std::string>& prefix) {
  config_path_ = dir.write("vane.yaml", config_yaml);
  std::vector<std::string> argv = prefix;
  argv.insert(argv.end(), {vaned_path(), "--config", config_path_});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Process>(argv);
  if (!proc_->wait_for_output("ready:", 20000))
    throw std::runtime_error("vaned did not become ready; output:\n" + proc_->output());
  std::smatch m;
  std::string out = proc_->output();
  if (!std::regex_search(out, m, std::regex(R"(listening on [^ ]*:(\d+) )")))
    throw std::runtime_error("no listening line in vaned output:\n" + out);
  port_ = static_cast<uint16_t>(std::stoi(m[1]));
}

int run_ctl(const std::string& tool, const std::string& socket, const std::vector<std::string>& args,
            std::string& out, int timeout_ms) {
  std::vector<std::string> argv{tool, "-s", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv);
  int rc = p.wait(timeout_ms);
  out = p.output();
  return rc;
}

uint16_t free_port() {
  // Bind UDP and TCP together so the port is free for both.
  for (int attempt = 0; attempt < 50; ++attempt) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    uint16_t port = ntohs(a.sin_port);
    close(u);
    close(t);
    if (ok) return port;
  }
  throw std::runtime_error("no free port");
}

uint16_t stable_port() {
  int lo = 32768;
  if (FILE* f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (fscanf(f, "%d", &lo) != 1) lo = 32768;
    fclose(f);
  }
  static std::mt19937 rng(static_cast<uint32_t>(getpid()) * 2654435761u);
  // Never the same one twice in a process: ports drawn together (an etcd
  // cluster's six) are all free when drawn, and none is bound until its
  // owner starts — a draw repeated among them was a member that could not
  // listen. Nor one another test process holds (ctest runs two at once):
  // each port drawn is claimed by a lock on a file named after it, held
  // until this process exits, which removes the file (still locked: one
  // who opened it meanwhile finds it gone once they hold the lock).
  static std::mutex mu;
  static std::unordered_set<uint16_t> given;
  static struct Claims {
    std::vector<std::pair<std::string, int>> held;
    ~Claims() {
      for (const auto& [path, fd] : held) {
        unlink(path.c_str());
        close(fd);
      }
    }
  } claims;
  std::lock_guard lock(mu);
  const std::string dir = "/tmp/vane-test-ports";
  mkdir(dir.c_str(), 01777);
  for (int attempt = 0; attempt < 200; ++attempt) {
    uint16_t port = static_cast<uint16_t>(10000 + rng() % uint32_t(std::max(1000, lo - 10000)));
    if (given.count(port)) continue;
    std::string path = dir + "/" + std::to_string(port);
    int claim = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    struct stat mine {
    }, named{};
    if (claim >= 0 && (flock(claim, LOCK_EX | LOCK_NB) != 0 || fstat(claim, &mine) != 0 ||
                       stat(path.c_str(), &named) != 0 || mine.st_ino != named.st_ino)) {
      close(claim);
      continue;  // another test process drew it (or has just let it go)
    }
    int t = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(t);
    if (ok) {
      given.insert(port);
      if (claim >= 0) claims.held.emplace_back(std::move(path), claim);  // locked for the process's life
      return port;
    }
    if (claim >= 0) close(claim);
  }
  throw std::runtime_error("no free port below the ephemeral range");
}

bool under_asan() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find("libasan") != std::string::npos) return true;
  return false;
}

}  // namespace vane::test
