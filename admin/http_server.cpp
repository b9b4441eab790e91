#include "http_server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace vane::admin {

namespace {

bool good_vantage(const std::string& v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

// Constant-time comparison: the token check does not leak a prefix.
bool same(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace

std::optional<std::string> HttpServer::parse_report(const std::string& body, const std::string& local_vantage,
                                                    std::vector<healthcheck::Observation>& out) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "body must be a JSON object";
  for (const auto& [k, v] : j.items())
    if (k != "vantage" && k != "observations" && k != "boot" && k != "seq") return "unknown field '" + k + "'";
  // The report's place among its agent's (healthcheck::ReportOrder): optional, both or neither.
  healthcheck::ReportOrder order;
  if (j.contains("boot") != j.contains("seq")) return "\"boot\" and \"seq\" go together";
  if (j.contains("boot")) {
    auto number = [&](const char* k) -> std::optional<uint32_t> {
      const auto& v = j[k];
      if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > UINT32_MAX) return std::nullopt;
      return static_cast<uint32_t>(v.get<uint64_t>());
    };
    auto boot = number("boot"), seq = number("seq");
    if (!boot || !seq) return "\"boot\" and \"seq\" must be numbers from 1 to 4294967295";
    order = {*boot, *seq};
  }
  if (!j.contains("vantage") || !j["vantage"].is_string() || !good_vantage(j["vantage"].get<std::string>()))
    return "\"vantage\" must be a name of 1-64 letters, digits, '-', '_' or '.'";
  std::string vantage = j["vantage"].get<std::string>();
  if (vantage == local_vantage) return "vantage '" + vantage + "' is this server's own name";
  if (!j.contains("observations") || !j["observations"].is_array()) return "\"observations\" must be a list";
  if (j["observations"].size() > 100000) return "too many observations in one report (max 100000)";
  for (const auto& o : j["observations"]) {
    if (!o.is_object()) return "an observation must be an object";
    healthcheck::Observation ob;
    ob.vantage = vantage;
    ob.order = order;
    for (const auto& [k, v] : o.items()) {
      if (k == "endpoint" && v.is_string() && v.get<std::string>().size() <= 512)
        ob.key = v.get<std::string>();
      else if (k == "up" && v.is_boolean())
        ob.up = v.get<bool>();
      else if (k == "rtt_ms" && v.is_number() && v.get<double>() >= 0 && v.get<double>() < 3.6e6)
        ob.rtt_ms = v.get<double>();
      else if (k == "detail" && v.is_string())
        ob.detail = v.get<std::string>().substr(0, 200);
      else
        return "bad observation field '" + k + "'";
    }
    if (ob.key.empty() || !o.contains("up")) return "an observation needs \"endpoint\" and \"up\"";
    out.push_back(std::move(ob));
  }
  return std::nullopt;
}

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::string token, local_vantage;
  OnObservations on_obs;
  std::function<bool(const std::string&)> known;
  Page pages;
  std::function<std::string()> targets_version;
};

void HttpServer::set_pages(Page pages) {
  impl_->pages = std::move(pages);
}

void HttpServer::set_targets_version(std::function<std::string()> version) {
  impl_->targets_version = std::move(version);
}

HttpServer::HttpServer(std::string token, std::string local_vantage, OnObservations on_obs,
                       std::function<bool(const std::string&)> known)
    : impl_(std::make_unique<Impl>()) {
  impl_->token = std::move(token);
  impl_->local_vantage = std::move(local_vantage);
  impl_->on_obs = std::move(on_obs);
  impl_->known = std::move(known);
}

HttpServer::~HttpServer() {
  stop();
}

std::optional<Error> HttpServer::start(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Error{listen, 0, "http.listen must be HOST:PORT"};
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = std::atoi(listen.c_str() + colon + 1);
  Impl* im = impl_.get();
  im->server.set_payload_max_length(kMaxReportBytes);
  // A stop waits for each connection's thread: an idle kept-alive one
  // (Prometheus keeps its scrape's) for at most 1 s (httplib's default: 5),
  // a request still arriving for at most 2 s of silence.
  im->server.set_read_timeout(2, 0);
  im->server.set_keep_alive_timeout(1);
  im->server.Get("/healthz",
                 [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  for (const char* path : {"/", "/metrics", "/api/status"})
    im->server.Get(path, [im, path](const httplib::Request& req, httplib::Response& res) {
      // /api/status?filter=ZONE|RECORD: the one parameter a page takes.
      std::string asked = path;
      if (asked == "/api/status" && req.has_param("filter")) asked += "?filter=" + req.get_param_value("filter");
      auto page = im->pages ? im->pages(asked) : std::nullopt;
      if (!page) {
        res.status = 503;
        res.set_content("vaned did not answer in time\n", "text/plain");
        return;
      }
      res.set_header("Cache-Control", "no-store");
      res.set_content(page->second, page->first);
    });
  // Agents fetch what to probe (the same token as their reports).
  im->server.Get("/v1/targets", [im](const httplib::Request& req, httplib::Response& res) {
    const std::string auth = req.get_header_value("Authorization");
    if (im->token.empty() || auth.rfind("Bearer ", 0) != 0 || !same(auth.substr(7), im->token)) {
      res.status = 401;
      res.set_content(R"({"ok":false,"error":"missing or wrong bearer token"})" "\n", "application/json");
      return;
    }
    std::string have = req.get_header_value("If-None-Match");
    if (im->targets_version && !have.empty()) {
      std::string etag = '"' + im->targets_version();  // (GCC 12 -Wrestrict misfires on "\"" + string)
      etag += '"';
      if (have == etag) {
        res.status = 304;
        res.set_header("ETag", etag);
        return;
      }
    }
    bool shared = req.get_param_value("checks") == "shared";
    auto page = im->pages ? im->pages(shared ? "/v1/targets?checks=shared" : "/v1/targets") : std::nullopt;
    if (!page) {
      res.status = 503;
      res.set_content(R"({"ok":false,"error":"vaned did not answer in time"})" "\n", "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(page->second, page->first);
  });
  im->server.Post("/v1/observations", [im](const httplib::Request& req, httplib::Response& res) {
    auto reply = [&](int status, const nlohmann::json& j) {
      res.status = status;
      res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
    };
    const std::string auth = req.get_header_value("Authorization");
    if (im->token.empty() || auth.rfind("Bearer ", 0) != 0 || !same(auth.substr(7), im->token))
      return reply(401, {{"ok", false}, {"error", "missing or wrong bearer token"}});
    std::vector<healthcheck::Observation> obs;
    if (auto err = parse_report(req.body, im->local_vantage, obs)) return reply(400, {{"ok", false}, {"error", *err}});
    size_t unknown = 0;
    std::erase_if(obs, [&](const auto& o) {
      bool k = im->known(o.key);
      unknown += !k;
      return !k;
    });
    size_t accepted = obs.size();
    im->on_obs(std::move(obs));
    reply(200, {{"ok", true}, {"accepted", accepted}, {"unknown", unknown}});
  });
  if (port == 0)
    port = im->server.bind_to_any_port(host);
  else if (!im->server.bind_to_port(host, port))
    port = -1;
  if (port <= 0) return Error{listen, 0, "cannot listen on http.listen " + listen};
  port_ = static_cast<uint16_t>(port);
  im->thread = std::thread([im] { im->server.listen_after_bind(); });
  return std::nullopt;
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace vane::admin
