// The static file server behind `tagnet serve`: the files of one folder, with the headers a page
// needs to be crossOriginIsolated, and limits that keep a few abusive clients from taking it
// from everyone else.
//
//   StaticServer server("web/dist");
//   const int port = server.bind("127.0.0.1", 8080);   // throws "127.0.0.1:8080: address already in use"
//   std::thread stopper([&] { wait_for_ctrl_c(); server.stop(); });
//   server.listen();
//
// How a connection is handled: one thread accepts; one "reception" thread holds every open
// connection while its request head (request line and headers) arrives, so a client that
// connects and sends nothing, or one byte a second, costs a socket and a few bytes but never a
// worker; a worker takes a connection only once its whole head is in memory, answers that one
// request (paths and ranges by serve_rules.h) and hands a keep-alive connection back.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace tagnet::native {

struct ServeLimits {
  // Open connections, idle or busy; the next one gets a 503 at once. A page opens a handful
  // (browsers use six per host), so 256 leaves room for many tabs and a load test.
  int max_connections = 256;
  // Threads that answer requests. They only ever wait on a client that reads its response
  // slowly, so a few beyond the cores are plenty.
  int workers = 16;
  // A request's line and headers together; a browser sends under 2 KiB.
  size_t head_bytes = 16 * 1024;
  // How long a connection may take to send a whole request head, from its opening or from the
  // previous response (the keep-alive timeout, also announced in Keep-Alive).
  std::chrono::milliseconds head_timeout{5000};
  int keep_alive_requests = 100;   // per connection; then it is closed
  // A response may wait this long for the client to take more bytes, and take this long in all.
  std::chrono::milliseconds write_stall{5000};
  std::chrono::milliseconds response_timeout{30000};
};

// "127.0.0.1:8080", "[::1]:8080".
std::string host_and_port(const std::string& host, int port);

class StaticServer {
 public:
  // Serves the files under `root` (a folder) from "/"; requests are logged to stderr.
  explicit StaticServer(const std::filesystem::path& root, const ServeLimits& limits = {});
  ~StaticServer();

  // Listens on host:port (port 0: any free port) and returns the port. A port that another
  // program (or another `tagnet serve`) holds is an error, thrown as "HOST:PORT: reason".
  int bind(const std::string& host, int port);
  // Serves until stop(); false when the listening socket failed.
  bool listen();
  // Safe from any thread but not from a signal handler.
  void stop();

 private:
  class Server;
  std::unique_ptr<Server> server_;
};

}  // namespace tagnet::native
