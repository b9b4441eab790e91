#include "checker.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "dns/name.h"
#include "dns/wire.h"

namespace vane::healthcheck {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct Probe;

// One probe attempt. Owns its libuv handles; deletes itself once they are
// closed. Reports at most once, and only while its probe is there: a probe
// that goes (a reload) sets `probe` to null.
struct Attempt {
  Checker::Impl* impl = nullptr;
  Probe* probe = nullptr;
  std::shared_ptr<const CheckSpec> check;  // the probe's, for the answer's callbacks
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  bool done = false;
  int open_handles = 0;
  uv_timer_t timeout{};
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_udp_t udp{};
  uv_udp_send_t send{};
  std::vector<uint8_t> query;
  uint16_t query_id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  curl_slist* resolve = nullptr;
  std::string body;

  void finish(bool ok, std::string detail);
  void close_handles();
  void close_one(uv_handle_t* h) {
    if (uv_is_closing(h)) return;
    uv_close(h, [](uv_handle_t* hh) {
      auto* a = static_cast<Attempt*>(hh->data);
      if (--a->open_handles == 0) delete a;
    });
  }
};

// One endpoint's probing: tens of thousands of these, so no handle of its
// own — the checker's one timer runs each when due — and no key string: its
// key is at key_at in the checker's `keys`, every probe's one after another.
// 96 bytes of heap each.
struct Probe {
  std::shared_ptr<const CheckSpec> check;
  Attempt* in_flight = nullptr;
  uint32_t key_at = 0, key_len = 0;
  uint32_t ok_run = 0, fail_run = 0;
  float rtts[5] = {};  // the last 5 successful probes' RTTs
  uint16_t port = 0;
  uint8_t family = 0;  // AF_INET or AF_INET6; 0: the target's address is not an IP
  uint8_t addr[16] = {};
  bool up = true;
  bool wavering = false;  // the last probe disagreed with the verdict (short of fall or rise)
  bool gone = false;      // no longer a target: deleted when its turn comes up
  uint8_t rtt_count = 0, rtt_next = 0;

  // AF_INET or AF_INET6, `out` holding the address; 0 when `text` is not an IP.
  static uint8_t parse_ip(const std::string& text, uint8_t (&out)[16]) {
    return inet_pton(AF_INET, text.c_str(), out) == 1    ? AF_INET
           : inet_pton(AF_INET6, text.c_str(), out) == 1 ? AF_INET6
                                                         : 0;
  }
  bool same_address(const Target& t) const {
    uint8_t other[16] = {};
    return parse_ip(t.address, other) == family && t.port == port && std::memcmp(addr, other, sizeof addr) == 0;
  }
  void set_address(const Target& t) {
    port = t.port;
    family = parse_ip(t.address, addr);
  }
  bool sockaddr_of(sockaddr_storage& ss) const {
    ss = {};
    if (family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
      v4->sin_family = AF_INET;
      std::memcpy(&v4->sin_addr, addr, 4);
      v4->sin_port = htons(port);
    } else if (family == AF_INET6) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
      v6->sin6_family = AF_INET6;
      std::memcpy(&v6->sin6_addr, addr, 16);
      v6->sin6_port = htons(port);
    }
    return family != 0;
  }
  std::string address() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (family) inet_ntop(family, addr, text, sizeof text);
    return text;
  }
};

struct CurlSock {
  uv_poll_t poll;
  curl_socket_t fd;
  Checker::Impl* impl;
};

struct Checker::Impl {
  OnVerdict on_verdict;
  OnRtt on_rtt;
  OnWaver on_waver;
  uv_loop_t loop{};
  uv_async_t wake{};
  uv_timer_t curl_timer{};
  CURLM* multi = nullptr;
  std::thread thread;
  std::mutex mu;
  std::vector<Target> pending;
  bool has_pending = false;
  bool stopping = false;
  bool started = false;
  std::vector<std::unique_ptr<Probe>> probes;  // by key
  std::string keys;                            // theirs, in that order
  std::string_view key_of(const Probe& p) const { return std::string_view(keys).substr(p.key_at, p.key_len); }
  // When each probe runs next: one entry per probe, live or gone, earliest
  // first; one timer for the earliest.
  struct Due {
    uint64_t at_ms;
    Probe* p;
    bool operator>(const Due& o) const { return at_ms > o.at_ms; }
  };
  std::vector<Due> due;  // a heap (std::push_heap, std::greater): the earliest in front
  uv_timer_t due_timer{};
  uint64_t armed_at = UINT64_MAX;
  std::set<Attempt*> attempts;
  std::mt19937_64 rng{std::random_device{}()};

  void apply_targets();
  void retire(std::unique_ptr<Probe> p);
  void schedule(Probe* p, bool first);
  void run_due();
  void arm(uint64_t at);
  void run_probe(Probe* p);
  void result(Probe& p, bool ok, const std::string& detail, double rtt);
  void start_tcp(Attempt* a);
  void start_dns(Attempt* a);
  void start_http(Attempt* a);
  void check_multi_info();
  void shutdown();
};

void Checker::Impl::result(Probe& p, bool ok, const std::string& detail, double rtt) {
  bool before = p.up;
  if (ok && on_rtt) {
    p.rtts[p.rtt_next] = static_cast<float>(rtt);
    p.rtt_next = static_cast<uint8_t>((p.rtt_next + 1) % 5);
    p.rtt_count = static_cast<uint8_t>(std::min(p.rtt_count + 1, 5));
    double sorted[5] = {};
    size_t n = p.rtt_count;
    std::copy(p.rtts, p.rtts + n, sorted);
    std::sort(sorted, sorted + n);
    on_rtt(std::string(key_of(p)), sorted[n / 2]);
  }
  if (ok) {
    ++p.ok_run;
    p.fail_run = 0;
    if (!p.up && p.ok_run >= p.check->rise) p.up = true;
  } else {
    ++p.fail_run;
    p.ok_run = 0;
    if (p.up && p.fail_run >= p.check->fall) p.up = false;
  }
  if (p.up != before) on_verdict(Verdict{std::string(key_of(p)), p.up, detail, rtt});
  bool now_wavering = p.up ? p.fail_run > 0 : p.ok_run > 0;
  if (now_wavering != p.wavering && on_waver) on_waver(std::string(key_of(p)), now_wavering);
  p.wavering = now_wavering;
}

void Attempt::finish(bool ok, std::string detail) {
  if (done) return;
  done = true;
  impl->attempts.erase(this);
  if (probe) {
    probe->in_flight = nullptr;
    impl->result(*probe, ok, detail, ms_since(t0));
  }
  close_handles();
}

void Attempt::close_handles() {
  if (easy) {
    curl_multi_remove_handle(impl->multi, easy);
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
    curl_slist_free_all(resolve);
    easy = nullptr;
  }
  if (open_handles == 0) {
    delete this;
    return;
  }
  if (tcp.data) close_one(reinterpret_cast<uv_handle_t*>(&tcp));
  if (udp.data) close_one(reinterpret_cast<uv_handle_t*>(&udp));
  close_one(reinterpret_cast<uv_handle_t*>(&timeout));
}

// ---------------------------------------------------------------------------
// Scheduling

void Checker::Impl::schedule(Probe* p, bool first) {
  uint64_t wait = p->check->interval_ms;
  if (first) wait = rng() % std::max<uint64_t>(1, p->check->interval_ms);  // spread the first round
  if (p->check->jitter_ms) wait += rng() % (p->check->jitter_ms + 1);
  uint64_t at = uv_now(&loop) + wait;
  due.push_back({at, p});
  std::push_heap(due.begin(), due.end(), std::greater<Due>());
  if (at < armed_at) arm(at);
}

// The one timer fires at `at` (loop time).
void Checker::Impl::arm(uint64_t at) {
  armed_at = at;
  uv_timer_start(
      &due_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->run_due(); }, at - uv_now(&loop), 0);
}

void Checker::Impl::run_due() {
  armed_at = UINT64_MAX;
  uint64_t now = uv_now(&loop);
  while (!due.empty() && due.front().at_ms <= now) {
    Probe* p = due.front().p;
    std::pop_heap(due.begin(), due.end(), std::greater<Due>());
    due.pop_back();
    if (p->gone)
      delete p;
    else
      run_probe(p);  // schedules its next turn
  }
  if (!due.empty()) arm(due.front().at_ms);
}

// A probe that is no longer a target: its answer, if one is on the way, is
// not reported; its entry in `due` deletes it.
void Checker::Impl::retire(std::unique_ptr<Probe> p) {
  p->gone = true;
  if (p->in_flight) p->in_flight->probe = nullptr;
  p->in_flight = nullptr;
  p.release();
}

void Checker::Impl::run_probe(Probe* p) {
  schedule(p, false);
  if (p->in_flight) return;  // the last one has not finished: its timeout will
  auto* a = new Attempt;
  a->impl = this;
  a->probe = p;
  a->check = p->check;
  p->in_flight = a;
  attempts.insert(a);
  const std::string& type = p->check->type;
  if (type == "http" || type == "https")
    start_http(a);
  else if (type == "dns")
    start_dns(a);
  else
    start_tcp(a);
}

void Checker::Impl::apply_targets() {
  std::vector<Target> next;
  {
    std::lock_guard lock(mu);
    next.swap(pending);
    has_pending = false;
  }
  std::sort(next.begin(), next.end(), [](const Target& a, const Target& b) { return a.key < b.key; });
  // Both lists by key: a probe whose key stays with the same check, address
  // and port keeps its counters and verdict; one that changed starts over
  // from its verdict; one no longer listed goes.
  std::vector<std::unique_ptr<Probe>> kept;
  kept.reserve(next.size());
  size_t key_bytes = 0;
  for (const Target& t : next) key_bytes += t.key.size();
  std::string next_keys;
  next_keys.reserve(key_bytes);
  auto old = probes.begin();
  for (Target& t : next) {
    for (; old != probes.end() && key_of(**old) < t.key; ++old) retire(std::move(*old));
    bool up = t.initial_up;
    std::unique_ptr<Probe> p;
    if (old != probes.end() && key_of(**old) == t.key) {
      if ((*old)->check->name == t.check->name && (*old)->same_address(t))
        p = std::move(*old++);
      else
        up = (*old)->up, retire(std::move(*old++));
    }
    bool fresh = !p;
    if (fresh) {
      p = std::make_unique<Probe>();
      p->up = up;
      p->set_address(t);
    }
    p->check = std::move(t.check);
    p->key_at = static_cast<uint32_t>(next_keys.size());
    p->key_len = static_cast<uint32_t>(t.key.size());
    next_keys += t.key;
    if (fresh) schedule(p.get(), true);
    kept.push_back(std::move(p));
  }
  for (; old != probes.end(); ++old) retire(std::move(*old));
  probes.swap(kept);
  keys.swap(next_keys);
  due.shrink_to_fit();  // one entry a probe from here on: no room to spare
}

// ---------------------------------------------------------------------------
// TCP connect

void Checker::Impl::start_tcp(Attempt* a) {
  sockaddr_storage ss;
  if (!a->probe->sockaddr_of(ss)) return a->finish(false, "bad address");
  uv_timer_init(&loop, &a->timeout);
  a->timeout.data = a;
  ++a->open_handles;
  uv_tcp_init(&loop, &a->tcp);
  a->tcp.data = a;
  ++a->open_handles;
  a->connect.data = a;
  int rc = uv_tcp_connect(&a->connect, &a->tcp, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* c, int status) {
    auto* at = static_cast<Attempt*>(c->data);
    at->finish(status == 0, status == 0 ? "tcp connect ok" : std::string("tcp connect: ") + uv_strerror(status));
  });
  if (rc < 0) return a->finish(false, std::string("tcp connect: ") + uv_strerror(rc));
  uv_timer_start(
      &a->timeout, [](uv_timer_t* t) { static_cast<Attempt*>(t->data)->finish(false, "tcp connect timed out"); },
      a->probe->check->timeout_ms, 0);
}

// ---------------------------------------------------------------------------
// DNS over UDP

void Checker::Impl::start_dns(Attempt* a) {
  const CheckSpec& ch = *a->probe->check;
  sockaddr_storage ss;
  if (!a->probe->sockaddr_of(ss)) return a->finish(false, "bad address");
  dns::NameBuf qname;
  std::string q = ch.qname.back() == '.' ? ch.qname : ch.qname + ".";
  if (!dns::from_text(q, qname)) return a->finish(false, "bad qname");
  a->query_id = static_cast<uint16_t>(rng());
  a->query.assign(12, 0);
  dns::put16(a->query.data(), a->query_id);
  a->query[5] = 1;  // QDCOUNT
  a->query.insert(a->query.end(), qname.data, qname.data + qname.len);
  uint8_t tail[4];
  dns::put16(tail, ch.qtype);
  dns::put16(tail + 2, 1);
  a->query.insert(a->query.end(), tail, tail + 4);
  uv_timer_init(&loop, &a->timeout);
  a->timeout.data = a;
  ++a->open_handles;
  uv_udp_init(&loop, &a->udp);
  a->udp.data = a;
  ++a->open_handles;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(a->query.data()), static_cast<unsigned>(a->query.size()));
  a->send.data = a;
  if (int rc = uv_udp_send(&a->send, &a->udp, &buf, 1, reinterpret_cast<sockaddr*>(&ss), nullptr); rc < 0)
    return a->finish(false, std::string("dns send: ") + uv_strerror(rc));
  uv_udp_recv_start(
      &a->udp,
      [](uv_handle_t*, size_t, uv_buf_t* b) {
        static thread_local char space[4096];
        *b = uv_buf_init(space, sizeof space);
      },
      [](uv_udp_t* u, ssize_t n, const uv_buf_t* b, const sockaddr*, unsigned) {
        auto* at = static_cast<Attempt*>(u->data);
        if (n < 0) return at->finish(false, std::string("dns recv: ") + uv_strerror(int(n)));
        if (n < 12) return;  // nothing, or junk: keep waiting until the timeout
        auto* p = reinterpret_cast<const uint8_t*>(b->base);
        if (dns::get16(p) != at->query_id || !(p[2] & 0x80)) return;
        uint8_t rcode = p[3] & 0xF;
        uint8_t want = at->check->expect_rcode;
        at->finish(rcode == want,
                   "dns rcode " + std::to_string(rcode) + (rcode == want ? "" : ", want " + std::to_string(want)));
      });
  uv_timer_start(
      &a->timeout, [](uv_timer_t* t) { static_cast<Attempt*>(t->data)->finish(false, "dns timed out"); }, ch.timeout_ms,
      0);
}

// ---------------------------------------------------------------------------
// HTTP(S) through curl's multi interface on our loop

namespace {

size_t on_body(char* data, size_t size, size_t n, void* userp) {
  auto* a = static_cast<Attempt*>(userp);
  size_t len = size * n;
  if (a->body.size() < 65536) a->body.append(data, std::min(len, 65536 - a->body.size()));
  return len;
}

void on_curl_poll(uv_poll_t* p, int status, int events) {
  auto* cs = static_cast<CurlSock*>(p->data);
  int flags = 0;
  if (status < 0) flags |= CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  Checker::Impl* impl = cs->impl;
  curl_multi_socket_action(impl->multi, cs->fd, flags, &running);
  impl->check_multi_info();
}

int on_curl_socket(CURL*, curl_socket_t s, int action, void* userp, void* socketp) {
  auto* impl = static_cast<Checker::Impl*>(userp);
  auto* cs = static_cast<CurlSock*>(socketp);
  if (action == CURL_POLL_REMOVE) {
    if (cs) {
      uv_poll_stop(&cs->poll);
      uv_close(reinterpret_cast<uv_handle_t*>(&cs->poll),
               [](uv_handle_t* h) { delete static_cast<CurlSock*>(h->data); });
      curl_multi_assign(impl->multi, s, nullptr);
    }
    return 0;
  }
  if (!cs) {
    cs = new CurlSock{{}, s, impl};
    uv_poll_init_socket(&impl->loop, &cs->poll, s);
    cs->poll.data = cs;
    curl_multi_assign(impl->multi, s, cs);
  }
  int events = 0;
  if (action & CURL_POLL_IN) events |= UV_READABLE;
  if (action & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&cs->poll, events, on_curl_poll);
  return 0;
}

int on_curl_timer(CURLM*, long timeout_ms, void* userp) {
  auto* impl = static_cast<Checker::Impl*>(userp);
  if (timeout_ms < 0) {
    uv_timer_stop(&impl->curl_timer);
    return 0;
  }
  uv_timer_start(
      &impl->curl_timer,
      [](uv_timer_t* t) {
        auto* im = static_cast<Checker::Impl*>(t->data);
        int running;
        curl_multi_socket_action(im->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        im->check_multi_info();
      },
      static_cast<uint64_t>(timeout_ms), 0);
  return 0;
}

}  // namespace

void Checker::Impl::start_http(Attempt* a) {
  const Probe& t = *a->probe;
  const CheckSpec& ch = *t.check;
  bool v6 = t.family == AF_INET6;
  std::string address = t.address();
  const std::string& host = ch.host;  // the Host header / TLS name; we connect to the address
  std::string scheme = ch.type;
  std::string url;
  if (!t.family) return a->finish(false, "bad address");
  a->easy = curl_easy_init();
  if (!a->easy) return a->finish(false, "curl_easy_init failed");
  if (scheme == "https" && !host.empty() && host != address) {
    // Connect to the endpoint's address, but speak TLS (SNI, verification) to the name.
    a->resolve = curl_slist_append(nullptr, (host + ":" + std::to_string(t.port) + ":" + address).c_str());
    curl_easy_setopt(a->easy, CURLOPT_RESOLVE, a->resolve);
    url = "https://" + host + ":" + std::to_string(t.port) + ch.path;
  } else {
    url = scheme + "://" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(t.port) + ch.path;
    if (!host.empty() && host != address) a->headers = curl_slist_append(nullptr, ("Host: " + host).c_str());
  }
  curl_easy_setopt(a->easy, CURLOPT_URL, url.c_str());
  if (a->headers) curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
  curl_easy_setopt(a->easy, CURLOPT_PRIVATE, a);
  curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(a->easy, CURLOPT_TIMEOUT_MS, long(ch.timeout_ms));
  curl_easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(a->easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(a->easy, CURLOPT_USERAGENT, "vane-healthcheck/" VANE_VERSION);
  curl_easy_setopt(a->easy, CURLOPT_SSL_VERIFYPEER, ch.tls_verify ? 1L : 0L);
  curl_easy_setopt(a->easy, CURLOPT_SSL_VERIFYHOST, ch.tls_verify ? 2L : 0L);
  curl_easy_setopt(a->easy, CURLOPT_PROXY, "");  // never through a proxy from the environment
  curl_multi_add_handle(multi, a->easy);
}

void Checker::Impl::check_multi_info() {
  int left;
  while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    Attempt* a = nullptr;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &a);
    if (!a) continue;
    CURLcode res = m->data.result;
    if (res != CURLE_OK) {
      a->finish(false, std::string("http: ") + curl_easy_strerror(res));
      continue;
    }
    long status = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
    const CheckSpec& ch = *a->check;
    bool status_ok = std::find(ch.expect_status.begin(), ch.expect_status.end(), status) != ch.expect_status.end();
    bool body_ok = ch.body_contains.empty() || a->body.find(ch.body_contains) != std::string::npos;
    std::string detail = "http " + std::to_string(status);
    if (!status_ok)
      detail += " (unexpected status)";
    else if (!body_ok)
      detail += " without \"" + ch.body_contains + "\" in the body";
    a->finish(status_ok && body_ok, detail);
  }
}

// ---------------------------------------------------------------------------

void Checker::Impl::shutdown() {
  for (Attempt* a : std::vector<Attempt*>(attempts.begin(), attempts.end())) {
    a->done = true;
    attempts.erase(a);
    // As finish() does: close_handles() deletes an attempt with no handle
    // of ours (an HTTP one) at once, and its probe must not point at it.
    if (a->probe) a->probe->in_flight = nullptr;
    a->close_handles();
  }
  for (auto& p : probes) retire(std::move(p));
  probes.clear();
  for (const Due& d : due) delete d.p;  // every probe is gone now
  due.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&due_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&curl_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
}

Checker::Checker(OnVerdict on_verdict, OnRtt on_rtt, OnWaver on_waver) : impl_(std::make_unique<Impl>()) {
  impl_->on_verdict = std::move(on_verdict);
  impl_->on_rtt = std::move(on_rtt);
  impl_->on_waver = std::move(on_waver);
}

Checker::~Checker() {
  stop();
}

void Checker::start() {
  Impl* im = impl_.get();
  if (im->started) return;
  im->started = true;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  uv_loop_init(&im->loop);
  im->multi = curl_multi_init();
  curl_multi_setopt(im->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(im->multi, CURLMOPT_SOCKETDATA, im);
  curl_multi_setopt(im->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(im->multi, CURLMOPT_TIMERDATA, im);
  uv_timer_init(&im->loop, &im->curl_timer);
  im->curl_timer.data = im;
  uv_timer_init(&im->loop, &im->due_timer);
  im->due_timer.data = im;
  uv_async_init(&im->loop, &im->wake, [](uv_async_t* w) {
    auto* i = static_cast<Impl*>(w->data);
    bool stopping, pending;
    {
      std::lock_guard lock(i->mu);
      stopping = i->stopping;
      pending = i->has_pending;
    }
    if (stopping) return i->shutdown();
    if (pending) i->apply_targets();
  });
  im->wake.data = im;
  im->thread = std::thread([im] {
    pthread_setname_np(pthread_self(), "vane-health");
    uv_run(&im->loop, UV_RUN_DEFAULT);
    curl_multi_cleanup(im->multi);
    uv_run(&im->loop, UV_RUN_DEFAULT);  // closes of poll handles curl asked for
    uv_loop_close(&im->loop);
  });
  uv_async_send(&im->wake);  // targets set before start()
}

void Checker::stop() {
  Impl* im = impl_.get();
  if (!im->started || !im->thread.joinable()) return;
  {
    std::lock_guard lock(im->mu);
    im->stopping = true;
  }
  uv_async_send(&im->wake);
  im->thread.join();
}

void Checker::set_targets(std::vector<Target> targets) {
  // Under the lock: stop() cannot close the loop between the check and the wake.
  std::lock_guard lock(impl_->mu);
  if (impl_->stopping) return;  // its loop is gone; a wake would write to a closed descriptor (abort)
  impl_->pending = std::move(targets);
  impl_->has_pending = true;
  if (impl_->started) uv_async_send(&impl_->wake);
}

namespace {

nlohmann::json check_to_json(const CheckSpec& c) {
  return {{"name", c.name},
          {"type", c.type},
          {"path", c.path},
          {"host", c.host},
          {"expect_status", c.expect_status},
          {"body_contains", c.body_contains},
          {"tls_verify", c.tls_verify},
          {"qname", c.qname},
          {"qtype", c.qtype},
          {"expect_rcode", c.expect_rcode},
          {"interval_ms", c.interval_ms},
          {"timeout_ms", c.timeout_ms},
          {"jitter_ms", c.jitter_ms},
          {"fall", c.fall},
          {"rise", c.rise}};
}

// nullopt and `error` set when `c` is not a check an agent can run.
std::optional<CheckSpec> check_from_json(const nlohmann::json& c, std::string& error) {
  CheckSpec s;
  s.name = c.at("name").get<std::string>();
  s.type = c.at("type").get<std::string>();
  s.path = c.at("path").get<std::string>();
  s.host = c.at("host").get<std::string>();
  s.expect_status = c.at("expect_status").get<std::vector<uint16_t>>();
  s.body_contains = c.at("body_contains").get<std::string>();
  s.tls_verify = c.at("tls_verify").get<bool>();
  s.qname = c.at("qname").get<std::string>();
  s.qtype = c.at("qtype").get<uint16_t>();
  s.expect_rcode = c.at("expect_rcode").get<uint8_t>();
  s.interval_ms = std::max<uint32_t>(100, c.at("interval_ms").get<uint32_t>());
  s.timeout_ms = std::clamp<uint32_t>(c.at("timeout_ms").get<uint32_t>(), 1, s.interval_ms);
  s.jitter_ms = c.at("jitter_ms").get<uint32_t>();
  s.fall = std::max<uint32_t>(1, c.at("fall").get<uint32_t>());
  s.rise = std::max<uint32_t>(1, c.at("rise").get<uint32_t>());
  if (s.type != "tcp" && s.type != "http" && s.type != "https" && s.type != "dns") {
    error = "check '" + s.name + "': unknown type '" + s.type + "'";
    return std::nullopt;
  }
  return s;
}

}  // namespace

nlohmann::json target_to_json(const Target& t, bool shared_checks) {
  return {{"endpoint", t.key},
          {"address", t.address},
          {"port", t.port},
          {"up", t.initial_up},
          {"check", shared_checks ? nlohmann::json(t.check->name) : check_to_json(*t.check)}};
}

std::string targets_document(const std::vector<Target>& targets, bool shared_checks, const std::string& version) {
  // Written target by target: tens of thousands of targets as one JSON tree
  // would take several times the document's size at once.
  std::string out = R"({"version":)" + nlohmann::json(version).dump() + R"(,"targets":[)";
  std::map<std::string, const CheckSpec*> checks;
  for (size_t i = 0; i < targets.size(); ++i) {
    out += i ? "," : "";
    out += target_to_json(targets[i], shared_checks).dump();
    if (shared_checks) checks.emplace(targets[i].check->name, targets[i].check.get());
  }
  out += "]";
  if (shared_checks) {
    nlohmann::json listed = nlohmann::json::object();
    for (const auto& [name, c] : checks) listed[name] = check_to_json(*c);
    out += R"(,"checks":)" + listed.dump();
  }
  return out + "}";
}

std::optional<std::vector<Target>> targets_from_json(const nlohmann::json& doc, std::string& error) {
  std::vector<Target> out;
  // Targets with the same check share one copy of its settings: named in
  // "checks" (the shared form), or written out in each target (the inline
  // form, which agents before the shared form ask for).
  std::map<std::string, std::shared_ptr<const CheckSpec>> checks;
  try {
    auto check_of = [&](const nlohmann::json& c) -> std::shared_ptr<const CheckSpec> {
      const nlohmann::json& spec = c.is_string() ? doc.at("checks").at(c.get<std::string>()) : c;
      auto& shared = checks[c.is_string() ? "name:" + c.get<std::string>() : spec.dump()];
      if (!shared)
        if (auto s = check_from_json(spec, error)) shared = std::make_shared<const CheckSpec>(std::move(*s));
      return shared;
    };
    for (const auto& j : doc.at("targets")) {
      Target t;
      t.key = j.at("endpoint").get<std::string>();
      t.address = j.at("address").get<std::string>();
      t.port = j.at("port").get<uint16_t>();
      t.initial_up = j.value("up", true);
      t.check = check_of(j.at("check"));
      if (!t.check) {
        error = "target " + t.key + ": " + error;
        return std::nullopt;
      }
      out.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    error = std::string("not a targets document: ") + e.what();
    return std::nullopt;
  }
  return out;
}

std::vector<Target> targets_from(const Config& cfg) {
  std::vector<Target> out;
  // One copy of each check's settings, shared by its endpoints' targets.
  std::map<std::string, std::shared_ptr<const CheckSpec>> checks;
  for (const auto& c : cfg.checks) checks.emplace(c.name, std::make_shared<const CheckSpec>(c));
  for (const RecordSpec& rec : cfg.records) {
    for (const EndpointSpec& ep : rec.endpoints) {
      if (ep.check.empty()) continue;
      auto it = checks.find(ep.check);
      if (it == checks.end()) continue;
      const CheckSpec* ch = it->second.get();
      Target t;
      t.key = zones::endpoint_key(rec.name, rec.type, ep.name);
      t.check = it->second;
      // Probe the endpoint's host: (an IP) if given, else its address.
      t.address = !ep.host.empty() ? ep.host : ep.address;
      t.port = ep.port               ? ep.port
               : ch->port            ? ch->port
               : ch->type == "https" ? 443
               : ch->type == "http"  ? 80
               : ch->type == "dns"   ? 53
                                     : 0;
      out.push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace vane::healthcheck
