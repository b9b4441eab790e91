// vaned's admin commands: what each admin-socket request does to the running
// server. Runs on the main loop; part of the vaned executable, so that the
// server library never depends on admin/.
#pragma once

#include "admin_socket.h"
#include "server.h"

namespace vane::server {

void handle_admin(Server& srv, const admin::Json& request, const admin::Peer& peer, admin::Reply reply);

}  // namespace vane::server
