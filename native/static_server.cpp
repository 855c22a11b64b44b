#include "static_server.h"

// Debian's cpp-httplib is a compiled library built with TLS, zlib and brotli support; the
// header must see the same options or its structs (Request holds an SSL pointer) would not
// match the library's.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "serve_rules.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

using Clock = std::chrono::steady_clock;

// One client connection, owned by the reception while its next request head arrives and by a
// worker while that request is answered. Counts itself among the open connections.
struct Connection {
  Connection(int fd, Clock::time_point deadline, std::atomic<int>& open_count)
      : fd(fd), deadline(deadline), open_count(open_count) {
    ++open_count;
  }
  ~Connection() {
    ::close(fd);
    --open_count;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const int fd;
  std::string in;              // received and not yet answered: a request head, perhaps more
  size_t head_end = 0;         // just past the blank line that ends the head in `in`; 0 until then
  Clock::time_point deadline;  // for the whole head to arrive
  int served = 0;              // requests answered
  std::atomic<int>& open_count;
};
using ConnectionPtr = std::unique_ptr<Connection>;

bool has_head(Connection& c) {
  const size_t end = c.in.find("\r\n\r\n");
  c.head_end = end == std::string::npos ? 0 : end + 4;
  return c.head_end > 0;
}

// A short fixed answer for a connection we will not serve; sent without waiting, so a client
// that reads nothing cannot make us wait either.
void refuse(int fd, const char* status) {
  const std::string r = std::string("HTTP/1.1 ") + status +
                        "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n\r\n" +
                        std::string(status, 3) + "\n";
  (void)!::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int milliseconds_until(Clock::time_point t) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
}

void socket_address(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  auto* sa = reinterpret_cast<sockaddr*>(&a);
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return;
  ip = host;
  port = std::atoi(serv);
}

// httplib's side of a connection for one request. Reads come from the head the reception has
// already received, so a worker never waits for a client to send; reading past it (a body,
// which no GET or HEAD of a page has) fails and ends the connection. Writes wait at most
// `write_stall` for the client to take bytes, and all of them end by `response_timeout`.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(Connection& c, const ServeLimits& limits)
      : c_(c), stall_(limits.write_stall), deadline_(Clock::now() + limits.response_timeout) {}

  bool is_readable() const override { return pos_ < c_.head_end; }
  bool is_writable() const override { return wait_writable(); }
  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= c_.head_end) {
      overread_ = true;
      return -1;
    }
    size = std::min(size, c_.head_end - pos_);
    std::memcpy(ptr, c_.in.data() + pos_, size);
    pos_ += size;
    return static_cast<ssize_t>(size);
  }
  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::send(c_.fd, ptr + done, size - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable()) {
        continue;
      } else {
        return -1;
      }
    }
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { socket_address(c_.fd, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { socket_address(c_.fd, false, ip, port); }
  socket_t socket() const override { return c_.fd; }

  bool overread() const { return overread_; }

 private:
  bool wait_writable() const {
    const Clock::time_point until = std::min(Clock::now() + stall_, deadline_);
    pollfd p{c_.fd, POLLOUT, 0};
    return Clock::now() < until && ::poll(&p, 1, milliseconds_until(until)) == 1 && (p.revents & POLLOUT);
  }

  Connection& c_;
  const Clock::duration stall_;
  const Clock::time_point deadline_;
  size_t pos_ = 0;
  bool overread_ = false;
};

// What routing decided about the connection of the request a worker thread is answering.
struct Turn {
  bool routed = false;   // httplib parsed the request and passed it to route()
  bool close = false;    // the answer is the connection's last
};
thread_local Turn t_turn;

// httplib hands each accepted socket to a task queue; this one runs the task at once on the
// accepting thread. The task is process_and_close_socket (below), which only files the socket
// with the reception, so accepting never waits on a client.
class AtOnce final : public httplib::TaskQueue {
 public:
  explicit AtOnce(std::function<void()> on_shutdown) : on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { on_shutdown_(); }

 private:
  std::function<void()> on_shutdown_;
};

// A file descriptor shared by a response's content provider until the response is done.
struct OpenFile {
  explicit OpenFile(int fd) : fd(fd) {}
  ~OpenFile() { ::close(fd); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  const int fd;
};

// Why binding host:port failed, tried again by hand: httplib does not keep errno.
std::string bind_failure(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  std::string why;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    why = ::gai_strerror(rc);
  } else {
    const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
      const int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) err = errno;
      ::close(fd);
    }
    why = err != 0 ? std::strerror(err) : "cannot listen";
    ::freeaddrinfo(found);
  }
  if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
  return why;
}

// A request target as it may be printed: no control characters reach the terminal.
std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

}  // namespace

std::string host_and_port(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

class StaticServer::Server final : public httplib::Server {
 public:
  Server(const fs::path& root, const ServeLimits& limits);
  ~Server() override { stop_gate(); }

  int bind(const std::string& host, int port);

 private:
  bool process_and_close_socket(socket_t sock) override;
  HandlerResponse route(const httplib::Request& req, httplib::Response& res) const;

  void start_gate();
  void stop_gate();
  void reception();
  void receive(ConnectionPtr& c);
  void work();
  bool answer(Connection& c);
  void to_reception(ConnectionPtr c);
  void to_workers(ConnectionPtr c);

  const fs::path root_;
  const ServeLimits limits_;
  std::atomic<int> open_{0};
  std::mutex mutex_;
  std::condition_variable ready_cv_;
  std::vector<ConnectionPtr> arriving_;   // for the reception
  std::deque<ConnectionPtr> ready_;       // whole head received, for a worker
  std::set<int> busy_;                    // sockets that workers are answering
  bool stopping_ = false;
  int wake_[2] = {-1, -1};                // a pipe that wakes the reception's poll()
  std::vector<std::thread> threads_;
};

StaticServer::Server::Server(const fs::path& root, const ServeLimits& limits) : root_(root), limits_(limits) {
  // COOP + COEP make the page crossOriginIsolated (SharedArrayBuffer, wasm threads); CORP lets
  // an isolated page embed these same-origin files. no-cache keeps a browser from using a stale
  // copy without asking: the page's service worker does the offline caching.
  set_default_headers({{"Cross-Origin-Opener-Policy", "same-origin"},
                       {"Cross-Origin-Embedder-Policy", "require-corp"},
                       {"Cross-Origin-Resource-Policy", "same-origin"},
                       {"Cache-Control", "no-cache"},
                       {"X-Content-Type-Options", "nosniff"}});
  set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) { return route(req, res); });
  set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(std::to_string(res.status) + "\n", "text/plain; charset=utf-8");
  });
  set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), printable(req.target).c_str(), res.status);
  });
  // The Keep-Alive header httplib writes announces the limits the reception applies.
  set_keep_alive_max_count(static_cast<size_t>(limits.keep_alive_requests));
  set_keep_alive_timeout(std::max<time_t>(1, std::chrono::duration_cast<std::chrono::seconds>(limits.head_timeout).count()));
  // httplib's default sets SO_REUSEPORT, with which a second server binds the same port without
  // error and the kernel shares the connections between the two. SO_REUSEADDR alone still
  // allows a restart while the last run's connections linger in TIME_WAIT.
  set_socket_options([](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  new_task_queue = [this] {
    start_gate();
    return new AtOnce([this] { stop_gate(); });
  };
}

int StaticServer::Server::bind(const std::string& host, int port) {
  const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  if (bound < 0) throw std::runtime_error(host_and_port(host, port) + ": " + bind_failure(host, port));
  // httplib listens with a backlog of 5: the connections of a burst beyond it (a page loading
  // its files, a load test) would wait for the client to send its SYN again, a second later.
  ::listen(svr_sock_, SOMAXCONN);
  return bound;
}

httplib::Server::HandlerResponse StaticServer::Server::route(const httplib::Request& req,
                                                             httplib::Response& res) const {
  t_turn.routed = true;
  // httplib hands handlers the Request it goes on to read when it writes the response, as a
  // const reference to a non-const object.
  auto& request = const_cast<httplib::Request&>(req);
  // cpp-httplib compresses text responses on the fly, with brotli at its default (slowest)
  // quality when the browser accepts it: hundreds of milliseconds per script on a loaded
  // machine, longer than sending the bytes to a local browser. Dropping the request's
  // Accept-Encoding sends every file as it is.
  request.headers.erase("Accept-Encoding");
  // httplib's own reading of Range trusts the numbers and answers every range (500 ranges of a
  // file, 500 copies); byte_range() decides instead, and sets one range back below.
  request.ranges.clear();

  const bool get_or_head = req.method == "GET" || req.method == "HEAD";
  const std::string length = req.get_header_value("Content-Length");
  if (!get_or_head || req.has_header("Transfer-Encoding") || (!length.empty() && length != "0")) {
    // A body is never read, and would be taken for the next request: this answer is the last.
    request.headers.erase("Connection");
    request.headers.emplace("Connection", "close");
    t_turn.close = true;
  }
  if (!get_or_head) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    return HandlerResponse::Handled;
  }
  const auto path = decode_request_target(req.target);
  if (!path) {
    res.status = 400;
    return HandlerResponse::Handled;
  }
  const auto file = resolve_request_path(root_, *path);
  // O_NOFOLLOW: a file swapped for a link since it was resolved is not opened.
  const int fd = file ? ::open(file->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    res.status = 404;
    return HandlerResponse::Handled;
  }
  auto open_file = std::make_shared<OpenFile>(fd);
  const auto size = static_cast<uint64_t>(st.st_size);
  const ByteRange range = byte_range(req.get_header_value("Range"), size);
  if (range.kind == ByteRange::Unsatisfiable) {
    res.status = 416;
    res.set_header("Content-Range", "bytes */" + std::to_string(size));
    return HandlerResponse::Handled;
  }
  if (range.kind == ByteRange::Part)
    request.ranges = {{static_cast<ssize_t>(range.first), static_cast<ssize_t>(range.last)}};
  const std::string type(mime_type(*file));
  if (size == 0) {
    res.set_content("", type);
    return HandlerResponse::Handled;
  }
  res.set_content_provider(size, type, [open_file](size_t offset, size_t length, httplib::DataSink& sink) {
    char buf[64 * 1024];
    const ssize_t n = ::pread(open_file->fd, buf, std::min(length, sizeof buf), static_cast<off_t>(offset));
    return n > 0 && sink.write(buf, static_cast<size_t>(n));
  });
  return HandlerResponse::Handled;
}

bool StaticServer::Server::process_and_close_socket(socket_t sock) {
  if (open_ >= limits_.max_connections) {
    refuse(sock, "503 Service Unavailable");
    ::close(sock);
    return false;
  }
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
  // httplib writes a response's head and body apart: with Nagle's algorithm the body would wait
  // for the client's delayed ACK of the head, 40 ms a response on Linux.
  const int yes = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  to_reception(std::make_unique<Connection>(sock, Clock::now() + limits_.head_timeout, open_));
  return true;
}

void StaticServer::Server::start_gate() {
  stopping_ = false;
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error(std::strerror(errno));
  threads_.emplace_back([this] { reception(); });
  for (int i = 0; i < limits_.workers; ++i) threads_.emplace_back([this] { work(); });
}

void StaticServer::Server::stop_gate() {
  if (threads_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    // A response being written to a slow client ends now rather than at its deadline.
    for (int fd : busy_) ::shutdown(fd, SHUT_RDWR);
  }
  ready_cv_.notify_all();
  (void)!::write(wake_[1], "x", 1);
  for (auto& t : threads_) t.join();
  threads_.clear();
  arriving_.clear();
  ready_.clear();
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void StaticServer::Server::to_reception(ConnectionPtr c) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    arriving_.push_back(std::move(c));
  }
  (void)!::write(wake_[1], "x", 1);
}

void StaticServer::Server::to_workers(ConnectionPtr c) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.push_back(std::move(c));
  }
  ready_cv_.notify_one();
}

// Holds every connection that is waiting for its next request head, in one poll() loop.
void StaticServer::Server::reception() {
  std::vector<ConnectionPtr> waiting;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      for (auto& c : arriving_) waiting.push_back(std::move(c));
      arriving_.clear();
    }
    fds.assign(1, pollfd{wake_[0], POLLIN, 0});
    int timeout = -1;
    for (const auto& c : waiting) {
      fds.push_back(pollfd{c->fd, POLLIN, 0});
      const int t = milliseconds_until(c->deadline);
      timeout = timeout < 0 ? t : std::min(timeout, t);
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0) continue;
    char drain[64];
    if (fds[0].revents) while (::read(wake_[0], drain, sizeof drain) > 0) {}
    const auto now = Clock::now();
    for (size_t i = 0; i < waiting.size(); ++i) {
      ConnectionPtr& c = waiting[i];
      if (fds[i + 1].revents) {
        receive(c);
      } else if (now >= c->deadline) {
        // Silence after a response is an idle keep-alive connection; half a head is a client
        // too slow to be served.
        if (!c->in.empty()) refuse(c->fd, "408 Request Timeout");
        c.reset();
      }
    }
    waiting.erase(std::remove(waiting.begin(), waiting.end(), nullptr), waiting.end());
  }
}

void StaticServer::Server::receive(ConnectionPtr& c) {
  char buf[4096];
  const size_t room = limits_.head_bytes - std::min(limits_.head_bytes, c->in.size());
  const ssize_t n = room == 0 ? 0 : ::recv(c->fd, buf, std::min(room, sizeof buf), 0);
  if (n > 0) c->in.append(buf, static_cast<size_t>(n));
  if (has_head(*c)) {
    to_workers(std::move(c));
  } else if (c->in.size() >= limits_.head_bytes) {
    refuse(c->fd, "431 Request Header Fields Too Large");
    c.reset();
  } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    c.reset();   // the client closed, or the connection failed
  }
}

void StaticServer::Server::work() {
  for (;;) {
    ConnectionPtr c;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      c = std::move(ready_.front());
      ready_.pop_front();
      busy_.insert(c->fd);
    }
    const bool keep = answer(*c);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_.erase(c->fd);
    }
    if (!keep) continue;
    c->deadline = Clock::now() + limits_.head_timeout;
    if (has_head(*c)) {
      to_workers(std::move(c));   // the client sent its next request already
    } else {
      to_reception(std::move(c));
    }
  }
}

// Answers the request whose head `c` holds; whether the connection may carry another.
bool StaticServer::Server::answer(Connection& c) {
  t_turn = {};
  const bool last = ++c.served >= limits_.keep_alive_requests;
  ConnectionStream strm(c, limits_);
  bool client_closes = false, written = false;
  try {
    written = process_request(strm, last, client_closes, nullptr);
  } catch (...) {
    // httplib failed inside its own answer (it throws on some malformed ranges): this
    // connection ends, the server goes on.
  }
  c.in.erase(0, c.head_end);
  c.head_end = 0;
  return written && !client_closes && !last && !strm.overread() && t_turn.routed && !t_turn.close;
}

StaticServer::StaticServer(const fs::path& root, const ServeLimits& limits)
    : server_(std::make_unique<Server>(root, limits)) {}
StaticServer::~StaticServer() = default;
int StaticServer::bind(const std::string& host, int port) { return server_->bind(host, port); }
bool StaticServer::listen() { return server_->listen_after_bind(); }
void StaticServer::stop() { server_->stop(); }

}  // namespace tagnet::native
