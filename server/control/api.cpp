#include "api.h"

#include <httplib.h>

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <future>

#include "log.h"
#include "state_store.h"

namespace vane::server {

namespace {

// The API's threads: 16 (a kept-alive connection holds one until it idles
// out, 5 s), named vane-api, at nice 10 — a busy API takes what CPU the DNS
// threads leave, never theirs.
class BackSeat : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override {
    pool_.enqueue([fn = std::move(fn)] {
      thread_local bool set = [] {
        pthread_setname_np(pthread_self(), "vane-api");
        setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
        return true;
      }();
      (void)set;
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_{16};
};

}  // namespace

struct Api::Impl {
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
};

Api::Api(const ApiSpec& spec, Dispatch dispatch)
    : impl_(std::make_unique<Impl>()), spec_(spec), router_(spec), dispatch_(std::move(dispatch)) {}

Api::~Api() {
  stop();
}

void Api::count(int status) {
  for (size_t i = 0; i < kCodes.size(); ++i)
    if (kCodes[i] == status) {
      counts_[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
}

std::string Api::metrics() const {
  std::string out =
      "# HELP vane_api_requests_total HTTP API requests answered, by status code.\n"
      "# TYPE vane_api_requests_total counter\n";
  for (size_t i = 0; i < kCodes.size(); ++i)
    out += "vane_api_requests_total{code=\"" + std::to_string(kCodes[i]) + "\"} " +
           std::to_string(counts_[i].load(std::memory_order_relaxed)) + "\n";
  return out;
}

std::optional<Error> Api::start() {
  size_t colon = spec_.listen.rfind(':');
  std::string host = spec_.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = std::atoi(spec_.listen.c_str() + colon + 1);
  if (spec_.tls()) {
    auto ssl = std::make_unique<httplib::SSLServer>(spec_.cert.c_str(), spec_.key.c_str(),
                                                    spec_.client_ca.empty() ? nullptr : spec_.client_ca.c_str());
    if (!ssl->is_valid())
      return Error{spec_.cert, 0, "api.tls: cannot load the certificate, key or client CA (PEM files that belong together)"};
    impl_->server = std::move(ssl);
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  httplib::Server& s = *impl_->server;
  s.set_payload_max_length(spec_.max_body);
  // A stop waits for each connection's thread: an idle kept-alive one for
  // at most 1 s (httplib's default: 5), a request still arriving for at
  // most 3 s of silence (each read; a slow client that keeps sending is fine).
  s.set_read_timeout(3, 0);
  s.set_write_timeout(10, 0);
  s.set_keep_alive_max_count(1000);
  s.set_keep_alive_timeout(1);
  // Headers and body leave in separate writes: without TCP_NODELAY the body
  // waits for the client's delayed ACK (40 ms per request).
  s.set_tcp_nodelay(true);
  s.new_task_queue = [] { return new BackSeat(); };
  auto send = [this](httplib::Response& res, const ApiAnswer& a) {
    count(a.status);
    res.status = a.status;
    if (a.retry_after_s) res.set_header("Retry-After", std::to_string(a.retry_after_s));
    if (!a.allow.empty()) res.set_header("Allow", a.allow);
    if (a.status == 401) res.set_header("WWW-Authenticate", "Bearer realm=\"vane\"");
    if (a.replayed) res.set_header("Idempotent-Replayed", "true");
    res.set_header("Cache-Control", "no-store");
    res.set_content(a.body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n", "application/json");
  };
  auto handle = [this, send](const httplib::Request& req, httplib::Response& res) {
    ApiCall call{req.method, req.path, {}, req.get_header_value("Authorization"),
                 req.get_header_value("Idempotency-Key"), req.body};
    for (const auto& [k, v] : req.params) call.query.emplace_back(k, v);
    uint64_t now = admin::now_ms();
    ApiRoute route = router_.route(call, now);
    if (route.done) return send(res, *route.done);
    if (auto first = router_.begin(route, call, now)) return send(res, *first);
    auto p = std::make_shared<std::promise<ApiAnswer>>();
    auto fut = p->get_future();
    dispatch_(route, [p](ApiAnswer a) { p->set_value(std::move(a)); });
    // In slices: stop() runs on the main loop, which then answers nothing.
    bool ready = false;
    for (int waited = 0; !ready && !stopping_.load() && waited < kWaitSeconds * 10; ++waited)
      ready = fut.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready;
    ApiAnswer a = ready ? fut.get()
                  : stopping_.load()
                      ? ApiRouter::error(503, "vaned is stopping; the change may still be applied (see GET /v1/history)")
                      : ApiRouter::error(504, "vaned did not answer in time; the change may still be applied "
                                              "(see GET /v1/history)");
    router_.finish(route, call, a);
    send(res, a);
  };
  s.Get(R"(/.*)", handle);
  s.Post(R"(/.*)", handle);
  s.Put(R"(/.*)", handle);
  s.Delete(R"(/.*)", handle);
  s.Patch(R"(/.*)", handle);
  // What httplib answers itself (a body over the limit, a bad request line)
  // gets a JSON error too.
  s.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string why = res.status == 413   ? "request body is over api.max_body (" + std::to_string(spec_.max_body) + " bytes)"
                      : res.status == 404 ? "no such path; see GET /v1/openapi.json"
                                          : "bad request (" + std::to_string(res.status) + ")";
    count(res.status);
    res.set_content(admin::error_reply(why).dump() + "\n", "application/json");
  });
  if (port == 0)
    port = s.bind_to_any_port(host);
  else if (!s.bind_to_port(host, port))
    port = -1;
  if (port <= 0) return Error{spec_.listen, 0, "cannot listen on api.listen " + spec_.listen};
  port_ = static_cast<uint16_t>(port);
  impl_->thread = std::thread([this] { impl_->server->listen_after_bind(); });
  return std::nullopt;
}

void Api::stop() {
  stopping_ = true;
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server->stop();
  impl_->thread.join();
}

}  // namespace vane::server
