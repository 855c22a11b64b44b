// `tagnet serve` against the abuse an outside review tried: paths out of the folder, methods,
// Range requests that multiply a response, clients that connect and send nothing (or a byte at
// a time), a port in use. The rules are tested as pure functions first, then the running
// server over loopback, each exchange bounded in time.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_run.h"
#include "serve_rules.h"

namespace fs = std::filesystem;
using namespace tagnet::native;
using Clock = std::chrono::steady_clock;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// DIR/www is served. Next to it: a secret, a folder whose name extends www's, and links from
// inside www to each.
struct Site {
  fs::path dir, root;
  explicit Site(const std::string& name) : dir(tagnet::cli::cli_temp_dir(name)), root(dir / "www") {
    write_file(root / "index.html", "<!doctype html><title>tagnet</title>");
    write_file(root / "app.js", "console.log('tagnet');");
    write_file(root / "worker.mjs", "export {};");
    write_file(root / "tagnet.wasm", std::string("\0asm\1\0\0\0", 8));
    write_file(root / "style.css", "body{}");
    write_file(root / "model.tagnet", std::string(1000, 'm'));
    write_file(root / "meta.json", "{}");
    write_file(root / "pics/a.png", "png");
    write_file(root / "pics/b.JPG", "jpg");
    write_file(root / "pics/index.html", "pictures");
    write_file(root / "empty.txt", "");
    write_file(dir / "secret.txt", "SECRET");
    write_file(dir / "www2/inside.txt", "SECRET2");
    fs::create_symlink("app.js", root / "alias.js");
    fs::create_symlink("../secret.txt", root / "out.txt");
    fs::create_symlink(dir, root / "up");
    fs::create_symlink("../www2/inside.txt", root / "prefix.txt");
  }
};

TEST(ServeRules, DecodeRequestTarget) {
  EXPECT_EQ(decode_request_target("/a%20b.js?x=%2f"), "/a b.js");
  EXPECT_EQ(decode_request_target("/%2e%2e/x"), "/../x");   // decoded; resolving refuses it
  EXPECT_EQ(decode_request_target("/%252e%252e/x"), "/%2e%2e/x");   // once, not twice
  for (const char* t : {"/..%2fx", "/..%2Fx", "/a%5cb", "/index.html%00.png", "/%zz", "/%2", "/%", "x", "", "?/a",
                        "http://host/a"})
    EXPECT_EQ(decode_request_target(t), std::nullopt) << t;
}

TEST(ServeRules, ResolveStaysInTheFolder) {
  const Site s("serve_resolve");
  const fs::path real = fs::canonical(s.root);
  EXPECT_EQ(resolve_request_path(s.root, "/"), real / "index.html");
  EXPECT_EQ(resolve_request_path(s.root, "/app.js"), real / "app.js");
  EXPECT_EQ(resolve_request_path(s.root, "/pics/"), real / "pics/index.html");
  EXPECT_EQ(resolve_request_path(s.root, "/pics/a.png"), real / "pics/a.png");
  // Links are followed while the real file is inside, however the way there goes.
  EXPECT_EQ(resolve_request_path(s.root, "/alias.js"), real / "app.js");
  EXPECT_EQ(resolve_request_path(s.root, "/up/www/app.js"), real / "app.js");
  for (const std::string& p : std::vector<std::string>{
           "/../secret.txt", "/pics/../app.js", "/./app.js", "//app.js", "/pics//a.png", "/..", "/pics/..",
        std::string("/index.html\0.png", 16), std::string("/app.js\0", 8), "/pics\\..\\..\\secret.txt",
        "/..\\secret.txt", "/out.txt", "/up/secret.txt", "/prefix.txt", "/pics", "/missing.js",
        "/%2e%2e/secret.txt", "", "app.js"})
    EXPECT_EQ(resolve_request_path(s.root, p), std::nullopt) << p;
  EXPECT_EQ(resolve_request_path(s.dir / "missing", "/"), std::nullopt);
}

TEST(ServeRules, MimeTypeFromTheFileName) {
  EXPECT_EQ(mime_type("a/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(mime_type("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_type("w.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_type("t.wasm"), "application/wasm");
  EXPECT_EQ(mime_type("s.css"), "text/css; charset=utf-8");
  EXPECT_EQ(mime_type("p.png"), "image/png");
  EXPECT_EQ(mime_type("p.JPG"), "image/jpeg");
  EXPECT_EQ(mime_type("m.json"), "application/json");
  EXPECT_EQ(mime_type("m.tagnet"), "application/octet-stream");
  EXPECT_EQ(mime_type("index.html.png"), "image/png");
  EXPECT_EQ(mime_type("Makefile"), "application/octet-stream");
}

TEST(ServeRules, ByteRangeIsOneRangeAtMost) {
  using R = ByteRange;
  auto is = [](R r, R::Kind k, uint64_t first = 0, uint64_t last = 0) {
    return r.kind == k && (k != R::Part || (r.first == first && r.last == last));
  };
  EXPECT_TRUE(is(byte_range("bytes=0-99", 1000), R::Part, 0, 99));
  EXPECT_TRUE(is(byte_range("bytes=900-", 1000), R::Part, 900, 999));
  EXPECT_TRUE(is(byte_range("bytes=0-5000", 1000), R::Part, 0, 999));
  EXPECT_TRUE(is(byte_range("bytes=-100", 1000), R::Part, 900, 999));
  EXPECT_TRUE(is(byte_range("bytes=-5000", 1000), R::Part, 0, 999));
  EXPECT_TRUE(is(byte_range("bytes=1000-", 1000), R::Unsatisfiable));
  EXPECT_TRUE(is(byte_range("bytes=-0", 1000), R::Unsatisfiable));
  EXPECT_TRUE(is(byte_range("bytes=0-", 0), R::Unsatisfiable));
  for (const char* h : {"", "bytes=0-1,2-3", "bytes=0-,0-,0-", "items=0-1", "bytes=5-2", "bytes=x-1", "bytes=1",
                        "bytes=99999999999999999999-", "bytes=--1"})
    EXPECT_TRUE(is(byte_range(h, 1000), R::Whole)) << h;
}

// ---- The server, over loopback ----

// `tagnet serve ROOT --port 0 ARGS` as a child process, stopped with SIGTERM at the end.
class Served {
 public:
  explicit Served(const fs::path& root) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      ::execl(TAGNET_BIN, TAGNET_BIN, "serve", root.c_str(), "--port", "0", nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    // "serving ROOT on http://127.0.0.1:PORT/"
    std::string line;
    char c;
    pollfd p{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 5000) == 1 && ::read(out[0], &c, 1) == 1) line += c;
    ::close(out[0]);
    const size_t colon = line.rfind(':');
    port = colon == std::string::npos ? 0 : std::atoi(line.c_str() + colon + 1);
    EXPECT_GT(port, 0) << line;
  }
  ~Served() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  int port = 0;

 private:
  pid_t pid_ = -1;
};

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

struct Reply {
  int status = 0;   // 0: no answer in time
  std::string head, body;
  bool has(const std::string& header_line) const { return head.find("\r\n" + header_line + "\r\n") != std::string::npos; }
};

// Reads one response (head, then Content-Length bytes unless `head_only`) within `seconds`;
// bytes past it (the next pipelined response) are kept in `*pending` for the next call.
Reply read_reply(int fd, double seconds = 3, bool head_only = false, std::string* pending = nullptr) {
  std::string own;
  std::string& in = pending ? *pending : own;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  size_t head_end = std::string::npos, want = std::string::npos;
  for (;;) {
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      const size_t cl = in.find("\r\nContent-Length: ");
      want = head_end + 4 + (head_only || cl > head_end ? 0 : std::stoul(in.substr(cl + 18)));
    }
    if (in.size() >= want) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    char buf[65536];
    ssize_t n = 0;
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1 || (n = ::recv(fd, buf, sizeof buf, 0)) <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  Reply r;
  if (head_end == std::string::npos) return r;
  r.head = in.substr(0, head_end + 2);
  r.body = in.substr(head_end + 4, want - head_end - 4);
  r.status = std::atoi(in.c_str() + 9);
  in.erase(0, std::min(want, in.size()));
  return r;
}

bool send_all(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

Reply request(int port, const std::string& method, const std::string& target, const std::string& headers = "",
              double seconds = 3) {
  const int fd = connect_to(port);
  send_all(fd, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "Connection: close\r\n\r\n");
  Reply r = read_reply(fd, seconds, method == "HEAD");
  ::close(fd);
  return r;
}

// Whether the server closed `fd` (after answering or not) within `seconds`.
bool closed_within(int fd, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) return false;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

TEST(Serve, PathsOutOfTheFolderAreRefused) {
  const Site s("serve_paths");
  const Served srv(s.root);
  for (const char* t : {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/..%2fsecret.txt",
                        "/%252e%252e/secret.txt", "/..\\secret.txt", "/pics%5c..%5c..%5csecret.txt",
                        "/index.html%00.png", "/app.js%00", "//etc/passwd", "/out.txt", "/up/secret.txt",
                        "/prefix.txt", "/pics/../../secret.txt", "/pics"}) {
    const Reply r = request(srv.port, "GET", t);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << t << " gave " << r.status;
    EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << t;
    EXPECT_FALSE(r.has("Content-Type: image/png")) << t;
  }
  const Reply alias = request(srv.port, "GET", "/alias.js");
  EXPECT_EQ(alias.status, 200);
  EXPECT_EQ(alias.body, "console.log('tagnet');");
  EXPECT_TRUE(alias.has("Content-Type: text/javascript; charset=utf-8")) << alias.head;
}

TEST(Serve, PageFilesKeepTheirTypesAndIsolationHeaders) {
  const Site s("serve_types");
  const Served srv(s.root);
  for (const auto& [target, type] : std::vector<std::pair<std::string, std::string>>{
           {"/", "text/html; charset=utf-8"},
           {"/app.js?v=1", "text/javascript; charset=utf-8"},
           {"/worker.mjs", "text/javascript; charset=utf-8"},
           {"/tagnet.wasm", "application/wasm"},
           {"/style.css", "text/css; charset=utf-8"},
           {"/model.tagnet", "application/octet-stream"},
           {"/meta.json", "application/json"},
           {"/pics/a.png", "image/png"},
           {"/pics/b.JPG", "image/jpeg"},
           {"/pics/", "text/html; charset=utf-8"},
           {"/empty.txt", "text/plain; charset=utf-8"}}) {
    // A browser asks for compression; files go as they are (the machine is slower at brotli
    // than loopback is at bytes).
    const Reply r = request(srv.port, "GET", target, "Accept-Encoding: gzip, deflate, br\r\n");
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_TRUE(r.has("Content-Type: " + type)) << target << "\n" << r.head;
    for (const char* h : {"Cross-Origin-Opener-Policy: same-origin", "Cross-Origin-Embedder-Policy: require-corp",
                          "Cross-Origin-Resource-Policy: same-origin", "X-Content-Type-Options: nosniff",
                          "Cache-Control: no-cache"})
      EXPECT_TRUE(r.has(h)) << target << " lacks " << h;
    EXPECT_EQ(r.head.find("Content-Encoding"), std::string::npos) << target;
  }
  EXPECT_EQ(request(srv.port, "GET", "/model.tagnet").body, std::string(1000, 'm'));
  EXPECT_EQ(request(srv.port, "GET", "/missing.js").status, 404);
}

TEST(Serve, OnlyGetAndHead) {
  const Site s("serve_methods");
  const Served srv(s.root);
  const Reply head = request(srv.port, "HEAD", "/model.tagnet");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.has("Content-Length: 1000")) << head.head;
  EXPECT_TRUE(head.body.empty());
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    const Reply r = request(srv.port, m, "/index.html", "Content-Length: 3\r\n\r\nabc");
    EXPECT_EQ(r.status, 405) << m;
    EXPECT_TRUE(r.has("Allow: GET, HEAD")) << m << "\n" << r.head;
  }
  EXPECT_EQ(request(srv.port, "BREW", "/").status, 400);
}

TEST(Serve, RangeRequestsAreBounded) {
  const Site s("serve_range");
  const Served srv(s.root);
  Reply r = request(srv.port, "GET", "/model.tagnet", "Range: bytes=10-19\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, std::string(10, 'm'));
  EXPECT_TRUE(r.has("Content-Range: bytes 10-19/1000")) << r.head;
  r = request(srv.port, "GET", "/model.tagnet", "Range: bytes=-2000\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body.size(), 1000u);
  r = request(srv.port, "GET", "/model.tagnet", "Range: bytes=5000-\r\n");
  EXPECT_EQ(r.status, 416);
  EXPECT_TRUE(r.has("Content-Range: bytes */1000")) << r.head;
  // 500 ranges of the whole file: the file once, not 500 times.
  std::string many = "Range: bytes=0-";
  for (int i = 1; i < 500; ++i) many += ",0-";
  r = request(srv.port, "GET", "/model.tagnet", many + "\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 1000u);
  // Ranges the server cannot read, up to a header line's limit, are answered and bounded.
  std::string wide = "Range: bytes=0-1";
  while (wide.size() < 8000) wide += ", 0-999";
  for (const std::string& h : {wide, std::string("Range: bytes=5-2"), std::string("Range: bytes=x"),
                               std::string("Range: bytes=99999999999999999999-1")}) {
    r = request(srv.port, "GET", "/model.tagnet", h + "\r\n");
    EXPECT_NE(r.status, 0) << h.substr(0, 40);
    EXPECT_LE(r.body.size(), 1000u) << h.substr(0, 40);
  }
  EXPECT_EQ(request(srv.port, "GET", "/").status, 200);
}

TEST(Serve, SlowClientsDoNotStarveOthers) {
  const Site s("serve_slow");
  const Served srv(s.root);
  // More idle sockets than workers, and more that send half a head a byte at a time.
  std::vector<int> idle, slow;
  for (int i = 0; i < 60; ++i) idle.push_back(connect_to(srv.port));
  for (int i = 0; i < 30; ++i) slow.push_back(connect_to(srv.port));
  const std::string part = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  for (size_t k = 0; k < 6; ++k) {
    for (int fd : slow) send_all(fd, part.substr(k, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto t0 = Clock::now();
  const Reply probe = request(srv.port, "GET", "/app.js", "", 2);
  EXPECT_EQ(probe.status, 200);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
  // Within the head timeout (5 s) both kinds are let go: a half head with a 408.
  EXPECT_TRUE(closed_within(idle.front(), 7));
  const Reply late = read_reply(slow.front(), 1);
  EXPECT_EQ(late.status, 408);
  for (int fd : idle) EXPECT_TRUE(closed_within(fd, 1));
  for (int fd : slow) EXPECT_TRUE(closed_within(fd, 1));
  for (int fd : idle) ::close(fd);
  for (int fd : slow) ::close(fd);
}

TEST(Serve, ConnectionsBeyondTheLimitAreRefusedAtOnce) {
  const Site s("serve_limit");
  const Served srv(s.root);
  std::vector<int> held;
  for (int i = 0; i < 256; ++i) held.push_back(connect_to(srv.port));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));   // all accepted
  const auto t0 = Clock::now();
  const Reply r = request(srv.port, "GET", "/", "", 2);
  EXPECT_EQ(r.status, 503);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
  for (int fd : held) ::close(fd);
  // The slots come back as the held connections close.
  const auto until = Clock::now() + std::chrono::seconds(2);
  int status = 0;
  while (status != 200 && Clock::now() < until) status = request(srv.port, "GET", "/", "", 1).status;
  EXPECT_EQ(status, 200);
}

TEST(Serve, KeepAliveAndOversizedHeads) {
  const Site s("serve_heads");
  const Served srv(s.root);
  // Two requests sent at once on one connection, both answered.
  int fd = connect_to(srv.port);
  send_all(fd, "GET /app.js HTTP/1.1\r\nHost: a\r\n\r\nGET /meta.json HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string in;
  EXPECT_EQ(read_reply(fd, 3, false, &in).body, "console.log('tagnet');");
  const Reply second = read_reply(fd, 3, false, &in);
  EXPECT_EQ(second.body, "{}");
  EXPECT_TRUE(second.has("Keep-Alive: timeout=5, max=100")) << second.head;
  ::close(fd);
  // A head beyond 16 KiB.
  fd = connect_to(srv.port);
  send_all(fd, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 40; ++i) send_all(fd, "X-Pad-" + std::to_string(i) + ": " + std::string(500, 'p') + "\r\n");
  EXPECT_EQ(read_reply(fd).status, 431);
  ::close(fd);
  // A request line beyond httplib's 8 KiB.
  EXPECT_EQ(request(srv.port, "GET", "/" + std::string(9000, 'a')).status, 414);
  EXPECT_EQ(request(srv.port, "GET", "/").status, 200);
}

TEST(Serve, PortInUseFailsAtStart) {
  const Site s("serve_port");
  const Served srv(s.root);
  const auto r = tagnet::cli::run_cli("serve " + s.root.string() + " --port " + std::to_string(srv.port));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "tagnet: error: 127.0.0.1:" + std::to_string(srv.port) + ": address already in use\n");
}

}  // namespace
