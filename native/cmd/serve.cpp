// `tagnet serve`: a static file server for the web page (web/dist) that sends the headers a
// page needs to be crossOriginIsolated, so the browser allows SharedArrayBuffer and the
// threaded WebAssembly build runs.

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
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "commands.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

// Serves the files under `root` until SIGINT or SIGTERM. Prints "serving ROOT on
// http://HOST:PORT/" on stdout once the socket listens.
int serve_command(const std::string& root, const std::string& host, int port) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    std::fprintf(stderr, "tagnet: error: %s: not a folder\n", root.c_str());
    return 1;
  }
  const std::string dir = fs::canonical(root).string();

  httplib::Server server;
  // COOP + COEP make the page crossOriginIsolated (SharedArrayBuffer, wasm threads); CORP lets
  // an isolated page embed these same-origin files. no-cache keeps a browser from using a stale
  // copy without asking: the page's service worker does the offline caching.
  server.set_default_headers({{"Cross-Origin-Opener-Policy", "same-origin"},
                              {"Cross-Origin-Embedder-Policy", "require-corp"},
                              {"Cross-Origin-Resource-Policy", "same-origin"},
                              {"Cache-Control", "no-cache"},
                              {"X-Content-Type-Options", "nosniff"}});
  for (const auto& [ext, mime] : std::initializer_list<std::pair<const char*, const char*>>{
           {"html", "text/html; charset=utf-8"},
           {"js", "text/javascript; charset=utf-8"},
           {"mjs", "text/javascript; charset=utf-8"},
           {"css", "text/css; charset=utf-8"},
           {"json", "application/json"},
           {"webmanifest", "application/manifest+json"},
           {"wasm", "application/wasm"},
           {"tagnet", "application/octet-stream"},
           {"svg", "image/svg+xml"},
           {"png", "image/png"},
           {"jpg", "image/jpeg"},
           {"jpeg", "image/jpeg"},
           {"ico", "image/x-icon"},
           {"txt", "text/plain; charset=utf-8"}})
    server.set_file_extension_and_mimetype_mapping(ext, mime);
  if (!server.set_mount_point("/", dir)) {
    std::fprintf(stderr, "tagnet: error: %s: cannot serve this folder\n", dir.c_str());
    return 1;
  }
  // cpp-httplib compresses text responses on the fly, with brotli at its default (slowest)
  // quality when the browser accepts it: hundreds of milliseconds per script on a loaded
  // machine, longer than sending the bytes to a local browser. Dropping the request's
  // Accept-Encoding sends every file as it is. (The Request is a non-const object that the
  // handler sees as const.)
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(std::to_string(res.status) + "\n", "text/plain; charset=utf-8");
  });
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });

  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    std::fprintf(stderr, "tagnet: error: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }

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

  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::printf("serving %s on http://%s:%d/\n", dir.c_str(), shown_host.c_str(), bound);
  std::fflush(stdout);
  const bool ok = server.listen_after_bind() || signalled;
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
