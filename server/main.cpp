// vaned: command line, start-up, signals (SIGHUP reload, SIGTERM/SIGINT stop).
#include <malloc.h>
#include <sys/resource.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "admin_socket.h"
#include "agent.h"
#include "api.h"
#include "control.h"
#include "demo.h"
#include "http_server.h"
#include "log.h"
#include "server.h"
#include "status_page.h"

using namespace vane;

namespace {

struct Options {
  std::string config;
  std::string check;
  bool demo = false;
  unsigned threads = 0;
};

// `preload` reads the zones while the config is parsed.
Result<Config> pick_config(const Options& o, server::ZonePreload& preload) {
  if (o.demo) return server::demo_config();
  auto hook = preload.hook();
  if (!o.config.empty()) return load_config(o.config, &hook);
  if (std::filesystem::exists("vane.yaml")) return load_config("vane.yaml", &hook);
  return server::demo_config();
}

int check_config(const std::string& path) {
  server::ZonePreload preload;
  auto hook = preload.hook();
  auto cfg = load_config(path, &hook);
  if (!cfg) {
    fprintf(stderr, "%s\n", cfg.error().to_string().c_str());
    return 1;
  }
  zones::StateTable states;
  auto zs = server::build_zone_set(*cfg, states, true, false, nullptr, nullptr, nullptr, &preload);
  if (!zs) {
    fprintf(stderr, "%s\n", zs.error().to_string().c_str());
    return 1;
  }
  size_t records = 0;
  for (const auto& z : (*zs)->zones()) records += z->record_count();
  printf("%s: OK (%zu zones, %zu records)\n", path.c_str(), cfg->zones.size(), records);
  return 0;
}

// "/api/status?filter=NAME" -> NAME (HttpServer passes the one parameter on).
std::string page_filter(const std::string& path) {
  constexpr std::string_view kAsk = "/api/status?filter=";
  return path.starts_with(kAsk) ? path.substr(kAsk.size()) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  // Large blocks (zones, their builders) get pages of their own: freed, they
  // leave at once, and a new zone never lands on pages an old one dirtied
  // (glibc would otherwise raise this threshold as blocks are freed).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Fixing it also fixes the trim threshold at its 128 KiB default: a zone
  // load's chunk buffers, freed at the top of the heap, would then move the
  // break up and down for every record. Loads end with a malloc_trim.
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  CLI::App app{"vaned — authoritative DNS with weighted, latency and failover steering"};
  Options o;
  app.add_option("-c,--config", o.config, "config file (default: ./vane.yaml, else the embedded demo)");
  app.add_option("--check-config", o.check, "validate a config and its zones, then exit");
  app.add_flag("--demo", o.demo, "serve the embedded demo config, whatever is on disk");
  app.add_option("--threads", o.threads, "override threads: from the config");
  std::string agent_config;
  auto* agent = app.add_subcommand("agent", "run as a remote health-check vantage reporting to a main vaned");
  agent->add_option("-c,--config", agent_config, "agent config (vantage, report_to, token_file, config)")->required();
  CLI11_PARSE(app, argc, argv);

  if (agent->parsed()) {
    auto a = load_agent_config(agent_config);
    if (!a) {
      VANE_ERROR("%s", a.error().to_string().c_str());
      return 1;
    }
    return healthcheck::run_agent(*a);
  }

  if (!o.check.empty()) return check_config(o.check);

  auto preload = std::make_unique<server::ZonePreload>();
  auto cfg = pick_config(o, *preload);
  if (!cfg) {
    VANE_ERROR("%s", cfg.error().to_string().c_str());
    return 1;
  }
  if (o.threads) cfg->threads = o.threads;
  bool demo = cfg->path == "<demo>";
  std::string path = cfg->path;
  server::Server::ConfigSource source;
  if (!demo)
    source = [path] { return load_config(path); };
  else
    source = [] { return server::demo_config(); };

  signal(SIGPIPE, SIG_IGN);
  server::block_udp_wakes();  // before any thread starts: they inherit the mask
  // Thousands of TCP clients need thousands of descriptors: take what the
  // hard limit allows (as Knot and NSD do), and say when it is short.
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < cfg->tcp.max_connections + 256)
    VANE_WARN("open file limit %llu is below tcp.max_connections (%u) + 256: raise LimitNOFILE",
              static_cast<unsigned long long>(rl.rlim_cur), cfg->tcp.max_connections);
  uv_loop_t* loop = uv_default_loop();
  std::unique_ptr<server::DemoEndpoints> demo_endpoints;
  if (cfg->path == "<demo>") {
    demo_endpoints = std::make_unique<server::DemoEndpoints>();
    if (auto err = demo_endpoints->start()) {
      VANE_ERROR("cannot start: %s", err->to_string().c_str());
      return 1;
    }
  }
  auto store = admin::StateStore::open(cfg->state_dir);
  if (!store) {
    VANE_ERROR("cannot start: %s", store.error().to_string().c_str());
    return 1;
  }
  server::Server srv(cfg.take(), source);
  // Without cluster: the node's RocksDB is the state; with it, etcd is, and
  // RocksDB is this node's cache of what it applied (served when etcd is away).
  std::unique_ptr<admin::StateWriter> local_writer;
  std::unique_ptr<admin::ClusterStore> cluster;
  server::Control* control_ptr = nullptr;
  if (srv.config().cluster.enabled()) {
    cluster = std::make_unique<admin::ClusterStore>(
        srv.config().cluster, **store, loop,
        [&control_ptr](const std::vector<admin::ClusterEvent>& events, bool full) {
          if (control_ptr) control_ptr->on_cluster(events, full);
        });
    if ((*store)->cluster_revision() > 0)
      VANE_INFO("cluster: serving the cached state of revision %llu until etcd answers",
                static_cast<unsigned long long>((*store)->cluster_revision()));
  } else {
    local_writer = std::make_unique<admin::LocalWriter>(**store);
  }
  server::Control control(srv, **store, cluster ? static_cast<admin::StateWriter&>(*cluster) : *local_writer,
                          cluster.get());
  control_ptr = &control;
  // Stored weights and overrides are in place before the first answer.
  if (auto err = control.overlay()) {
    VANE_ERROR("cannot start: %s", err->to_string().c_str());
    return 1;
  }
  if (auto err = srv.start(loop, preload.get())) {
    VANE_ERROR("cannot start: %s", err->to_string().c_str());
    return 1;
  }
  preload.reset();
  control.start(loop);
  healthcheck::Checker checker([&control](const healthcheck::Verdict& v) { control.post_verdict(v); },
                               [&control](const std::string& key, double ms) { control.post_rtt(key, ms); },
                               [&control](const std::string& key, bool w) { control.post_waver(key, w); });
  checker.set_targets(control.health_targets(srv.config()));
  checker.start();
  std::unique_ptr<server::Api> api;  // api.listen, started below
  srv.set_on_reloaded([&] {
    checker.set_targets(control.health_targets(srv.config()));
    control.review_transfers();
    if (cluster) cluster->set_digest(serving_digest(srv.config()));
    if (api) api->set_tokens(srv.config().api.tokens);
  });
  if (cluster) cluster->start(serving_digest(srv.config()));
  // Work the HTTP thread asks of the main loop (metrics, the status page's JSON).
  std::mutex calls_mu;
  std::vector<std::function<void()>> calls;
  uv_async_t calls_async;
  uv_async_init(loop, &calls_async, [](uv_async_t* a) {
    auto* q = static_cast<std::pair<std::mutex*, std::vector<std::function<void()>>*>*>(a->data);
    std::vector<std::function<void()>> run;
    {
      std::lock_guard lock(*q->first);
      run.swap(*q->second);
    }
    for (auto& f : run) f();
  });
  std::pair<std::mutex*, std::vector<std::function<void()>>*> calls_ref{&calls_mu, &calls};
  calls_async.data = &calls_ref;
  uv_unref(reinterpret_cast<uv_handle_t*>(&calls_async));
  auto on_main = [&](std::function<std::string()> f) -> std::optional<std::string> {
    auto p = std::make_shared<std::promise<std::string>>();
    auto fut = p->get_future();
    {
      std::lock_guard lock(calls_mu);
      calls.push_back([p, f = std::move(f)] { p->set_value(f()); });
    }
    uv_async_send(&calls_async);
    if (fut.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return std::nullopt;
    return fut.get();
  };
  // Agents report to http.listen (with the bearer token from http.token_file).
  std::unique_ptr<admin::HttpServer> http;
  if (!srv.config().http_listen.empty()) {
    std::string token;
    if (!srv.config().http_token_file.empty()) {
      auto t = read_token_file(srv.config().http_token_file);
      if (!t) {
        VANE_ERROR("cannot start: %s", t.error().to_string().c_str());
        return 1;
      }
      token = *t;
    } else {
      VANE_WARN("http.token_file is not set: agent reports will be refused (401)");
    }
    http = std::make_unique<admin::HttpServer>(
        token, srv.config().vantage,
        [&control](std::vector<healthcheck::Observation> obs) { control.post_observations(std::move(obs)); },
        [&srv](const std::string& key) { return srv.states().find(key) != UINT32_MAX; });
    http->set_pages([&](const std::string& path) -> std::optional<std::pair<std::string, std::string>> {
      if (path == "/") return std::pair<std::string, std::string>{"text/html; charset=utf-8", server::kStatusPage};
      // Everything else is computed on the main loop, where the state lives.
      auto body = on_main([&control, &api, path] {
        return path == "/metrics" ? control.metrics() + (api ? api->metrics() : std::string())
               : path.rfind("/v1/targets", 0) == 0
                   ? control.targets_document(path == "/v1/targets?checks=shared")
                   : control.page_status(page_filter(path)).dump(-1, ' ', false, admin::Json::error_handler_t::replace);
      });
      if (!body) return std::nullopt;
      return std::pair<std::string, std::string>{
          path == "/metrics" ? "text/plain; version=0.0.4; charset=utf-8" : "application/json", std::move(*body)};
    });
    http->set_targets_version([&control] { return control.targets_version(); });
    if (auto err = http->start(srv.config().http_listen)) {
      VANE_ERROR("cannot start: %s", err->to_string().c_str());
      return 1;
    }
    VANE_INFO("http on %s:%u (/v1/observations, /v1/targets, /healthz)",
              srv.config().http_listen.substr(0, srv.config().http_listen.rfind(':')).c_str(), unsigned(http->port()));
  }
  // The HTTP API (api.listen): each admitted request runs here on the main
  // loop, as the admin socket's do, as its token.
  if (srv.config().api.enabled()) {
    api = std::make_unique<server::Api>(srv.config().api, [&](const server::ApiRoute& route,
                                                               std::function<void(server::ApiAnswer)> done) {
      std::lock_guard lock(calls_mu);
      calls.push_back([&control, route, done] {
        if (route.zone_limited) {
          auto zone = control.zone_of(route.request);
          if (zone && std::find(route.zones.begin(), route.zones.end(), *zone) == route.zones.end()) {
            std::string grants;
            for (const auto& z : route.zones) grants += (grants.empty() ? "" : ", ") + z;
            return done(server::ApiRouter::error(403, "token '" + route.token + "' may write in " + grants +
                                                          " only; this changes zone " + *zone));
          }
        }
        admin::Peer peer;
        peer.token = route.token;
        control.handle(route.request, peer, [done](admin::Json reply) {
          int status = server::ApiRouter::status_of(reply);
          done(server::ApiAnswer{status, std::move(reply), 0, "", false});
        });
      });
      uv_async_send(&calls_async);
    });
    if (auto err = api->start()) {
      VANE_ERROR("cannot start: %s", err->to_string().c_str());
      return 1;
    }
    const auto& a = srv.config().api;
    VANE_INFO("api on %s:%u (%s, %zu tokens%s)", a.listen.substr(0, a.listen.rfind(':')).c_str(), unsigned(api->port()),
              a.tls() ? "https" : "http", a.tokens.size(), a.client_ca.empty() ? "" : ", client certificates required");
  }
  admin::AdminSocket admin_socket(loop,
                                  [&control](const admin::Json& req, const admin::Peer& peer, admin::Reply reply) {
                                    control.handle(req, peer, std::move(reply));
                                  });
  if (auto err = admin_socket.listen(srv.config().admin_socket)) {
    VANE_ERROR("cannot start: admin socket %s", err->to_string().c_str());
    control.stop();
    srv.stop();
    return 1;
  }
  VANE_INFO("admin socket %s (mode 0660)", srv.config().admin_socket.c_str());
  struct Daemon {
    server::Server* srv;
    admin::AdminSocket* admin;
    server::Control* control;
    healthcheck::Checker* checker;
    admin::HttpServer* http;
    server::Api* api;
    admin::ClusterStore* cluster;
  } daemon{&srv, &admin_socket, &control, &checker, http.get(), api.get(), cluster.get()};
  // Signals are wired before "ready" is logged: a SIGHUP right after it must reload.
  uv_signal_t hup, term, intr;
  uv_signal_init(loop, &hup);
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &intr);
  hup.data = term.data = intr.data = &daemon;
  uv_signal_start(
      &hup,
      [](uv_signal_t* s, int) {
        VANE_INFO("SIGHUP: reloading");
        static_cast<Daemon*>(s->data)->srv->reload_async();
      },
      SIGHUP);
  auto on_stop = [](uv_signal_t* s, int signum) {
    VANE_INFO("signal %d: shutting down", signum);
    auto* d = static_cast<Daemon*>(s->data);
    d->admin->close();
    // Both HTTP servers at once: each waits for its connections' threads
    // (an idle kept-alive one for 1 s, a request still arriving up to its
    // read timeout).
    std::thread http_stop;
    if (d->http) http_stop = std::thread([h = d->http] { h->stop(); });
    if (d->api) d->api->stop();
    if (http_stop.joinable()) http_stop.join();
    d->checker->stop();
    if (d->cluster) d->cluster->stop();
    d->control->stop();
    d->srv->stop();
    uv_walk(
        s->loop,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
  };
  uv_signal_start(&term, on_stop, SIGTERM);
  uv_signal_start(&intr, on_stop, SIGINT);
  const auto& first = srv.config().listen.front();
  // Parsing a big config and reading its zones on several threads leave
  // freed heap behind the long-lived data: give it back to the system.
  malloc_trim(0);
  VANE_INFO("ready: %u workers, config %s", srv.config().threads, srv.config().path.c_str());
  if (demo) {
    std::string a = server::format_addr(first.addr);
    std::string host = a.substr(0, a.rfind(':')), port = a.substr(a.rfind(':') + 1);
    if (host.front() == '[') host = host.substr(1, host.size() - 2);
    fprintf(stderr,
            "\n  vane demo is serving example.com on %s (udp+tcp)\n"
            "  try:  kdig @%s -p %s www.example.com A\n"
            "        dig @%s -p %s example.com ANY +tcp\n"
            "        ./build/admin/vanectl status\n"
            "  break us-east-1:  curl 127.0.0.1:5380/fail   (then kdig app.example.com; /recover mends it)\n"
            "  evacuate it:      ./build/admin/vanectl drain --region us-east-1 --for 10m   (undrain --region ends it)\n"
            "  reload: ./build/admin/vanectl reload (or kill -HUP %d)   stop: Ctrl-C\n\n",
            a.c_str(), host.c_str(), port.c_str(), host.c_str(), port.c_str(), getpid());
  }

  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  VANE_INFO("stopped");
  return 0;
}
