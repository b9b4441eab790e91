// libFuzzer: the admin socket's requests, one JSON object per line, through
// every verb's field checks into the real control plane (a running Server
// and its RocksDB state store on tmpfs, so synced writes stay cheap). Every
// reply must be {"ok":true,...} or {"ok":false,"error":"..."}. `reload` is
// left out: it completes on the main loop, which the harness does not run.
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "control.h"
#include "fixtures.h"
#include "state_writer.h"

namespace {

std::string failback_manual(std::string rec) {  // so that the failback verb reaches its checks
  return rec.insert(rec.find("    endpoints:"), "    failback: manual\n");
}

const std::string kConfig = "listen: [\"127.0.0.1:0\"]\nthreads: 1\nzones: [{ name: example.com, file: inline }]\n"
                            "records:\n" + vane::test::www_weighted(false) + failback_manual(vane::test::app_failover()) +
                            "  - name: api.example.com\n    type: A\n    policy: weighted\n    endpoints:\n"  // regions
                            "      - { name: e, address: 192.0.2.30, region: us-east-1 }\n"
                            "      - { name: w, address: 198.51.100.30, region: us-west-2 }\n";

struct Fixture {
  std::unique_ptr<vane::admin::StateStore> store;
  std::unique_ptr<vane::server::Server> srv;
  std::unique_ptr<vane::admin::LocalWriter> writer;
  std::unique_ptr<vane::server::Control> control;
  Fixture() {
    char dir[] = "/dev/shm/vane-fuzz-admin-XXXXXX";
    if (!mkdtemp(dir)) abort();
    auto cfg = vane::parse_config(kConfig, "fuzz.yaml", "");
    if (!cfg) abort();
    cfg->zones[0].text = "$ORIGIN example.com.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 60\n@ 300 IN NS ns\n";
    cfg->state_dir = dir;
    auto s = vane::admin::StateStore::open(dir);
    if (!s) abort();
    store = s.take();
    srv = std::make_unique<vane::server::Server>(cfg.take(), [] { return vane::parse_config(kConfig, "x", ""); });
    writer = std::make_unique<vane::admin::LocalWriter>(*store);
    control = std::make_unique<vane::server::Control>(*srv, *store, *writer, nullptr);
    if (control->overlay() || srv->start(uv_default_loop())) abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  while (std::getline(lines, line)) {
    auto req = nlohmann::json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object()) continue;  // the socket answers these itself
    if (auto cmd = req.find("cmd"); cmd != req.end() && cmd->is_string() && *cmd == "reload") continue;
    // The journal only grows here (never restarted): reading 10 000 entries a
    // run would make every later run slower. Its limits are checked anyway.
    if (auto limit = req.find("limit"); limit != req.end() && limit->is_number_integer() && *limit > 100) *limit = 100;
    bool replied = false;
    f.control->handle(req, vane::admin::Peer{0, 1, req.size() % 2 ? "ci" : ""}, [&](const nlohmann::json& r) {
      replied = true;
      auto ok = r.find("ok");
      if (ok == r.end() || !ok->is_boolean()) abort();
      if (!ok->get<bool>() && (!r.contains("error") || !r["error"].is_string())) abort();
    });
    if (!replied) abort();
  }
  return 0;
}
