#include "cluster_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "log.h"

namespace vane::admin {

namespace {

constexpr int64_t kNodeLeaseTtlS = 5;
constexpr uint64_t kConnectedWithinMs = 3000;
constexpr uint64_t kWatchSilentMs = 3000;  // a watch silent that long after this node's heartbeat is stuck

uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

Json put_op(const std::string& key, const std::string& value, int64_t lease = 0) {
  Json p{{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease) p["lease"] = std::to_string(lease);
  return {{"request_put", p}};
}

Json delete_op(const std::string& key) { return {{"request_delete_range", {{"key", base64_encode(key)}}}}; }

std::string suffix_of(const ClusterEvent& e) {
  using K = ClusterEvent::Kind;
  switch (e.kind) {
    case K::kWeight:
      return "w/" + e.key;
    case K::kOverride:
      return "o/" + e.key;
    case K::kHealth:
      return "h/" + e.key;
    case K::kPlan:
      return "p/" + e.key;
    case K::kJournal:
      return "j/" + e.key;
    case K::kObservation:
      return "obs/" + e.vantage + "/" + e.key;
    case K::kNode:
      return "nodes/" + e.key;
    case K::kAnswer:
      return "a/" + e.key;
    case K::kOther:
      break;
  }
  return e.key;
}

// The value a change leaves under each key it touches ("" = deleted).
std::map<std::string, std::string> desired(const std::vector<StateStore::Change>& changes) {
  std::map<std::string, std::string> out;
  for (const auto& c : changes) {
    if (c.weight) out["w/" + c.endpoint] = *c.weight ? std::to_string(**c.weight) : "";
    if (c.override_state) out["o/" + c.endpoint] = *c.override_state ? to_json(**c.override_state).dump() : "";
    if (c.health) out["h/" + c.endpoint] = *c.health;
    if (c.plan) out["p/" + c.endpoint] = *c.plan ? (*c.plan)->dump() : "";
  }
  return out;
}

// The records whose answers `changes` can move ("www.example.com./A" of
// "www.example.com./A/use1"; plans act through the overrides they write).
std::set<std::string> answer_records(const std::vector<StateStore::Change>& changes) {
  std::set<std::string> out;
  for (const auto& c : changes)
    if ((c.weight || c.override_state || c.health) && c.endpoint.rfind('/') != std::string::npos)
      out.insert(c.endpoint.substr(0, c.endpoint.rfind('/')));
  return out;
}

// Two stored values mean the same state (overrides: same state and expiry).
bool same_value(const std::string& suffix, const std::string& a, const std::string& b) {
  if (a.empty() || b.empty() || suffix.rfind("o/", 0) != 0) return a == b;
  auto ja = Json::parse(a, nullptr, false), jb = Json::parse(b, nullptr, false);
  return ja.is_object() && jb.is_object() && ja.value("state", "") == jb.value("state", "") &&
         ja.value("until_ms", uint64_t{0}) == jb.value("until_ms", uint64_t{0});
}

}  // namespace

struct ClusterStore::Write {
  std::vector<StateStore::Change> changes;
  Json journal;
  Done done;
  std::map<std::string, int64_t> guard;  // key suffix -> mod revision applied here
  std::optional<Error> error;
  int64_t revision = 0;  // 0 with no error: the state already was so
  std::string journal_id;
};

struct ClusterStore::Pending {
  std::vector<ClusterEvent> events;
  int64_t revision = 0;
  bool full = false;
  bool connects = false;
  std::unique_ptr<Write> write;  // a finished commit
};

ClusterStore::ClusterStore(const ClusterSpec& spec, StateStore& cache, uv_loop_t* loop, Apply apply)
    : spec_(spec), cache_(cache), loop_(loop), apply_(std::move(apply)) {
  applied_rev_ = int64_t(cache_.cluster_revision());
  uv_async_init(loop_, &async_, [](uv_async_t* a) { static_cast<ClusterStore*>(a->data)->drain(); });
  async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

ClusterStore::~ClusterStore() { stop(); }

void ClusterStore::start(const std::string& digest) {
  set_digest(digest);
  disconnected_ms_ = steady_ms();
  watch_thread_ = std::thread([this] { watch_loop(); });
  writer_thread_ = std::thread([this] { writer_loop(); });
  keepalive_thread_ = std::thread([this] { keepalive_loop(); });
}

void ClusterStore::stop() {
  if (stop_.exchange(true)) return;
  watch_abort_ = true;
  cv_.notify_all();
  for (auto* t : {&watch_thread_, &writer_thread_, &keepalive_thread_})
    if (t->joinable()) t->join();
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_)))
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void ClusterStore::set_digest(const std::string& digest) {
  std::lock_guard lock(mu_);
  digest_ = digest;
}

void ClusterStore::set_connected(bool up, const std::string& why) {
  if (up) {
    contact_ms_ = steady_ms();
    if (!connected_.exchange(true)) {
      VANE_INFO("cluster: connected to etcd (prefix %s, node %s)", spec_.prefix.c_str(), spec_.node.c_str());
      disconnected_ms_ = 0;
    }
    return;
  }
  {
    std::lock_guard lock(mu_);
    last_error_ = why;
  }
  if (connected_.exchange(false)) {
    disconnected_ms_ = steady_ms();
    VANE_WARN("cluster: lost etcd (%s): answering from the last applied state (revision %lld)", why.c_str(),
              static_cast<long long>(applied_rev_.load()));
  }
}

// ---- changes from this node ------------------------------------------------

void ClusterStore::commit(std::vector<StateStore::Change> changes, Json journal, Done done) {
  auto w = std::make_unique<Write>();
  for (const auto& [suffix, value] : desired(changes)) {
    auto it = key_rev_.find(suffix);
    w->guard[suffix] = it == key_rev_.end() ? 0 : std::max<int64_t>(0, it->second);
  }
  w->changes = std::move(changes);
  w->journal = std::move(journal);
  w->done = std::move(done);
  {
    std::lock_guard lock(mu_);
    writes_.push_back(std::move(w));
  }
  cv_.notify_all();
}

void ClusterStore::run_commit(EtcdClient& etcd, Write& w) {
  static std::atomic<uint32_t> counter{0};
  Json compare = Json::array(), success = Json::array(), failure = Json::array();
  for (const auto& [suffix, rev] : w.guard) {
    compare.push_back({{"key", base64_encode(full(suffix))},
                       {"target", "MOD"},
                       {"result", "EQUAL"},
                       {"mod_revision", std::to_string(rev)}});
    failure.push_back({{"request_range", {{"key", base64_encode(full(suffix))}}}});
  }
  auto want = desired(w.changes);
  for (const auto& [suffix, value] : want)
    success.push_back(value.empty() ? delete_op(full(suffix)) : put_op(full(suffix), value));
  // Marks each record's last change to what its answers depend on: a node
  // that joins later reads it even when that change was a delete.
  for (const auto& record : answer_records(w.changes)) success.push_back(put_op(full("a/" + record), spec_.node));
  uint64_t at = now_ms();
  w.journal["node"] = spec_.node;
  w.journal["at_ms"] = at;
  w.journal["at"] = format_time(at);
  char id[96];
  snprintf(id, sizeof id, "%013llu-%s-%06x", static_cast<unsigned long long>(at), spec_.node.c_str(),
           unsigned(counter++ & 0xffffff));
  w.journal_id = id;
  success.push_back(put_op(full("j/" + w.journal_id), w.journal.dump()));
  // Read back on failure: this write's own journal entry, there when an
  // earlier try of this same txn landed and its answer was lost.
  failure.push_back({{"request_range", {{"key", base64_encode(full("j/" + w.journal_id))}}}});
  auto r = etcd.call("/v3/kv/txn", {{"compare", compare}, {"success", success}, {"failure", failure}});
  if (!r) {
    w.error = Error{
        "", 0, r.error().message + (EtcdClient::refused(r.error()) ? " — nothing was written" : " — not acknowledged")};
    return;
  }
  cluster_rev_ = std::max(cluster_rev_.load(), json_int((*r)["header"], "revision"));
  if (r->value("succeeded", false)) {
    w.revision = json_int((*r)["header"], "revision");
    return;
  }
  // A try of ours landed (etcd committed it, the answer was lost on the
  // way, the client tried again): acknowledged, at the revision it landed.
  if (const Json& mine = (*r)["responses"][w.guard.size()]["response_range"];
      mine.contains("kvs") && !mine["kvs"].empty()) {
    w.revision = json_int(mine["kvs"][0], "mod_revision");
    return;
  }
  // Someone else changed a key since this node applied it. Already what we
  // asked for (another node recorded the same verdict or expiry): nothing
  // to do. Otherwise refuse: never silently win.
  size_t i = 0;
  std::string clash;
  for (const auto& [suffix, rev] : w.guard) {
    const Json& resp = (*r)["responses"][i++]["response_range"];
    std::string now;
    if (resp.contains("kvs") && !resp["kvs"].empty()) now = decode_kv(resp["kvs"][0]).value;
    if (!same_value(suffix, now, want[suffix]))
      clash += (clash.empty() ? "" : ", ") + suffix.substr(2) + " is now " + (now.empty() ? "unset" : now);
  }
  if (!clash.empty())
    w.error = Error{"", 0,
                    "changed concurrently on another node (" + clash +
                        "); nothing was changed — look at vanectl status and retry"};
}

void ClusterStore::put_observation(const std::string& vantage, const std::string& key, const Json& view, bool own,
                                   uint32_t ttl_s) {
  {
    std::lock_guard lock(mu_);
    obs_out_[full("obs/" + vantage + "/" + key)] = {view, own ? 0 : -int64_t(std::max<uint32_t>(ttl_s, 2))};
    if (!own) {
      auto& al = agent_leases_[vantage];
      al.touched_ms = steady_ms();
      al.ttl_s = std::max(ttl_s, 2u);
    }
  }
  cv_.notify_all();
}

void ClusterStore::heard_from_agent(const std::string& vantage) {
  std::lock_guard lock(mu_);
  if (auto it = agent_leases_.find(vantage); it != agent_leases_.end()) it->second.touched_ms = steady_ms();
}

void ClusterStore::writer_loop() {
  EtcdClient etcd(spec_);
  while (!stop_) {
    std::unique_ptr<Write> w;
    std::map<std::string, std::pair<Json, int64_t>> obs;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500),
                   [&] { return stop_ || !writes_.empty() || (!obs_out_.empty() && lease_ != 0); });
      if (stop_) break;
      if (!writes_.empty()) {
        w = std::move(writes_.front());
        writes_.pop_front();
      } else if (lease_ != 0) {
        obs.swap(obs_out_);
      }
    }
    if (w) {
      run_commit(etcd, *w);
      Pending p;
      p.write = std::move(w);
      deliver(std::move(p));
      continue;
    }
    for (auto it = obs.begin(); it != obs.end(); ++it) {
      auto& [key, v] = *it;
      int64_t lease = lease_;
      if (v.second < 0) {  // an agent's vantage: its own lease
        std::string vantage = key.substr(full("obs/").size());
        vantage.resize(vantage.find('/'));
        std::lock_guard lock(mu_);
        auto& al = agent_leases_[vantage];
        if (!al.id) {
          auto g = etcd.call("/v3/lease/grant", {{"TTL", std::to_string(-v.second)}}, 2000);
          if (g) al.id = json_int(*g, "ID");
        }
        lease = al.id;
      }
      auto r = lease ? etcd.call("/v3/kv/put", {{"key", base64_encode(key)},
                                                {"value", base64_encode(v.first.dump())},
                                                {"lease", std::to_string(lease)}},
                                 2000)
                     : Result<Json>(Error{"", 0, "no lease"});
      if (!r) {  // put back what a newer view has not replaced, and try again shortly
        std::lock_guard lock(mu_);
        for (auto rest = it; rest != obs.end(); ++rest) obs_out_.try_emplace(rest->first, rest->second);
        if (r.error().message.find("lease not found") != std::string::npos)
          for (auto& [name, al] : agent_leases_) al.id = 0;
        break;
      }
    }
    if (!obs.empty() && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// ---- membership and liveness -------------------------------------------------

void ClusterStore::keepalive_loop() {
  EtcdClient etcd(spec_);
  uint64_t last_beat = 0, last_trim = steady_ms();
  uint64_t unseen_beat_ms = 0;  // a heartbeat written that the watch has not yet heard back
  int64_t rejoin_at = 0;        // etcd's revision when contact came back (while rejoining)
  while (!stop_) {
    uint64_t now = steady_ms();
    bool ok = true;
    std::string why;
    int64_t reached = 0;  // the cluster's revision as this round's call to etcd found it
    // Contact back while the watch lived on: it may be on a member that was
    // cut off too and has not caught up. Beat at once; "connected" waits for
    // the state applied here to reach what etcd has (below).
    bool rejoining = !connected_ && watch_live_;
    if (!rejoining) rejoin_at = 0;
    if (lease_ == 0) {
      auto g = etcd.call("/v3/lease/grant", {{"TTL", std::to_string(kNodeLeaseTtlS)}}, 1500);
      if (g) {
        reached = json_int(g->value("header", Json::object()), "revision");
        lease_ = json_int(*g, "ID");
        last_beat = 0;
        cv_.notify_all();  // observations waiting for a lease
      } else {
        ok = false, why = g.error().message;
      }
    } else {
      auto k = etcd.call("/v3/lease/keepalive", {{"ID", std::to_string(lease_.load())}}, 1500);
      if (!k) {
        ok = false, why = k.error().message;
      } else {
        contact_ms_ = steady_ms();  // etcd answers (whatever the rest of this round takes)
        const Json& res = k->contains("result") ? (*k)["result"] : *k;
        reached = json_int(res.value("header", Json::object()), "revision");
        cluster_rev_ = std::max(cluster_rev_.load(), reached);
        if (json_int(res, "TTL") <= 0) {
          VANE_WARN("cluster: this node's lease expired (etcd unreachable for %llds?): joining again",
                    static_cast<long long>(kNodeLeaseTtlS));
          lease_ = 0;
          continue;
        }
      }
    }
    if (ok && lease_ && (now - last_beat >= 2000 || rejoining)) {
      std::string digest;
      {
        std::lock_guard lock(mu_);
        digest = digest_;
      }
      Json me{{"version", VANE_VERSION}, {"digest", digest},          {"applied", applied_rev_.load()},
              {"at_ms", now_ms()},     {"clock_ms", host_ms()}};  // clock_ms: for the cluster's clock
      auto p = etcd.call("/v3/kv/put",
                         {{"key", base64_encode(full("nodes/" + spec_.node))},
                          {"value", base64_encode(me.dump())},
                          {"lease", std::to_string(lease_.load())}},
                         1500);
      if (p) {
        last_beat = now;
        if (!unseen_beat_ms) unseen_beat_ms = steady_ms();
      }
    }
    // This node's own heartbeat comes back through the watch within
    // milliseconds. A watch that has heard nothing for 3 s since one was
    // written, while etcd answers, hangs on a member that holds its stream
    // and sends nothing (a stopped process): start it again elsewhere.
    if (unseen_beat_ms && watch_seen_ms_ >= unseen_beat_ms) unseen_beat_ms = 0;  // heard since
    if (unseen_beat_ms && watch_live_ && steady_ms() - unseen_beat_ms > kWatchSilentMs) {
      VANE_WARN("cluster: the watch heard nothing for %llu ms while etcd answered (a hung member?): watching again",
                static_cast<unsigned long long>(steady_ms() - unseen_beat_ms));
      watch_abort_ = true;
      unseen_beat_ms = 0;
    }
    // Agents' leases live while their reports keep arriving here (one may
    // have arrived during this round's calls to etcd, after `now`).
    std::vector<int64_t> alive;
    {
      std::lock_guard lock(mu_);
      for (auto it = agent_leases_.begin(); it != agent_leases_.end();) {
        if (elapsed_ms(now, it->second.touched_ms) > it->second.ttl_s * 1000ULL) {
          it = agent_leases_.erase(it);  // silent: let it expire, and its views with it
          continue;
        }
        if (it->second.id) alive.push_back(it->second.id);
        ++it;
      }
    }
    for (int64_t id : alive) etcd.call("/v3/lease/keepalive", {{"ID", std::to_string(id)}}, 1000);
    if (ok && now - last_trim > 60000) {  // the journal keeps its newest kJournalKeep entries
      last_trim = now;
      auto c = etcd.range(full("j/"), prefix_end(full("j/")), {{"count_only", true}});
      int64_t n = c ? json_int(*c, "count") : 0;
      if (n > int64_t(kJournalKeep) + 500) {
        auto old = etcd.range(full("j/"), prefix_end(full("j/")),
                              {{"keys_only", true}, {"limit", std::to_string(n - int64_t(kJournalKeep))}});
        if (old && old->contains("kvs") && !(*old)["kvs"].empty())
          etcd.call("/v3/kv/deleterange", {{"key", base64_encode(full("j/"))},
                                           {"range_end", base64_encode(decode_kv((*old)["kvs"].back()).key + '\0')}});
      }
    }
    if (ok && rejoining) {
      // Connected once the watch has applied everything etcd had when it
      // first answered again (this node's heartbeat, written after that,
      // brings it there; a watch that never does is started again above).
      // That first revision, not each round's: in an etcd shared with other
      // prefixes the revision moves on between a heartbeat and its echo.
      if (!rejoin_at) rejoin_at = reached;
      if (applied_rev_ >= rejoin_at) {
        set_connected(true, "");
      } else {
        std::lock_guard lock(mu_);
        last_error_ = "etcd answers again; catching up: revision " + std::to_string(applied_rev_.load()) + " of " +
                      std::to_string(rejoin_at) + " applied";
      }
    } else if (ok)
      contact_ms_ = steady_ms();
    else if (connected_)
      set_connected(false, why);
    else {
      std::lock_guard lock(mu_);
      last_error_ = why;
    }
    // A watch that outlives the node's contact with etcd may hang on a cut-off member.
    if (connected_ && contact_age_ms() > kConnectedWithinMs) {  // (the watch's thread moves contact_ms_ too)
      set_connected(false, "no answer from etcd for 3 s");
      watch_abort_ = true;
    }
    for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (lease_) etcd.call("/v3/lease/revoke", {{"ID", std::to_string(lease_.load())}}, 1000);
}

// ---- the watch: every node's changes, applied here -----------------------------

ClusterEvent ClusterStore::translate(const KeyValue& kv, bool deleted) const {
  using K = ClusterEvent::Kind;
  ClusterEvent e;
  e.deleted = deleted;
  e.value = kv.value;
  e.revision = kv.mod_revision;
  std::string s = kv.key.substr(std::min(kv.key.size(), spec_.prefix.size() + 1));
  auto take = [&](const char* p, K k) {
    if (s.rfind(p, 0) != 0) return false;
    e.kind = k;
    e.key = s.substr(strlen(p));
    return true;
  };
  if (take("w/", K::kWeight) || take("o/", K::kOverride) || take("h/", K::kHealth) || take("p/", K::kPlan) || take("j/", K::kJournal) ||
      take("nodes/", K::kNode) || take("a/", K::kAnswer))
    return e;
  if (take("obs/", K::kObservation)) {
    size_t slash = e.key.find('/');
    if (slash == std::string::npos) return ClusterEvent{};
    e.vantage = e.key.substr(0, slash);
    e.key = e.key.substr(slash + 1);
    return e;
  }
  e.key = s;
  return e;
}

std::optional<std::string> ClusterStore::seed(EtcdClient& etcd) {
  // Claim the empty prefix; whoever wins seeds it from its own RocksDB state.
  Json j{{"action", "seed"}, {"node", spec_.node}, {"by", "vaned"}};
  auto weights = cache_.weights();
  auto overrides = cache_.overrides();
  auto health = cache_.health();
  j["weights"] = weights.size(), j["overrides"] = overrides.size();
  uint64_t at = now_ms();
  j["at_ms"] = at, j["at"] = format_time(at);
  char id[96];
  snprintf(id, sizeof id, "%013llu-%s-seed", static_cast<unsigned long long>(at), spec_.node.c_str());
  Json cmp = Json::array({{{"key", base64_encode(full("meta/schema"))},
                           {"target", "CREATE"},
                           {"result", "EQUAL"},
                           {"create_revision", "0"}}});
  Json ops = Json::array({put_op(full("meta/schema"), std::to_string(kSchemaVersion)),
                          put_op(full(std::string("j/") + id), j.dump())});
  auto r = etcd.call("/v3/kv/txn", {{"compare", cmp}, {"success", ops}});
  if (!r) return r.error().message;
  if (!r->value("succeeded", false)) return std::nullopt;  // another node seeded it first: adopt
  VANE_INFO("cluster: prefix %s was empty: seeded it from this node's state (%zu weights, %zu overrides)",
            spec_.prefix.c_str(), weights.size(), overrides.size());
  Json batch = Json::array();
  auto flush = [&]() -> std::optional<std::string> {
    if (batch.empty()) return std::nullopt;
    auto t = etcd.call("/v3/kv/txn", {{"compare", Json::array()}, {"success", batch}});
    batch = Json::array();
    return t ? std::nullopt : std::optional<std::string>(t.error().message);
  };
  auto add = [&](const std::string& suffix, const std::string& value) -> std::optional<std::string> {
    batch.push_back(put_op(full(suffix), value));
    return batch.size() >= ClusterStore::kMaxTxnOps ? flush() : std::nullopt;
  };
  for (const auto& [k, w] : weights)
    if (auto e = add("w/" + k, std::to_string(w))) return e;
  for (const auto& [k, o] : overrides)
    if (auto e = add("o/" + k, to_json(o).dump())) return e;
  for (const auto& [k, h] : health)
    if (auto e = add("h/" + k, h)) return e;
  for (const auto& [k, plan] : cache_.plans())
    if (auto e = add("p/" + k, plan.dump())) return e;
  return flush();
}

bool ClusterStore::sync_and_watch(EtcdClient& etcd) {
  const std::string root = full("");
  auto r = etcd.range(root, prefix_end(root));
  if (!r) {
    set_connected(false, r.error().message);
    return false;
  }
  bool seeded = false;
  for (const auto& kv : r->value("kvs", Json::array())) seeded |= decode_kv(kv).key == full("meta/schema");
  if (!seeded) {
    if (auto e = seed(etcd)) {
      set_connected(false, "seeding the empty prefix: " + *e);
      return false;
    }
    return true;  // read it again, as every node sees it
  }
  int64_t rev = json_int((*r)["header"], "revision");
  {
    std::lock_guard lock(mu_);
    cluster_id_ = (*r)["header"].value("cluster_id", "") + " " + spec_.prefix;
  }
  cluster_rev_ = std::max(cluster_rev_.load(), rev);
  Pending snap;
  snap.full = true;
  snap.revision = rev;
  for (const auto& kv : r->value("kvs", Json::array())) snap.events.push_back(translate(decode_kv(kv), false));
  snap.connects = true;  // "connected" once this state is applied, not before
  deliver(std::move(snap));
  watch_abort_ = false;
  watch_seen_ms_ = steady_ms();
  if (stop_) return false;
  Json create{{"key", base64_encode(root)},
              {"range_end", base64_encode(prefix_end(root))},
              {"start_revision", std::to_string(rev + 1)},
              {"progress_notify", true}};
  std::string why = etcd.watch(
      create,
      [&](const Json& m) {
        if (m.value("canceled", false) || json_int(m, "compact_revision") > 0) return false;  // resync
        contact_ms_ = steady_ms();
        watch_seen_ms_ = contact_ms_.load();
        int64_t hrev = json_int(m.value("header", Json::object()), "revision");
        cluster_rev_ = std::max(cluster_rev_.load(), hrev);
        if (!m.contains("events")) return true;
        Pending p;
        p.revision = hrev;
        for (const auto& ev : m["events"]) {
          KeyValue kv = decode_kv(ev.value("kv", Json::object()));
          p.events.push_back(translate(kv, ev.value("type", "PUT") == "DELETE"));
        }
        deliver(std::move(p));
        return true;
      },
      watch_abort_);
  watch_live_ = false;
  if (!stop_) VANE_WARN("cluster: watch ended (%s): catching up", why.c_str());
  return false;
}

void ClusterStore::watch_loop() {
  EtcdClient etcd(spec_);
  while (!stop_) {
    if (sync_and_watch(etcd)) continue;
    for (int i = 0; i < 5 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void ClusterStore::deliver(Pending p) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(p));
  }
  uv_async_send(&async_);
}

// ---- main loop ---------------------------------------------------------------

void ClusterStore::drain() {
  std::deque<Pending> batch;
  std::string cluster;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
    cluster = cluster_id_;
  }
  using K = ClusterEvent::Kind;
  for (auto& p : batch) {
    bool from_watch = !p.write;
    if (p.write && !p.write->error && p.write->revision > 0) {
      // Our own change, committed: applied here now, before the ack (the
      // watch brings it again later; the revision check skips it then).
      Write& w = *p.write;
      p.revision = w.revision;
      for (const auto& [suffix, value] : desired(w.changes)) {
        KeyValue kv{full(suffix), value, w.revision, 0, 0};
        p.events.push_back(translate(kv, value.empty()));
      }
      p.events.push_back(translate(KeyValue{full("j/" + w.journal_id), w.journal.dump(), w.revision, 0, 0}, false));
      for (const auto& record : answer_records(w.changes))
        p.events.push_back(translate(KeyValue{full("a/" + record), spec_.node, w.revision, 0, 0}, false));
    }
    // Only what is newer than what this node already applied, per key.
    std::vector<ClusterEvent> fresh;
    std::vector<StateStore::Change> changes;
    std::vector<Json> journal;
    std::map<std::string, int> weights;
    std::map<std::string, Override> overrides;
    std::map<std::string, std::string> health;
    std::map<std::string, Json> plans;
    if (p.full) {
      key_rev_.clear();
      nodes_.clear();
    }
    for (auto& e : p.events) {
      if (e.kind == K::kOther) continue;
      std::string suffix = suffix_of(e);
      // A deleted key is kept as -revision: newer-than checks still work,
      // and the guard for it is 0 (what etcd compares a missing key with).
      auto& seen = key_rev_[suffix];
      if (!p.full && e.revision <= std::abs(seen)) continue;
      seen = e.deleted ? -e.revision : e.revision;
      switch (e.kind) {
        case K::kWeight:
          if (p.full)
            weights[e.key] = std::atoi(e.value.c_str());
          else
            changes.push_back({e.key, e.deleted ? std::optional<int>{} : std::optional<int>{std::atoi(e.value.c_str())},
                               std::nullopt, std::nullopt});
          break;
        case K::kOverride: {
          auto j = Json::parse(e.value, nullptr, false);
          if (p.full) {
            if (j.is_object()) overrides[e.key] = override_from_json(j);
          } else {
            changes.push_back({e.key, std::nullopt,
                               e.deleted || !j.is_object() ? std::optional<Override>{}
                                                           : std::optional<Override>{override_from_json(j)},
                               std::nullopt});
          }
          break;
        }
        case K::kHealth:
          if (p.full)
            health[e.key] = e.value;
          else if (!e.deleted)
            changes.push_back({e.key, std::nullopt, std::nullopt, e.value});
          break;
        case K::kPlan: {
          auto j = Json::parse(e.value, nullptr, false);
          if (p.full) {
            if (j.is_object()) plans[e.key] = j;
          } else {
            StateStore::Change c{e.key, std::nullopt, std::nullopt, std::nullopt};
            c.plan = e.deleted || !j.is_object() ? std::optional<Json>{} : std::optional<Json>{j};
            changes.push_back(std::move(c));
          }
          break;
        }
        case K::kJournal:
          if (!e.deleted) {
            auto j = Json::parse(e.value, nullptr, false);
            if (j.is_object()) {
              j["seq"] = e.revision;
              journal.push_back(std::move(j));
            }
          }
          break;
        case K::kNode:
          if (e.deleted) {
            nodes_.erase(e.key);
            clock_samples_.erase(e.key);
          } else {
            nodes_[e.key] = Json::parse(e.value, nullptr, false);
            // A heartbeat just written (not one read back by a full sync,
            // up to 2 s old, nor the backlog a watch on a member that was cut
            // off brings after healing, up to minutes old: only while this
            // node is connected is its watch known to be current): how far
            // the sender's clock is from ours.
            const Json& n = nodes_[e.key];
            if (!p.full && connected_ && e.key != spec_.node && n.is_object() && n.contains("clock_ms"))
              clock_samples_[e.key] = n.value("clock_ms", int64_t{0}) - int64_t(host_ms());
          }
          break;
        default:
          break;
      }
      fresh.push_back(e);
    }
    follow_cluster_clock();
    std::optional<Error> err;
    if (p.full) {
      std::sort(journal.begin(), journal.end(),
                [](const Json& a, const Json& b) { return a["seq"].get<int64_t>() < b["seq"].get<int64_t>(); });
      if (journal.size() > kJournalKeep) journal.erase(journal.begin(), journal.end() - kJournalKeep);
      err = cache_.replace_cluster(weights, overrides, health, plans, journal, uint64_t(p.revision), cluster);
    } else if (!changes.empty() || !journal.empty()) {
      // Heartbeats and observations are not cached: a synced write for
      // each would cost a disk flush every second for nothing a restart needs.
      err = cache_.apply_cluster(changes, journal, from_watch ? uint64_t(p.revision) : 0);
    }
    if (err) VANE_ERROR("cluster: cannot write the local state cache: %s", err->to_string().c_str());
    apply_(fresh, p.full);
    if (from_watch) applied_rev_ = std::max(applied_rev_.load(), p.revision);
    if (p.connects) {
      watch_live_ = true;
      set_connected(true, "");
    }
    if (p.write) p.write->done(p.write->error, uint64_t(p.write->revision));
  }
}

uint64_t ClusterStore::contact_age_ms() const {
  return elapsed_ms(steady_ms(), contact_ms_.load());
}

// The cluster's clock is the median of its live nodes' clocks (this one's
// included, at 0): a node whose clock is off follows the others; two nodes
// meet halfway. Measured from heartbeats as they arrive (every 2 s), so it
// is right to within the time etcd takes to pass one on.
void ClusterStore::follow_cluster_clock() {
  std::vector<int64_t> offsets{0};
  for (const auto& [node, off] : clock_samples_)
    if (nodes_.count(node)) offsets.push_back(off);
  std::sort(offsets.begin(), offsets.end());
  size_t n = offsets.size();
  int64_t median = n % 2 ? offsets[n / 2] : (offsets[n / 2 - 1] + offsets[n / 2]) / 2;
  int64_t was = clock_offset_ms();
  set_clock_offset_ms(median);
  if (std::abs(median - was) >= 500 && (std::abs(median) >= 500 || std::abs(was) >= 500))
    VANE_WARN("cluster: this host's clock is %.1f s %s the cluster's (the median of %zu nodes'): times here follow "
              "the cluster's",
              std::abs(double(median)) / 1000.0, median < 0 ? "ahead of" : "behind", n);
}

bool ClusterStore::writes_health() const {
  return connected_ && !nodes_.empty() && nodes_.begin()->first == spec_.node;
}

Json ClusterStore::status() const {
  bool up = connected_;
  int64_t applied = applied_rev_, top = std::max(cluster_rev_.load(), applied);
  Json s{{"node", spec_.node},
         {"prefix", spec_.prefix},
         {"etcd", spec_.etcd},
         {"connected", up},
         {"applied_revision", applied},
         {"cluster_revision", top},
         {"lag", top - applied},
         {"clock_offset_ms", clock_offset_ms()},
         {"state_age_s", up ? 0.0 : double(contact_age_ms()) / 1000.0}};
  if (!up && contact_ms_ == 0) s["state_age_s"] = nullptr;  // never reached etcd since start
  {
    std::lock_guard lock(mu_);
    if (!up && !last_error_.empty()) s["error"] = last_error_;
    s["digest"] = digest_;
  }
  // The digest most nodes serve; a node that differs is flagged.
  std::map<std::string, int> votes;
  for (const auto& [name, n] : nodes_)
    if (n.is_object()) ++votes[n.value("digest", "")];
  std::string common;
  int best = 0;
  for (const auto& [d, c] : votes)
    if (c > best) best = c, common = d;
  Json nodes = Json::array();
  bool mismatch = false;
  uint64_t wall = now_ms();
  for (const auto& [name, n] : nodes_) {
    if (!n.is_object()) continue;
    int64_t a = n.value("applied", int64_t{0});
    bool differs = votes.size() > 1 && n.value("digest", "") != common;
    mismatch |= differs;
    nodes.push_back({{"node", name},
                     {"self", name == spec_.node},
                     {"version", n.value("version", "")},
                     {"digest", n.value("digest", "")},
                     {"digest_mismatch", differs},
                     {"applied_revision", a},
                     {"lag", std::max<int64_t>(0, top - a)},
                     {"heartbeat_age_s", double(wall - std::min(wall, n.value("at_ms", wall))) / 1000.0}});
  }
  s["nodes"] = nodes;
  s["health_writer"] = nodes_.empty() ? Json(nullptr) : Json(nodes_.begin()->first);
  s["digest_mismatch"] = mismatch;
  return s;
}

}  // namespace vane::admin
