#include "etcd_client.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

namespace vane::admin {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Errors worth trying another member (or the same one again) for: the
// cluster is electing a leader, or this member is cut off from it.
bool transient(const std::string& message) {
  for (const char* s : {"leader changed", "no leader", "timed out", "too many requests", "not capable", "unhealthy",
                        "stopped", "Unavailable", "connection"})
    if (message.find(s) != std::string::npos) return true;
  return false;
}

// A request given up on (timed out on a cut link) must not reach etcd
// later, once the link heals, behind a newer one sent since: the kernel
// would go on retransmitting it after curl closed the connection. Closed
// with a reset instead (SO_LINGER 0), what it had not delivered is dropped.
int drop_unsent_on_close(void*, curl_socket_t fd, curlsocktype) {
  linger off{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
  return CURL_SOCKOPT_OK;
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], '='};
  }
  return out;
}

std::string base64_decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const char* p = ch ? strchr(kB64, ch) : nullptr;
    if (!p) continue;  // padding, whitespace
    acc = acc << 6 | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

int64_t json_int(const Json& j, const char* key, int64_t dflt) {
  auto it = j.find(key);
  if (it == j.end()) return dflt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (...) {
    }
  }
  return dflt;
}

KeyValue decode_kv(const Json& kv) {
  return KeyValue{base64_decode(kv.value("key", "")), base64_decode(kv.value("value", "")),
                  json_int(kv, "mod_revision"), json_int(kv, "create_revision"), json_int(kv, "lease")};
}

std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (uint8_t(prefix.back()) < 0xff) {
      prefix.back() = char(uint8_t(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

EtcdClient::EtcdClient(const ClusterSpec& spec) : urls_(spec.etcd), spec_(spec) {
  curl_ = curl_easy_init();
  if (!spec.password_file.empty()) {
    std::ifstream in(spec.password_file);
    std::getline(in, password_);
    while (!password_.empty() && (password_.back() == '\r' || password_.back() == ' ')) password_.pop_back();
  }
}

EtcdClient::~EtcdClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

void* EtcdClient::setup(const std::string& url, uint32_t timeout_ms, const std::string& body) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, long(std::min<uint32_t>(timeout_ms, 1000)));
  if (timeout_ms) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(timeout_ms));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, drop_unsent_on_close);
  if (!spec_.tls_ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, spec_.tls_ca.c_str());
  if (!spec_.tls_cert.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, spec_.tls_cert.c_str());
  if (!spec_.tls_key.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, spec_.tls_key.c_str());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token_.empty()) headers = curl_slist_append(headers, ("Authorization: " + token_).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(body.size()));
  return headers;  // the caller frees them after the transfer
}

Result<Json> EtcdClient::post_once(const std::string& url, const std::string& body, uint32_t timeout_ms,
                                   long& http_status) {
  CURL* c = static_cast<CURL*>(curl_);
  auto* headers = static_cast<curl_slist*>(setup(url, timeout_ms, body));
  std::string response;
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  http_status = 0;
  if (rc != CURLE_OK) return Error{"", 0, std::string("connection: ") + curl_easy_strerror(rc)};
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_status);
  auto j = Json::parse(response, nullptr, false);
  if (j.is_discarded()) return Error{"", 0, "HTTP " + std::to_string(http_status) + ": not JSON"};
  if (http_status != 200 || j.contains("error"))
    return Error{"", int(http_status), j.value("message", j.value("error", std::string("HTTP error")))};
  return j;
}

std::optional<std::string> EtcdClient::authenticate(const std::string& url, uint32_t timeout_ms) {
  token_.clear();
  long status = 0;
  auto r = post_once(url + "/v3/auth/authenticate", Json{{"name", spec_.user}, {"password", password_}}.dump(),
                     timeout_ms, status);
  if (!r) return "authenticate as " + spec_.user + ": " + r.error().message;
  token_ = r->value("token", "");
  return std::nullopt;
}

Result<Json> EtcdClient::call(const std::string& path, const Json& body, uint32_t deadline_ms) {
  const uint64_t end = steady_ms() + deadline_ms;
  const std::string text = body.dump();
  std::string tried;
  size_t attempt = 0;
  const size_t first = good_;
  // A member that accepts connections but does not answer (restarting,
  // without a leader) must not take the whole deadline: each member gets a
  // share of it, and the next call starts with another member.
  const uint32_t share =
      urls_.size() > 1 ? std::clamp<uint32_t>(deadline_ms / uint32_t(urls_.size()), 500, 1500) : deadline_ms;
  while (true) {
    uint64_t now = steady_ms();
    if (now >= end) break;
    size_t i = (first + attempt) % urls_.size();
    ++attempt;
    const std::string& url = urls_[i];
    uint32_t left = uint32_t(end - now);
    uint32_t timeout = std::min<uint32_t>(left, share);
    if (!spec_.user.empty() && token_.empty())
      if (auto e = authenticate(url, timeout)) {
        tried += (tried.empty() ? "" : "; ") + url + ": " + *e;
        continue;
      }
    long status = 0;
    auto r = post_once(url + path, text, timeout, status);
    if (r) {
      good_ = i;
      return r;
    }
    std::string msg = r.error().message;
    if (msg.find("invalid auth token") != std::string::npos && !spec_.user.empty()) {
      token_.clear();
      continue;
    }
    if (tried.find(url + ": ") == std::string::npos) tried += (tried.empty() ? "" : "; ") + url + ": " + msg;
    bool connection = msg.rfind("connection:", 0) == 0;
    if (connection || status == 503) good_ = (i + 1) % urls_.size();
    if (!connection && !transient(msg) && status != 503 && status != 0)
      return Error{"", 0, std::string(kRefused) + url + "): " + msg};  // a real answer: no point asking another member
    if (attempt % urls_.size() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Error{"", 0, "etcd unreachable within " + std::to_string(deadline_ms) + " ms (tried " + tried + ")"};
}

std::optional<std::string> EtcdClient::too_big(const Error& e) {
  const std::string& m = e.message;
  for (const char* s : {"too many operations", "request is too large", "larger than max"})
    if (m.find(s) != std::string::npos) {
      size_t from = m.find("etcdserver: ");
      if (from == std::string::npos) from = m.find("grpc: ");
      std::string why = m.substr(from == std::string::npos ? 0 : from);
      return why.substr(0, why.find(" — "));
    }
  return std::nullopt;
}

Result<Json> EtcdClient::range(const std::string& key, const std::string& range_end, Json extra,
                               uint32_t deadline_ms) {
  extra["key"] = base64_encode(key);
  if (!range_end.empty()) extra["range_end"] = base64_encode(range_end);
  return call("/v3/kv/range", extra, deadline_ms);
}

namespace {

struct WatchState {
  std::string buffer;
  const std::function<bool(const Json&)>* on_message;
  const std::atomic<bool>* stop;
  bool done = false;
  std::string why;
};

size_t on_watch_body(char* data, size_t size, size_t n, void* user) {
  auto* w = static_cast<WatchState*>(user);
  w->buffer.append(data, size * n);
  // The gateway streams one JSON object per message; objects end at a
  // newline or where the next '{"result"' starts.
  size_t start = 0;
  while (true) {
    size_t nl = w->buffer.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(w->buffer.data() + start, nl - start);
    start = nl + 1;
    if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
    auto j = Json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.contains("error")) {
      w->why = j["error"].value("message", j["error"].dump());
      w->done = true;
      return 0;
    }
    if (!(*w->on_message)(j.value("result", Json::object()))) {
      w->done = true;
      return 0;  // aborts the transfer
    }
  }
  w->buffer.erase(0, start);
  return size * n;
}

int on_watch_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<WatchState*>(user)->stop->load() ? 1 : 0;
}

}  // namespace

std::string EtcdClient::watch(const Json& create_request, const std::function<bool(const Json&)>& on_message,
                              const std::atomic<bool>& stop) {
  const std::string& url = urls_[good_ % urls_.size()];
  if (!spec_.user.empty() && token_.empty())
    if (auto e = authenticate(url, 1500)) {
      good_ = (good_ + 1) % urls_.size();
      return *e;
    }
  CURL* c = static_cast<CURL*>(curl_);
  std::string body = Json{{"create_request", create_request}}.dump();
  auto* headers = static_cast<curl_slist*>(setup(url + "/v3/watch", 0, body));
  WatchState w{"", &on_message, &stop, false, ""};
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_watch_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &w);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (w.done) return w.why.empty() ? "ended" : w.why;
  good_ = (good_ + 1) % urls_.size();  // next time, another member
  return url + ": " + (rc == CURLE_OK ? std::string("stream closed") : curl_easy_strerror(rc));
}

}  // namespace vane::admin
