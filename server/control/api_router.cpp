#include "api_router.h"

#include <algorithm>
#include <cmath>

#include "openapi.h"

namespace vane::server {

namespace {

// Every verb of the admin socket, its HTTP methods and what it needs. The
// reads also answer GET with query parameters (`params`); every verb takes
// POST with the admin socket's JSON fields.
struct Verb {
  const char* name;
  ApiNeed need;
  bool get;
  std::vector<const char*> params;
};

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> v{
      {"status", ApiNeed::kRead, true, {"filter"}},
      {"history", ApiNeed::kRead, true, {"limit"}},
      {"explain", ApiNeed::kRead, true, {"qname", "type", "qtype", "client"}},
      {"weight", ApiNeed::kWrite, false, {}},
      {"drain", ApiNeed::kWrite, false, {}},
      {"undrain", ApiNeed::kWrite, false, {}},
      {"force", ApiNeed::kWrite, false, {}},
      {"failback", ApiNeed::kWrite, false, {}},
      {"drill", ApiNeed::kWrite, false, {}},    // action list: read
      {"zone", ApiNeed::kWrite, false, {}},     // refresh|retransfer of a secondary zone
      {"reload", ApiNeed::kAdmin, false, {}},
      {"dnssec", ApiNeed::kAdmin, false, {}},   // action ds|keys: read
  };
  return v;
}

// Constant time in the secret's contents: a wrong token learns nothing from
// how long the comparison took, whichever token it is compared with.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char d = a.size() != b.size();
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    d |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  return d == 0;
}

std::string scope_text(const ApiToken& t) {
  std::string s;
  auto add = [&s](const std::string& x) { s += (s.empty() ? "" : ", ") + x; };
  if (t.read) add("read");
  if (t.write) add("write");
  for (const auto& z : t.write_zones) add("write:" + z);
  if (t.admin) add("admin");
  return s.empty() ? "none" : s;
}

}  // namespace

ApiAnswer ApiRouter::error(int status, const std::string& message) {
  return ApiAnswer{status, admin::error_reply(message), 0, "", false};
}

int ApiRouter::status_of(const Json& reply) {
  if (reply.is_object() && reply.value("ok", false)) return 200;
  std::string code = reply.is_object() && reply.contains("code") && reply["code"].is_string() ? reply["code"].get<std::string>() : "";
  return code == "not_found" ? 404 : code == "unavailable" ? 503 : 400;
}

ApiRouter::ApiRouter(const ApiSpec& spec) : tokens_(spec.tokens), max_body_(spec.max_body) {}

void ApiRouter::set_tokens(const std::vector<ApiToken>& tokens) {
  std::lock_guard lock(mu_);
  tokens_ = tokens;
  std::erase_if(buckets_, [&](const auto& b) {
    return std::none_of(tokens_.begin(), tokens_.end(), [&](const ApiToken& t) { return t.name == b.first; });
  });
}

const ApiToken* ApiRouter::authenticate(const std::string& authorization) const {
  if (authorization.size() < 8 || authorization.compare(0, 7, "Bearer ") != 0) return nullptr;
  const std::string given = authorization.substr(7);
  const ApiToken* found = nullptr;
  for (const auto& t : tokens_)  // every token compared: no early exit
    if (same_secret(given, t.secret)) found = &t;
  return found;
}

ApiRoute ApiRouter::route(const ApiCall& call, uint64_t now_ms) {
  ApiRoute r;
  auto fail = [&r](int status, const std::string& message) -> ApiRoute& {
    r.done = error(status, message);
    return r;
  };
  if (call.path.rfind("/v1/", 0) != 0) return fail(404, "no API path " + call.path.substr(0, 200) + "; see GET /v1/openapi.json");
  const std::string name = call.path.substr(4);
  if (name == "openapi.json") {
    if (call.method != "GET") {
      fail(405, "/v1/openapi.json takes GET");
      r.done->allow = "GET";
      return r;
    }
    r.done = ApiAnswer{200, openapi_document(), 0, "", false};
    return r;
  }
  auto verb = std::find_if(verbs().begin(), verbs().end(), [&](const Verb& v) { return name == v.name; });
  if (verb == verbs().end()) return fail(404, "no API path " + call.path.substr(0, 200) + "; see GET /v1/openapi.json");
  if (call.method != "POST" && !(verb->get && call.method == "GET")) {
    fail(405, call.path + " takes " + (verb->get ? "GET or POST" : "POST"));
    r.done->allow = verb->get ? "GET, POST" : "POST";
    return r;
  }

  std::lock_guard lock(mu_);
  const ApiToken* tok = authenticate(call.authorization);
  if (!tok)
    return fail(401, call.authorization.empty() ? "missing bearer token (Authorization: Bearer TOKEN)"
                                                : "invalid bearer token");
  r.token = tok->name;
  // The token's rate: a bucket of max(10, 2 s worth) requests, refilled at `rate` per second.
  double cap = std::max(10.0, 2 * tok->rate);
  auto [b, fresh] = buckets_.try_emplace(tok->name, Bucket{cap, now_ms});
  b->second.tokens = std::min(cap, b->second.tokens + (now_ms - std::min(now_ms, b->second.at_ms)) * tok->rate / 1000.0);
  b->second.at_ms = now_ms;
  if (b->second.tokens < 1) {
    fail(429, "token '" + tok->name + "' is over its rate of " + std::to_string(int(tok->rate)) + " requests per second");
    r.done->retry_after_s = static_cast<uint32_t>(std::max(1.0, std::ceil((1 - b->second.tokens) / tok->rate)));
    return r;
  }
  b->second.tokens -= 1;

  Json req = Json::object();
  if (call.method == "GET") {
    for (const auto& param : call.query) {
      const std::string& k = param.first;
      const std::string& v = param.second;
      if (std::find_if(verb->params.begin(), verb->params.end(), [&k](const char* p) { return k == p; }) ==
          verb->params.end()) {
        std::string known;
        for (const char* p : verb->params) known += (known.empty() ? "" : ", ") + std::string(p);
        return fail(400, "unknown parameter '" + k.substr(0, 64) + "' for GET " + call.path + " (known: " + known + ")");
      }
      std::string key = k == "type" ? "qtype" : k;
      if (req.contains(key)) return fail(400, "parameter '" + k + "' given twice");
      if (key == "limit") {
        if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
          return fail(400, "\"limit\" must be a whole number");
        req[key] = std::stoll(v);
      } else {
        req[key] = v;
      }
    }
  } else {
    if (call.body.size() > max_body_)
      return fail(413, "request body of " + std::to_string(call.body.size()) + " bytes is over api.max_body (" +
                           std::to_string(max_body_) + ")");
    if (!call.body.empty()) {
      try {
        req = Json::parse(call.body);
      } catch (const Json::exception& e) {
        return fail(400, std::string("body is not valid JSON: ") + e.what());
      }
      if (!req.is_object()) return fail(400, "body must be a JSON object of the verb's fields");
      if (req.contains("cmd")) return fail(400, "unknown field 'cmd' (the verb is the path: " + call.path + ")");
    }
  }
  req["cmd"] = verb->name;

  r.need = verb->need;
  auto action = req.find("action");
  std::string act = action != req.end() && action->is_string() ? action->get<std::string>() : "";
  if (name == "drill" && act == "list") r.need = ApiNeed::kRead;
  if (name == "dnssec" && (act == "ds" || act == "keys")) r.need = ApiNeed::kRead;
  r.request = std::move(req);

  bool ok = tok->admin;
  if (r.need == ApiNeed::kRead) ok |= tok->read;
  if (r.need == ApiNeed::kWrite && !ok) {
    ok = tok->write || !tok->write_zones.empty();
    r.zone_limited = !tok->write && !tok->write_zones.empty();
    r.zones = tok->write_zones;
  }
  if (!ok) {
    const char* needs = r.need == ApiNeed::kRead ? "read" : r.need == ApiNeed::kWrite ? "write (or write:ZONE)" : "admin";
    fail(403, "token '" + tok->name + "' (scope: " + scope_text(*tok) + ") may not " + name +
                  (act.empty() ? "" : " " + act) + ": it needs " + needs);
  }
  return r;
}

std::optional<ApiAnswer> ApiRouter::begin(const ApiRoute& r, const ApiCall& call, uint64_t now_ms) {
  if (call.idempotency_key.empty() || call.method != "POST") return std::nullopt;
  const std::string& key = call.idempotency_key;
  if (key.size() > 255 || std::any_of(key.begin(), key.end(), [](char c) { return c < 0x21 || c > 0x7e; }))
    return error(400, "Idempotency-Key must be 1-255 visible ASCII characters");
  std::string id = r.token + '\n' + key, fp = call.path + '\n' + call.body;
  std::lock_guard lock(mu_);
  auto it = kept_.find(id);
  if (it != kept_.end() && now_ms - it->second.at_ms > kIdempotencyMs) {
    kept_.erase(it);
    it = kept_.end();
  }
  if (it != kept_.end()) {
    if (it->second.fingerprint != fp)
      return error(409, "Idempotency-Key '" + key + "' was used for a different request (another path or body)");
    if (!it->second.done) return error(409, "a request with Idempotency-Key '" + key + "' is still running; retry");
    ApiAnswer a = it->second.answer;
    a.replayed = true;
    return a;
  }
  if (kept_.size() >= kIdempotencyKeys) {
    std::erase_if(kept_, [&](const auto& k) { return now_ms - k.second.at_ms > kIdempotencyMs; });
    if (kept_.size() >= kIdempotencyKeys) {
      auto oldest = std::min_element(kept_.begin(), kept_.end(),
                                     [](const auto& a, const auto& b) { return a.second.at_ms < b.second.at_ms; });
      kept_.erase(oldest);
    }
  }
  kept_[id] = Kept{fp, now_ms, false, {}};
  return std::nullopt;
}

void ApiRouter::finish(const ApiRoute& r, const ApiCall& call, const ApiAnswer& answer) {
  if (call.idempotency_key.empty() || call.method != "POST") return;
  std::lock_guard lock(mu_);
  auto it = kept_.find(r.token + '\n' + call.idempotency_key);
  if (it == kept_.end()) return;
  if (answer.status >= 500) {  // not applied: a retry runs again
    kept_.erase(it);
    return;
  }
  it->second.done = true;
  it->second.answer = answer;
}

}  // namespace vane::server
