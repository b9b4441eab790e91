// JSON-lines admin socket on libuv. Requests on one connection are answered
// strictly in order, one at a time; a slow command (reload) holds back only
// its own connection.
#include "admin_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace vane::admin {

struct AdminSocket::Conn {
  uv_pipe_t pipe{};
  const Handler* handler = nullptr;
  std::unordered_set<Conn*>* registry = nullptr;
  Peer peer;
  std::string in;
  bool busy = false;        // a request is with the handler
  bool in_process = false;  // process() is on the stack
  bool discarding = false;  // skipping the rest of an oversize line
  bool reading = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

namespace {

using Conn = AdminSocket::Conn;

struct WriteReq {
  uv_write_t req;
  std::string data;
};

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

void close_conn(Conn* c) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->pipe))) return;
  *c->alive = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), [](uv_handle_t* h) {
    auto* conn = static_cast<Conn*>(h->data);
    if (conn->registry) conn->registry->erase(conn);
    delete conn;
  });
}

void send(Conn* c, const Json& j) {
  auto* w = new WriteReq{{}, dump(j)};
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  w->req.data = w;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1, [](uv_write_t* req, int status) {
    auto* wr = static_cast<WriteReq*>(req->data);
    if (status < 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(req->handle)))
      close_conn(static_cast<Conn*>(req->handle->data));
    delete wr;
  });
  if (rc < 0) {
    delete w;
    close_conn(c);
  }
}

void on_alloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

void start_reading(Conn* c);

// Hands complete lines to the handler, one at a time.
void process(Conn* c) {
  c->in_process = true;
  while (!c->busy && *c->alive) {
    size_t nl = c->in.find('\n');
    if (nl == std::string::npos) {
      if (c->in.size() > kMaxRequestLine) {
        if (!c->discarding)
          send(c, error_reply("request line longer than " + std::to_string(kMaxRequestLine) + " bytes"));
        c->discarding = true;
        c->in.clear();
      }
      break;
    }
    std::string line = c->in.substr(0, nl);
    c->in.erase(0, nl + 1);
    if (c->discarding) {  // the tail of an oversize line
      c->discarding = false;
      continue;
    }
    if (line.size() > kMaxRequestLine) {
      send(c, error_reply("request line longer than " + std::to_string(kMaxRequestLine) + " bytes"));
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Json req;
    try {
      req = Json::parse(line);
    } catch (const Json::parse_error& e) {
      send(c, error_reply(std::string("malformed JSON request: ") + e.what()));
      continue;
    }
    if (!req.is_object()) {
      send(c, error_reply("a request is a JSON object, e.g. {\"cmd\":\"status\"}"));
      continue;
    }
    c->busy = true;
    std::shared_ptr<bool> alive = c->alive;
    (*c->handler)(req, c->peer, [c, alive](Json reply) {
      if (!*alive) return;
      send(c, reply);
      c->busy = false;
      if (!c->in_process) process(c);
    });
  }
  c->in_process = false;
  if (*c->alive && !c->reading && c->in.size() < kMaxRequestLine) start_reading(c);
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  if (n > 0) c->in.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0) {
    close_conn(c);
    return;
  }
  // A client that keeps sending while its request is busy is not read further.
  if (c->in.size() > 4 * kMaxRequestLine && c->busy) {
    uv_read_stop(s);
    c->reading = false;
  }
  if (!c->busy) process(c);
}

void start_reading(Conn* c) {
  c->reading = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read) == 0;
}

}  // namespace

AdminSocket::AdminSocket(uv_loop_t* loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}

AdminSocket::~AdminSocket() {
  // Connections still open (the loop was never run to close them) forget us.
  for (Conn* c : conns_) c->registry = nullptr;
}

std::optional<Error> AdminSocket::listen(const std::string& path) {
  sockaddr_un sun{};
  if (path.empty() || path.size() >= sizeof sun.sun_path)
    return Error{path, 0, "admin socket path must be 1.." + std::to_string(sizeof sun.sun_path - 1) + " bytes"};
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return Error{path, 0, "cannot create directory " + parent.string() + ": " + ec.message()};
    chmod(parent.c_str(), 0750);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error{path, 0, "exists and is not a socket; refusing to replace it"};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    int err = errno;
    ::close(fd);
    if (rc == 0) return Error{path, 0, "another vaned is answering on this admin socket; not taking it over"};
    if (err != ECONNREFUSED)
      return Error{path, 0, std::string("cannot check the existing admin socket: ") + strerror(err)};
    unlink(path.c_str());  // stale, from a run that did not stop cleanly
  }
  uv_pipe_init(loop_, &pipe_, 0);
  pipe_.data = this;
  listening_ = true;
  if (int rc = uv_pipe_bind(&pipe_, path.c_str()); rc < 0)
    return Error{path, 0, std::string("cannot bind admin socket: ") + uv_strerror(rc)};
  path_ = path;
  if (chmod(path.c_str(), 0660) != 0)
    return Error{path, 0, std::string("cannot chmod admin socket: ") + strerror(errno)};
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&pipe_), 64, on_connection); rc < 0)
    return Error{path, 0, std::string("cannot listen on admin socket: ") + uv_strerror(rc)};
  return std::nullopt;
}

void AdminSocket::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<AdminSocket*>(server->data);
  if (status < 0) return;
  auto* c = new Conn;
  c->handler = &self->handler_;
  c->registry = &self->conns_;
  self->conns_.insert(c);
  uv_pipe_init(self->loop_, &c->pipe, 0);
  c->pipe.data = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    close_conn(c);
    return;
  }
  uv_os_fd_t fd;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd) == 0 &&
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    c->peer.uid = cred.uid;
    c->peer.pid = cred.pid;
  }
  start_reading(c);
}

void AdminSocket::close() {
  if (!listening_) return;
  listening_ = false;
  for (Conn* c : std::vector<Conn*>(conns_.begin(), conns_.end())) close_conn(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), nullptr);
  if (!path_.empty()) unlink(path_.c_str());
}

}  // namespace vane::admin
