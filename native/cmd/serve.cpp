// `tagnet serve`: a static file server for the web page (web/dist) that sends the headers a
// page needs to be crossOriginIsolated, so the browser allows SharedArrayBuffer and the
// threaded WebAssembly build runs.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "commands.h"
#include "static_server.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

// Serves the files under `root` until SIGINT or SIGTERM. Prints "serving ROOT on
// http://HOST:PORT/" on stdout once the socket listens; a port in use is thrown as an error.
int serve_command(const std::string& root, const std::string& host, int port) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    std::fprintf(stderr, "tagnet: error: %s: not a folder\n", root.c_str());
    return 1;
  }
  const std::string dir = fs::canonical(root).string();
  StaticServer server(dir);
  const int bound = server.bind(host, port);

  // Ctrl-C and SIGTERM stop the server from a thread of their own: stop() is not safe to call
  // from a signal handler. The mask is set before any thread starts so that all inherit it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::atomic<bool> signalled{false};
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    server.stop();
  });

  std::printf("serving %s on http://%s/\n", dir.c_str(), host_and_port(host, bound).c_str());
  std::fflush(stdout);
  const bool ok = server.listen() || signalled;
  // The listener may have failed on its own: wake the stopper so it can be joined.
  if (!signalled) pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  if (!ok) std::fprintf(stderr, "tagnet: error: the server stopped with an error\n");
  return ok ? 0 : 1;
}

}  // namespace

Command add_serve(CLI::App& app) {
  struct Args {
    std::string root = "web/dist";
    std::string host = "127.0.0.1";
    int port = 8080;   // 0: any free port (the address is printed)
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("serve", "Serve the web page (a folder) with the headers wasm threads need");
  c->add_option("root", a->root, "Folder to serve")->capture_default_str();
  c->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  c->add_option("--port", a->port, "Port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  return {c, [a] { return serve_command(a->root, a->host, a->port); }};
}

}  // namespace tagnet::native
