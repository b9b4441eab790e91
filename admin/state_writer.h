// Where an admin change or a health verdict goes to become durable: the
// node's own RocksDB (LocalWriter), or the etcd cluster (ClusterStore, with
// RocksDB as its cache). The control plane only ever talks to this.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "state_store.h"

namespace vane::admin {

class StateWriter {
 public:
  // Runs on the main loop once the change is durable (and, in a cluster,
  // applied here), or with the reason it is not. `seq` is its journal
  // sequence (in a cluster: the etcd revision), 0 when nothing was written
  // because the state already was what the change asked for.
  using Done = std::function<void(std::optional<Error> error, uint64_t seq)>;
  virtual ~StateWriter() = default;
  virtual void commit(std::vector<StateStore::Change> changes, nlohmann::json journal, Done done) = 0;
  // Several independent changes, each done as by commit(). Locally they are
  // one synced write: a region's thousands of endpoints going down at once
  // are recorded in one fsync, not one each (1 300 a second here).
  struct Entry {
    std::vector<StateStore::Change> changes;
    nlohmann::json journal;
    Done done;
  };
  virtual void commit_all(std::vector<Entry> entries) {
    for (auto& e : entries) commit(std::move(e.changes), std::move(e.journal), std::move(e.done));
  }
};

// Single node: one synced RocksDB write, done before commit() returns.
class LocalWriter final : public StateWriter {
 public:
  explicit LocalWriter(StateStore& store) : store_(store) {}
  void commit(std::vector<StateStore::Change> changes, nlohmann::json journal, Done done) override {
    auto err = store_.commit(changes, std::move(journal));
    done(err, err ? 0 : store_.last_seq());
  }
  void commit_all(std::vector<Entry> entries) override {
    std::vector<StateStore::Entry> batch;
    batch.reserve(entries.size());
    for (auto& e : entries) batch.emplace_back(std::move(e.changes), std::move(e.journal));
    auto err = store_.commit_all(std::move(batch));
    uint64_t seq = store_.last_seq() - entries.size();
    for (auto& e : entries) e.done(err, err ? 0 : ++seq);
  }

 private:
  StateStore& store_;
};

}  // namespace vane::admin
