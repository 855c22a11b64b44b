// `tagnet serve`: a static file server for the web page (web/dist) that sends the headers a
// page needs to be crossOriginIsolated, so the browser allows SharedArrayBuffer and the
// threaded WebAssembly build runs.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace tagnet::native {

struct ServeArgs {
  std::string root = "web/dist";
  std::string host = "127.0.0.1";
  int port = 8080;   // 0: any free port (the address is printed)
};

// Registers `serve [ROOT] [--host H] [--port P]` on `app`, filling `args`.
CLI::App* add_serve_command(CLI::App& app, ServeArgs& args);

// Serves the files under `root` until SIGINT or SIGTERM. Prints "serving ROOT on
// http://HOST:PORT/" on stdout once the socket listens. Returns the process exit status.
int cmd_serve(const std::string& root, const std::string& host, int port);

}  // namespace tagnet::native
