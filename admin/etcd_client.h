// A small client for etcd's v3 API through its JSON gateway (/v3/kv/range,
// /v3/kv/txn, /v3/lease/*, /v3/watch) over libcurl. Blocking calls with hard
// deadlines, tried against each configured endpoint in turn; a failure names
// every endpoint tried. One client per thread (it owns one curl handle).
// Never used on a DNS worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "error.h"

namespace vane::admin {

using Json = nlohmann::json;

std::string base64_encode(std::string_view in);
std::string base64_decode(std::string_view in);
// The etcd JSON mapping writes int64 as strings; accepts either.
int64_t json_int(const Json& j, const char* key, int64_t dflt = 0);

// One key-value as etcd returns it, decoded.
struct KeyValue {
  std::string key, value;
  int64_t mod_revision = 0;
  int64_t create_revision = 0;
  int64_t lease = 0;
};
KeyValue decode_kv(const Json& kv);

// The smallest key greater than every key that starts with `prefix`.
std::string prefix_end(std::string prefix);

class EtcdClient {
 public:
  explicit EtcdClient(const ClusterSpec& spec);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // POST `body` to `path` (e.g. "/v3/kv/txn") on the first endpoint that
  // answers, within `deadline_ms` in all. Returns the decoded response.
  Result<Json> call(const std::string& path, const Json& body, uint32_t deadline_ms = 2800);
  // An error from call() that etcd answered with: it refused the request
  // (too big, a bad request, permission denied) and applied none of it.
  // Any other error (no member answered in time, a connection lost) leaves
  // a write's fate unknown.
  static bool refused(const Error& e) { return e.message.starts_with(kRefused); }
  static constexpr std::string_view kRefused = "etcd refused it (";
  // A refusal as too big (more operations than its --max-txn-ops, more
  // bytes than its --max-request-bytes): etcd's reason; else nothing.
  static std::optional<std::string> too_big(const Error& e);

  // Range over [key, range_end) ("" = the one key); `extra` adds fields
  // such as limit, sort_order, revision.
  Result<Json> range(const std::string& key, const std::string& range_end, Json extra = Json::object(),
                     uint32_t deadline_ms = 2800);

  // A watch stream: calls `on_message` with each decoded {"result":...}
  // object until it returns false, the stream breaks, or `stop` is set.
  // Returns the reason it ended.
  std::string watch(const Json& create_request, const std::function<bool(const Json&)>& on_message,
                    const std::atomic<bool>& stop);

  const std::vector<std::string>& endpoints() const { return urls_; }

 private:
  Result<Json> post_once(const std::string& url, const std::string& body, uint32_t timeout_ms, long& http_status);
  std::optional<std::string> authenticate(const std::string& url, uint32_t timeout_ms);
  void* setup(const std::string& url, uint32_t timeout_ms, const std::string& body);  // curl_slist*

  std::vector<std::string> urls_;
  ClusterSpec spec_;
  std::string password_;
  std::string token_;
  size_t good_ = 0;  // index of the endpoint that answered last
  void* curl_ = nullptr;
};

}  // namespace vane::admin
