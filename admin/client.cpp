#include "client.h"

#include <httplib.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

namespace vane::admin {

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Result<nlohmann::json> call(const std::string& socket_path, const nlohmann::json& request, int timeout_ms) {
  sockaddr_un sun{};
  if (socket_path.size() >= sizeof sun.sun_path) return Error{socket_path, 0, "socket path too long"};
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd s{socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return Error{socket_path, 0, std::string("socket: ") + strerror(errno)};
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    int err = errno;
    std::string hint = err == ENOENT || err == ECONNREFUSED ? " (is vaned running? is -s right?)" : "";
    return Error{socket_path, 0, std::string("cannot connect: ") + strerror(err) + hint};
  }
  std::string out = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  for (size_t off = 0; off < out.size();) {
    ssize_t n = send(s.fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{socket_path, 0, std::string("send: ") + strerror(errno)};
    off += static_cast<size_t>(n);
  }
  // Sent, and no answer: a change may have been applied or not.
  const std::string unknown = "; if it was a change, it may or may not have been applied: vanectl history shows";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string in;
  char buf[65536];
  while (in.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Error{socket_path, 0, "no answer from vaned within " + std::to_string(timeout_ms) + " ms" + unknown};
    pollfd p{s.fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    ssize_t n = recv(s.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{socket_path, 0, std::string("recv: ") + strerror(errno)};
    if (n == 0) return Error{socket_path, 0, "vaned closed the connection without an answer (stopping?)" + unknown};
    in.append(buf, static_cast<size_t>(n));
  }
  in.resize(in.find('\n'));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    return Error{socket_path, 0, std::string("unreadable answer from vaned: ") + e.what()};
  }
}

Result<nlohmann::json> call_api(const ApiTarget& t, const nlohmann::json& request, int timeout_ms) {
  std::string url = t.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    return Error{t.url, 0, "--url must be http://HOST:PORT or https://HOST:PORT"};
  httplib::Client cli(url, t.cert_file, t.key_file);
  if (!cli.is_valid()) return Error{t.url, 0, "cannot use this URL (or the client certificate and key)"};
  if (!t.ca_file.empty()) cli.set_ca_cert_path(t.ca_file.c_str());
  cli.enable_server_certificate_verification(true);
  cli.set_connection_timeout(5, 0);
  cli.set_tcp_nodelay(true);
  cli.set_read_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000);
  cli.set_bearer_token_auth(t.token.c_str());
  nlohmann::json body = request;
  std::string cmd = body.value("cmd", std::string());
  body.erase("cmd");
  httplib::Headers headers;
  bool write = cmd != "status" && cmd != "history" && cmd != "explain";
  if (write) {
    unsigned char raw[16];
    std::ifstream("/dev/urandom", std::ios::binary).read(reinterpret_cast<char*>(raw), sizeof raw);
    char key[40];
    for (size_t i = 0; i < sizeof raw; ++i) snprintf(key + 2 * i, 3, "%02x", raw[i]);
    headers.emplace("Idempotency-Key", std::string("vanectl-") + key);
  }
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto res = cli.Post(("/v1/" + cmd).c_str(), headers, text, "application/json");
  for (int attempt = 1; !res && write && attempt < 3; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
    res = cli.Post(("/v1/" + cmd).c_str(), headers, text, "application/json");
  }
  if (!res) {
    std::string why = httplib::to_string(res.error());
    if (auto ssl = cli.get_openssl_verify_result(); ssl != 0) why += " (certificate: " + std::to_string(ssl) + ")";
    return Error{url, 0, "cannot reach the API: " + why};
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error{url, 0, "HTTP " + std::to_string(res->status) + ", not a JSON answer: " + res->body.substr(0, 200)};
  if (res->status == 429 && res->has_header("Retry-After") && j.contains("error") && j["error"].is_string())
    j["error"] = j["error"].get<std::string>() + " (retry after " + res->get_header_value("Retry-After") + " s)";
  return j;
}

}  // namespace vane::admin
