// libFuzzer: the HTTP API's request router — method, path, query, bearer
// token, Idempotency-Key and JSON body, as one input split at newlines:
//   METHOD\nPATH\nQUERY (k=v&k=v)\nAUTHORIZATION\nIDEMPOTENCY-KEY\nBODY...
// Every route must end in an answer or an admin request with a "cmd"; an
// admitted request's answer is recorded and replayed under its key.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api_router.h"

namespace {

vane::ApiSpec spec() {
  vane::ApiSpec s;
  s.listen = "127.0.0.1:0";
  s.max_body = 4096;
  auto token = [](const char* name, const char* secret, bool read, bool write, bool admin,
                  std::vector<std::string> zones) {
    vane::ApiToken t;
    t.name = name;
    t.secret = secret;
    t.read = read;
    t.write = write;
    t.admin = admin;
    t.write_zones = std::move(zones);
    t.rate = 1000000;
    return t;
  };
  s.tokens = {token("ci", "ci-0123456789abcdef", true, false, false, {"example.com."}),
              token("ro", "ro-0123456789abcdef", true, false, false, {}),
              token("root", "root-0123456789abcdef", false, false, true, {})};
  return s;
}

std::string take_line(std::string& in) {
  size_t nl = in.find('\n');
  std::string line = in.substr(0, nl);
  in.erase(0, nl == std::string::npos ? in.size() : nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vane::server::ApiRouter router(spec());
  static uint64_t now = 1;
  std::string in(reinterpret_cast<const char*>(data), size);
  vane::server::ApiCall call;
  call.method = take_line(in);
  call.path = take_line(in);
  std::string query = take_line(in);
  for (size_t at = 0; at < query.size();) {
    size_t amp = query.find('&', at);
    std::string kv = query.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
    size_t eq = kv.find('=');
    call.query.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
    at = amp == std::string::npos ? query.size() : amp + 1;
  }
  call.authorization = take_line(in);
  call.idempotency_key = take_line(in);
  call.body = in;
  auto route = router.route(call, now += 7);
  if (route.done) {
    if (route.done->status < 200 || route.done->status > 599 || !route.done->body.is_object()) abort();
    return 0;
  }
  if (!route.request.is_object() || !route.request["cmd"].is_string() || route.token.empty()) abort();
  (void)route.request.dump(-1, ' ', false, vane::server::Json::error_handler_t::replace);
  if (auto first = router.begin(route, call, now)) return 0;
  router.finish(route, call, vane::server::ApiAnswer{200, {{"ok", true}}, 0, "", false});
  return 0;
}
