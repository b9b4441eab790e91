// Test-side process control: temp dirs, child processes with captured
// output, and a running vaned on 127.0.0.1 with an ephemeral port. Every
// process started here is stopped by PID when its owner goes out of scope.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vane::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;  // returns full path

 private:
  std::string path_;
};

class Process {
 public:
  // Starts argv[0] with stdout+stderr captured. Throws on failure to fork/exec.
  explicit Process(std::vector<std::string> argv);
  ~Process();
  pid_t pid() const { return pid_; }
  bool wait_for_output(const std::string& needle, int timeout_ms);
  std::string output() const;
  void signal(int sig);
  // Waits for exit; returns the exit code (128+signal when killed), -1 on timeout.
  int wait(int timeout_ms);
  bool running();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  std::thread reader_;
};

std::string vaned_path();

// A vaned serving `config_yaml` (its listen: should use port 0). The config
// and zone files live in dir.
class Vaned {
 public:
  // `prefix`: a command that runs vaned (env VAR=... for libfaketime).
  Vaned(const TempDir& dir, const std::string& config_yaml, const std::vector<std::string>& extra_args = {},
        const std::vector<std::string>& prefix = {});
  uint16_t port() const { return port_; }
  Process& process() { return *proc_; }
  std::string config_path() const { return config_path_; }

 private:
  std::string config_path_;
  std::unique_ptr<Process> proc_;
  uint16_t port_ = 0;
};

// Runs `tool -s socket args...` (vanectl) to its end: its exit code, with
// stdout+stderr in `out` (-1 on timeout).
int run_ctl(const std::string& tool, const std::string& socket, const std::vector<std::string>& args,
            std::string& out, int timeout_ms = 20000);

// An unused port on 127.0.0.1 (for servers other than vaned, e.g. knotd).
uint16_t free_port();
// One below the kernel's ephemeral range, for a server the test restarts
// on the same port (an outgoing connection can take an ephemeral port
// while the server is down: etcd members killed and restarted). Never the
// same port twice in a process, nor one another live test process drew.
uint16_t stable_port();

// Whether this build runs under AddressSanitizer (the suite and vaned are
// built alike): what it cannot do, or how much slower it is.
bool under_asan();

}  // namespace vane::test
