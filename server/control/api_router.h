// The HTTP API's front half, without sockets: who is asking (a bearer token,
// compared in constant time), whether they may (scope, per-token rate), and
// which admin-socket request a method, path and body are. api.cpp serves it
// over cpp-httplib and hands the request to Control on the main loop; the
// fuzz harness drives it directly. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "admin_socket.h"
#include "config.h"

namespace vane::server {

using admin::Json;

// One HTTP request, as far as the router reads it.
struct ApiCall {
  std::string method;  // "GET", "POST", ...
  std::string path;    // "/v1/weight"
  std::vector<std::pair<std::string, std::string>> query;
  std::string authorization;    // the Authorization header
  std::string idempotency_key;  // the Idempotency-Key header
  std::string body;
};

struct ApiAnswer {
  int status = 200;
  Json body;
  uint32_t retry_after_s = 0;  // 429: Retry-After
  std::string allow;           // 405: Allow
  bool replayed = false;       // an Idempotency-Key's first answer, again
};

// What a request asks of its token's scope.
enum class ApiNeed { kRead, kWrite, kAdmin };

struct ApiRoute {
  std::optional<ApiAnswer> done;  // answered by the router (an error, or /v1/openapi.json)
  Json request;                   // otherwise: the admin request, {"cmd": VERB, ...}
  ApiNeed need = ApiNeed::kRead;
  std::string token;  // the token's name: the actor in the journal
  // A write by a token with only write:ZONE grants: allowed inside these
  // zones ("example.com."), which the caller checks against the serving
  // snapshot (the router does not know where a record lives).
  bool zone_limited = false;
  std::vector<std::string> zones;
};

class ApiRouter {
 public:
  explicit ApiRouter(const ApiSpec& spec);
  // New tokens (reload). A token that keeps its name keeps its rate bucket
  // and its Idempotency-Keys.
  void set_tokens(const std::vector<ApiToken>& tokens);

  ApiRoute route(const ApiCall& call, uint64_t now_ms);

  // Idempotency-Key: a POST with a key this token used before gets the
  // first answer again (same method, path and body), or 409 while the
  // first is in flight or when the body differs. nullopt: go ahead (the key
  // is now in flight); finish() records the answer. Keys live 24 hours;
  // at most kIdempotencyKeys are kept (the oldest go first).
  std::optional<ApiAnswer> begin(const ApiRoute& r, const ApiCall& call, uint64_t now_ms);
  void finish(const ApiRoute& r, const ApiCall& call, const ApiAnswer& answer);

  // An admin reply's HTTP status: 200, 404 ("code": "not_found"), 503
  // ("unavailable"), else 400.
  static int status_of(const Json& reply);
  static ApiAnswer error(int status, const std::string& message);

  static constexpr size_t kIdempotencyKeys = 10000;
  static constexpr uint64_t kIdempotencyMs = 24ULL * 3600 * 1000;

 private:
  struct Bucket {
    double tokens = 0;
    uint64_t at_ms = 0;
  };
  struct Kept {
    std::string fingerprint;
    uint64_t at_ms = 0;
    bool done = false;
    ApiAnswer answer;
  };
  const ApiToken* authenticate(const std::string& authorization) const;

  std::mutex mu_;
  std::vector<ApiToken> tokens_;
  size_t max_body_;
  std::map<std::string, Bucket> buckets_;  // token name -> its rate bucket
  std::map<std::string, Kept> kept_;       // token name + '\n' + key -> its first answer
};

}  // namespace vane::server
