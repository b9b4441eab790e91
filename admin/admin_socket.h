// The admin socket: a Unix stream socket speaking JSON lines (one request
// object per line, one response object per line, in order). It knows nothing
// of what the commands do; a Handler answers each request, possibly later
// (a reload runs off the loop). Lives on the daemon's main libuv loop.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>

#include "error.h"

namespace vane::admin {

using Json = nlohmann::json;

// Who is asking: from SO_PEERCRED on the admin socket, or the token's name
// on the HTTP API (then uid and pid are unset); recorded in the journal.
struct Peer {
  uid_t uid = static_cast<uid_t>(-1);
  pid_t pid = 0;
  std::string token;  // the API token's name
  // Journal fields: {"uid", "pid"} or {"by": token, "via": "api"}.
  void stamp(Json& j) const {
    if (token.empty()) {
      j["uid"] = uid;
      j["pid"] = pid;
    } else {
      j["by"] = token;
      j["via"] = "api";
    }
  }
  std::string describe() const {
    return token.empty() ? "uid " + std::to_string(uid) + " pid " + std::to_string(pid) : "API token " + token;
  }
};

using Reply = std::function<void(Json)>;
using Handler = std::function<void(const Json& request, const Peer& peer, Reply reply)>;

// A longer request line is answered with an error and skipped.
inline constexpr size_t kMaxRequestLine = 64 * 1024;

inline Json error_reply(const std::string& message) {
  return Json{{"ok", false}, {"error", message}};
}
// The same, with a "code" the HTTP API maps to a status: "not_found" (404,
// an unknown zone, record or endpoint), "unavailable" (503, the state store
// or the cluster could not take the change; nothing was applied).
inline Json error_reply(const std::string& message, const char* code) {
  return Json{{"ok", false}, {"error", message}, {"code", code}};
}

class AdminSocket {
 public:
  AdminSocket(uv_loop_t* loop, Handler handler);
  ~AdminSocket();
  AdminSocket(const AdminSocket&) = delete;
  AdminSocket& operator=(const AdminSocket&) = delete;

  // Binds `path` with mode 0660. A stale socket left by a crashed run is
  // replaced; a live one (another vaned answers on it) or a file that is not
  // a socket is an error.
  std::optional<Error> listen(const std::string& path);
  // Stops accepting, closes every connection and removes the socket file.
  void close();

  struct Conn;

 private:
  static void on_connection(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  Handler handler_;
  uv_pipe_t pipe_{};
  bool listening_ = false;
  std::string path_;
  std::unordered_set<Conn*> conns_;
};

}  // namespace vane::admin
