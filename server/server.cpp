// Daemon lifecycle and reload. Nothing here runs per query.
#include "server.h"

#include <chrono>

#include "log.h"

namespace vane::server {

Result<std::shared_ptr<zones::ZoneSet>> build_zone_set(const Config& cfg, bool quiet) {
  std::vector<std::unique_ptr<zones::Zone>> loaded;
  for (const auto& src : cfg.zones) {
    auto t0 = std::chrono::steady_clock::now();
    auto z = zones::load_zone(src);
    if (!z) return z.error();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!quiet)
      VANE_INFO("zone %s loaded from %s: %zu records, %zu names, serial %u, %.1f ms, %.1f MiB",
                (*z)->origin_text().c_str(), src.file.c_str(), (*z)->record_count(), (*z)->node_count(), (*z)->serial(),
                ms, double((*z)->memory_bytes()) / (1 << 20));
    (*z)->set_file(src.file);
    loaded.push_back(z.take());
  }
  return std::make_shared<zones::ZoneSet>(std::move(loaded));
}

Server::Server(Config cfg, ConfigSource reload_source)
    : cfg_(std::move(cfg)),
      reload_source_(std::move(reload_source)),
      config_path_(cfg_.path),
      threads_(cfg_.threads),
      started_(std::chrono::steady_clock::now()) {
  for (const auto& l : cfg_.listen) listen_.push_back(l.text);
}

Server::~Server() {
  stop();
}

std::optional<Error> Server::start(uv_loop_t* main_loop) {
  loop_ = main_loop;
  auto zs = build_zone_set(cfg_);
  if (!zs) return zs.error();
  (*zs)->generation = ++generation_;
  publisher_.publish(zs.take());
  auto socks = open_sockets(cfg_.listen, cfg_.threads);
  if (!socks) return socks.error();
  admission_ = std::make_unique<TcpAdmission>(cfg_.tcp);
  AnswerOptions aopts;
  aopts.edns_udp_size = cfg_.edns_udp_size;
  for (unsigned i = 0; i < cfg_.threads; ++i)
    workers_.push_back(std::make_unique<Worker>(i, std::move((*socks)[i]), publisher_, *admission_, aopts, cfg_.tcp));
  for (auto& w : workers_) w->start();
  listen_.clear();
  for (const auto& la : cfg_.listen) {
    listen_.push_back(format_addr(la.addr));
    VANE_INFO("listening on %s (udp+tcp)", listen_.back().c_str());
  }
  uv_timer_init(loop_, &retire_timer_);
  retire_timer_live_ = true;
  retire_timer_.data = this;
  uv_timer_start(
      &retire_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->collect_retired(); }, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(&retire_timer_));
  return std::nullopt;
}

void Server::publish(std::shared_ptr<zones::ZoneSet> z) {
  auto old = publisher_.current();
  publisher_.publish(std::move(z));
  for (auto& w : workers_) w->refresh();
  // Workers drop the old snapshot as they wake; the last reference is
  // released here on the main loop so no worker pays for freeing it.
  std::lock_guard lock(retired_mu_);
  if (old) retired_.push_back(std::move(old));
}

void Server::collect_retired() {
  std::lock_guard lock(retired_mu_);
  std::erase_if(retired_, [](const auto& z) { return z.use_count() == 1; });
}

ReloadOutcome Server::reload() {
  std::lock_guard lock(reload_mu_);
  auto t0 = std::chrono::steady_clock::now();
  Config next = cfg_;
  if (reload_source_) {
    auto c = reload_source_();
    if (!c) {
      VANE_ERROR("reload refused, still serving the previous config: %s", c.error().to_string().c_str());
      return {false, c.error().to_string()};
    }
    next = c.take();
  }
  auto zs = build_zone_set(next);
  if (!zs) {
    VANE_ERROR("reload refused, still serving the previous zones: %s", zs.error().to_string().c_str());
    return {false, zs.error().to_string()};
  }
  // Sockets, threads and TCP limits are fixed at start: say so instead of pretending.
  std::vector<std::string> old_listen, new_listen;
  for (auto& l : cfg_.listen) old_listen.push_back(l.text);
  for (auto& l : next.listen) new_listen.push_back(l.text);
  if (old_listen != new_listen || next.threads != cfg_.threads)
    VANE_WARN("reload: listen/threads changes take effect only after a restart");
  size_t records = 0;
  for (const auto& z : (*zs)->zones()) records += z->record_count();
  (*zs)->generation = ++generation_;
  publish(zs.take());
  next.listen = cfg_.listen;
  next.threads = cfg_.threads;
  next.tcp = cfg_.tcp;
  cfg_ = std::move(next);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  char msg[160];
  snprintf(msg, sizeof msg, "reloaded %zu zones, %zu records in %.1f ms (generation %llu)", cfg_.zones.size(), records,
           ms, static_cast<unsigned long long>(generation_));
  VANE_INFO("%s", msg);
  return {true, msg};
}

void Server::reload_async(ReloadDone done) {
  // Callers that arrive while a reload runs wait for the next one, so each
  // sees a reload that started after it asked.
  if (done) waiting_.push_back(std::move(done));
  if (reload_running_) {
    reload_again_ = true;
    return;
  }
  reload_running_ = true;
  running_.swap(waiting_);
  reload_work_.data = this;
  uv_queue_work(
      loop_, &reload_work_,
      [](uv_work_t* w) {
        auto* s = static_cast<Server*>(w->data);
        s->last_outcome_ = s->reload();
      },
      [](uv_work_t* w, int) {
        auto* s = static_cast<Server*>(w->data);
        s->reload_running_ = false;
        auto done = std::move(s->running_);
        s->running_.clear();
        for (auto& d : done) d(s->last_outcome_);
        if (s->reload_again_) {
          s->reload_again_ = false;
          s->reload_async();
        }
      });
}

void Server::stop() {
  for (auto& w : workers_) w->stop();
  workers_.clear();  // joins
  if (retire_timer_live_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&retire_timer_)))
    uv_close(reinterpret_cast<uv_handle_t*>(&retire_timer_), nullptr);
  retire_timer_live_ = false;
}

}  // namespace vane::server
