// vanectl: the admin CLI. Each verb is one request on the admin socket;
// tables for people, --json for scripts, non-zero exit on any error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "client.h"
#include "config.h"

using nlohmann::json;

namespace {

// The socket of the config vaned would use when started here: ./vane.yaml,
// else the embedded demo's.
std::string default_socket() {
  if (std::filesystem::exists("vane.yaml")) {
    auto cfg = vane::load_config("vane.yaml");
    if (cfg) return cfg->admin_socket;
  }
  return std::string(vane::kDemoStateDir) + "/admin.sock";
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    printf("%s\n", line.c_str());
  }
}

std::string str(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

void print_status(const json& r) {
  std::string listen;
  for (const auto& l : r.value("listen", json::array())) listen += (listen.empty() ? "" : " ") + str(l);
  printf("vaned %s, pid %s, up %ss, %s workers, generation %s, listening on %s\n", str(r["version"]).c_str(),
         str(r["pid"]).c_str(), str(r["uptime_s"]).c_str(), str(r["workers"]).c_str(), str(r["generation"]).c_str(),
         listen.c_str());
  printf("config %s\n\n", str(r["config"]).c_str());
  std::vector<std::vector<std::string>> rows{{"ZONE", "SERIAL", "RECORDS", "FILE"}};
  for (const auto& z : r.value("zones", json::array()))
    rows.push_back({str(z["name"]), str(z["serial"]), str(z["records"]), str(z["file"])});
  print_table(rows);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vanectl — control a running vaned over its admin socket"};
  app.require_subcommand(1);
  std::string socket_path;
  bool as_json = false;
  app.add_option("-s,--socket", socket_path, "admin socket (default: admin.socket of ./vane.yaml, else the demo's)");
  app.add_flag("--json", as_json, "print the raw JSON answer");
  auto* status = app.add_subcommand("status", "zones, serials, record counts, listeners, generation");
  auto* reload =
      app.add_subcommand("reload", "re-read the config and zones; a bad one is refused, the old keeps serving");
  for (auto* sub : {status, reload}) sub->add_flag("--json", as_json, "print the raw JSON answer");
  CLI11_PARSE(app, argc, argv);
  if (socket_path.empty()) socket_path = default_socket();

  json req;
  if (status->parsed()) req = {{"cmd", "status"}};
  if (reload->parsed()) req = {{"cmd", "reload"}};
  auto r = vane::admin::call(socket_path, req);
  if (!r) {
    fprintf(stderr, "vanectl: %s\n", r.error().to_string().c_str());
    return 2;
  }
  const json& answer = *r;
  bool ok = answer.value("ok", false);
  if (as_json) {
    printf("%s\n", answer.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return ok ? 0 : 1;
  }
  if (!ok) {
    fprintf(stderr, "vanectl: %s\n", str(answer.value("error", json("unknown error"))).c_str());
    return 1;
  }
  if (status->parsed()) print_status(answer);
  if (reload->parsed()) printf("%s\n", str(answer.value("message", json(""))).c_str());
  return 0;
}
