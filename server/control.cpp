#include "control.h"

#include <unistd.h>

#include <cmath>

#include "log.h"

namespace vane::server {

namespace {

admin::Json status(const Server& srv) {
  auto snap = srv.snapshot();
  admin::Json zones = admin::Json::array();
  for (const auto& z : snap->zones())
    zones.push_back({{"name", z->origin_text()},
                     {"serial", z->serial()},
                     {"records", z->record_count()},
                     {"names", z->node_count()},
                     {"file", z->file()}});
  return {{"ok", true},
          {"version", VANE_VERSION},
          {"pid", getpid()},
          {"uptime_s", std::lround(srv.uptime_s())},
          {"workers", srv.threads()},
          {"generation", snap->generation},
          {"listen", srv.listen()},
          {"config", srv.config_path()},
          {"zones", zones}};
}

}  // namespace

void handle_admin(Server& srv, const admin::Json& request, const admin::Peer& peer, admin::Reply reply) {
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return reply(admin::error_reply("request has no \"cmd\" string; known: status, reload"));
  const std::string& name = cmd->get_ref<const std::string&>();
  // Fields are checked, never passed through: no request names a path.
  for (const auto& [key, value] : request.items())
    if (key != "cmd") return reply(admin::error_reply("unknown field '" + key + "' for " + name));
  if (name == "status") return reply(status(srv));
  if (name == "reload") {
    VANE_INFO("admin: reload requested by uid %d pid %d", int(peer.uid), int(peer.pid));
    srv.reload_async([reply](const ReloadOutcome& o) {
      reply(o.ok ? admin::Json{{"ok", true}, {"message", o.message}} : admin::error_reply(o.message));
    });
    return;
  }
  reply(admin::error_reply("unknown cmd '" + name + "'; known: status, reload"));
}

}  // namespace vane::server
