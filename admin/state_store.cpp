#include "state_store.h"

#include <sys/statvfs.h>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace vane::admin {

namespace {

constexpr const char* kSchemaKey = "meta/schema";

std::string journal_key(uint64_t seq) {
  char buf[32];
  snprintf(buf, sizeof buf, "j/%020llu", static_cast<unsigned long long>(seq));
  return buf;
}

template <class F>
void scan(rocksdb::DB& db, const std::string& prefix, F f) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    f(it->key().ToString().substr(prefix.size()), it->value().ToString());
}

}  // namespace

nlohmann::json to_json(const Override& o) {
  nlohmann::json j{{"state", o.state}, {"until_ms", o.until_ms}, {"reason", o.reason}, {"uid", o.uid}, {"at_ms", o.at_ms}};
  if (!o.by.empty()) j["by"] = o.by;
  if (!o.region.empty()) j["region"] = o.region;
  return j;
}

Override override_from_json(const nlohmann::json& j) {
  return Override{j.value("state", ""),
                  j.value("until_ms", uint64_t{0}),
                  j.value("reason", ""),
                  j.value("uid", uint32_t{0}),
                  j.value("at_ms", uint64_t{0}),
                  j.value("by", std::string()),
                  j.value("region", std::string())};
}

namespace {

void put_change(rocksdb::WriteBatch& batch, const StateStore::Change& c) {
  if (c.weight) {
    if (*c.weight)
      batch.Put("w/" + c.endpoint, std::to_string(**c.weight));
    else
      batch.Delete("w/" + c.endpoint);
  }
  if (c.override_state) {
    if (*c.override_state)
      batch.Put("o/" + c.endpoint, to_json(**c.override_state).dump());
    else
      batch.Delete("o/" + c.endpoint);
  }
  if (c.plan) {
    if (*c.plan)
      batch.Put("p/" + c.endpoint, (*c.plan)->dump());
    else
      batch.Delete("p/" + c.endpoint);
  }
  if (c.health) batch.Put("h/" + c.endpoint, *c.health);
}

std::string dump_entry(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Cluster journal entries, each under its own seq (revision); the highest.
uint64_t put_journal(rocksdb::WriteBatch& batch, const std::vector<nlohmann::json>& journal) {
  uint64_t top = 0;
  for (const auto& j : journal) {
    uint64_t seq = j.value("seq", uint64_t{0});
    batch.Put(journal_key(seq), dump_entry(j));
    top = std::max(top, seq);
  }
  return top;
}

}  // namespace

namespace {
std::atomic<int64_t> g_clock_offset_ms{0};
}

uint64_t host_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

uint64_t now_ms() { return uint64_t(int64_t(host_ms()) + g_clock_offset_ms.load(std::memory_order_relaxed)); }
void set_clock_offset_ms(int64_t ms) { g_clock_offset_ms.store(ms, std::memory_order_relaxed); }
int64_t clock_offset_ms() { return g_clock_offset_ms.load(std::memory_order_relaxed); }

std::string format_time(uint64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string format_duration(uint64_t ms) {
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

StateStore::~StateStore() = default;

rocksdb::Options StateStore::db_options() {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.paranoid_checks = true;
  opts.max_open_files = 64;
  opts.keep_log_file_num = 4;
  // Writes are small (a verdict, an override, a journal event) and every one
  // is synced to the WAL; the memtable only holds them until a flush. 4 MB,
  // not RocksDB's 64: a burst of tens of thousands of verdicts (every checked
  // endpoint going down at once, 130 bytes each) would otherwise stay in
  // memory.
  opts.write_buffer_size = 4 << 20;
  return opts;
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error{dir, 0, "cannot create state_dir: " + ec.message()};
    std::filesystem::permissions(dir, std::filesystem::perms(0750), ec);  // the admin socket lives here too
  }
  std::string path = (std::filesystem::path(dir) / "db").string();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(db_options(), path, &raw);
  const std::string way_out = " — to start over from the config's weights, stop vaned and move " + path +
                              " aside (it is kept for inspection, never reset by vaned)";
  if (!st.ok()) {
    if (st.IsIOError() && st.ToString().find("lock") != std::string::npos)
      return Error{path, 0, "state store is in use by another vaned: " + st.ToString()};
    return Error{path, 0, "cannot open state store: " + st.ToString() + way_out};
  }
  std::unique_ptr<StateStore> s(new StateStore);
  s->db_.reset(raw);
  s->dir_ = dir;
  std::string schema;
  st = raw->Get(rocksdb::ReadOptions(), kSchemaKey, &schema);
  if (st.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) return Error{path, 0, "state store has data but no schema version: not ours?" + way_out};
    rocksdb::WriteOptions wo;
    wo.sync = true;
    st = raw->Put(wo, kSchemaKey, std::to_string(kSchemaVersion));
    if (!st.ok()) return Error{path, 0, "cannot write state store: " + st.ToString()};
  } else if (!st.ok()) {
    return Error{path, 0, "cannot read state store: " + st.ToString() + way_out};
  } else if (schema != std::to_string(kSchemaVersion)) {
    return Error{path, 0,
                 "state store schema version " + schema + " is not " + std::to_string(kSchemaVersion) +
                     " (written by a newer vaned?): run that vaned" + way_out};
  }
  std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev("j/\xff");
  if (it->Valid() && it->key().starts_with("j/")) s->seq_ = std::stoull(it->key().ToString().substr(2));
  return s;
}

std::map<std::string, int> StateStore::weights() const {
  std::map<std::string, int> out;
  scan(*db_, "w/", [&](const std::string& k, const std::string& v) { out[k] = std::atoi(v.c_str()); });
  return out;
}

std::map<std::string, Override> StateStore::overrides() const {
  std::map<std::string, Override> out;
  scan(*db_, "o/", [&](const std::string& k, const std::string& v) {
    auto j = nlohmann::json::parse(v, nullptr, false);
    if (!j.is_object()) return;
    out[k] = override_from_json(j);
  });
  return out;
}

std::optional<Override> StateStore::override_of(const std::string& endpoint) const {
  std::string v;
  if (!db_->Get(rocksdb::ReadOptions(), "o/" + endpoint, &v).ok()) return std::nullopt;
  auto j = nlohmann::json::parse(v, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return override_from_json(j);
}

std::vector<std::string> StateStore::override_keys() const {
  std::vector<std::string> out;
  scan(*db_, "o/", [&](const std::string& k, const std::string&) { out.push_back(k); });
  return out;
}

std::map<std::string, nlohmann::json> StateStore::plans() const {
  std::map<std::string, nlohmann::json> out;
  scan(*db_, "p/", [&](const std::string& k, const std::string& v) {
    auto j = nlohmann::json::parse(v, nullptr, false);
    if (j.is_object()) out[k] = std::move(j);
  });
  return out;
}

std::map<std::string, std::string> StateStore::health() const {
  std::map<std::string, std::string> out;
  scan(*db_, "h/", [&](const std::string& k, const std::string& v) { out[k] = v; });
  return out;
}

std::optional<Error> StateStore::commit(const std::vector<Change>& changes, nlohmann::json journal) {
  std::vector<Entry> one;
  one.emplace_back(changes, std::move(journal));
  return commit_all(std::move(one));
}

std::optional<Error> StateStore::commit_all(std::vector<Entry> entries) {
  rocksdb::WriteBatch batch;
  uint64_t seq = seq_;
  for (auto& [changes, journal] : entries) {
    for (const Change& c : changes) put_change(batch, c);
    journal["seq"] = ++seq;
    if (!journal.contains("at_ms")) journal["at_ms"] = now_ms();
    journal["at"] = format_time(journal["at_ms"].get<uint64_t>());
    batch.Put(journal_key(seq), dump_entry(journal));
    // Trimmed every 1000 entries, not at each: every range deletion stays in
    // RocksDB's memtable until a flush, and each one made every later read
    // slower (found by fuzz_admin slowing from 1000 to 30 runs a second).
    if (seq > kJournalKeep && seq % 1000 == 0) batch.DeleteRange(journal_key(0), journal_key(seq - kJournalKeep + 1));
  }
  if (auto err = write_synced(batch)) return err;
  seq_ = seq;
  return std::nullopt;
}


std::optional<Error> StateStore::apply_cluster(const std::vector<Change>& changes,
                                               const std::vector<nlohmann::json>& journal, uint64_t revision) {
  rocksdb::WriteBatch batch;
  for (const Change& c : changes) put_change(batch, c);
  uint64_t top = std::max(seq_, put_journal(batch, journal));
  if (top > seq_ && seq_ > 0 && top / 1000 != seq_ / 1000 && top > kJournalKeep * 4)
    batch.DeleteRange(journal_key(0), journal_key(top - kJournalKeep * 4));  // revisions, not entries: generous
  if (revision > cluster_revision()) batch.Put("meta/revision", std::to_string(revision));
  if (auto err = write_synced(batch)) return err;
  seq_ = top;
  return std::nullopt;
}

std::optional<Error> StateStore::replace_cluster(const std::map<std::string, int>& weights,
                                                 const std::map<std::string, Override>& overrides,
                                                 const std::map<std::string, std::string>& health,
                                                 const std::map<std::string, nlohmann::json>& plans,
                                                 const std::vector<nlohmann::json>& journal, uint64_t revision,
                                                 const std::string& cluster) {
  rocksdb::WriteBatch batch;
  for (const char* p : {"w/", "o/", "h/", "p/", "j/"}) batch.DeleteRange(p, std::string(p, 1) + char(p[1] + 1));
  for (const auto& [k, w] : weights) batch.Put("w/" + k, std::to_string(w));
  for (const auto& [k, o] : overrides) batch.Put("o/" + k, to_json(o).dump());
  for (const auto& [k, h] : health) batch.Put("h/" + k, h);
  for (const auto& [k, j] : plans) batch.Put("p/" + k, j.dump());
  uint64_t top = put_journal(batch, journal);
  batch.Put("meta/revision", std::to_string(revision));
  batch.Put("meta/cluster", cluster);
  if (auto err = write_synced(batch)) return err;
  seq_ = top;
  return std::nullopt;
}

std::optional<Error> StateStore::write_synced(rocksdb::WriteBatch& batch) {
  // A write that runs out of space leaves RocksDB refusing every write
  // until it is reopened (and this build asserts if it is resumed or closed
  // then): so a change is refused before that, while kMinFreeBytes remain,
  // and taken again by itself once space returns.
  struct statvfs fs {};
  if (statvfs(dir_.c_str(), &fs) == 0 && uint64_t(fs.f_bavail) * fs.f_frsize < kMinFreeBytes) {
    ++write_errors_;
    return Error{dir_, 0,
                 "state store: only " + std::to_string(uint64_t(fs.f_bavail) * fs.f_frsize / 1024) +
                     " KiB free on its file system (vaned keeps " + std::to_string(kMinFreeBytes >> 20) +
                     " MiB for RocksDB); change not applied — free space and retry"};
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;  // on disk before anyone hears "ok"
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) {
    ++write_errors_;
    return Error{dir_, 0, "state store write failed, change not applied: " + st.ToString() +
                              (st.IsIOError() ? " (once the cause is fixed, restart vaned to write again)" : "")};
  }
  return std::nullopt;
}

uint64_t StateStore::cluster_revision() const {
  std::string v;
  return db_->Get(rocksdb::ReadOptions(), "meta/revision", &v).ok() ? std::stoull(v) : 0;
}

std::optional<std::string> StateStore::zone_meta(char kind, const std::string& zone) const {
  std::string v;
  if (!db_->Get(rocksdb::ReadOptions(), std::string(1, kind) + "/" + zone, &v).ok()) return std::nullopt;
  return v;
}

std::optional<Error> StateStore::put_zone_metas(char kind,
                                                const std::vector<std::pair<std::string, std::string>>& values) {
  rocksdb::WriteBatch batch;
  for (const auto& [zone, value] : values) batch.Put(std::string(1, kind) + "/" + zone, value);
  return write_synced(batch);
}

std::string StateStore::cluster_id() const {
  std::string v;
  return db_->Get(rocksdb::ReadOptions(), "meta/cluster", &v).ok() ? v : "";
}

std::vector<nlohmann::json> StateStore::history(size_t limit) const {
  std::vector<nlohmann::json> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekForPrev("j/\xff"); it->Valid() && it->key().starts_with("j/") && out.size() < limit; it->Prev()) {
    auto j = nlohmann::json::parse(it->value().ToString(), nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace vane::admin
