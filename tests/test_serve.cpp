// What `tagnet serve` answers, as pure functions: paths out of the folder (plain, encoded,
// through links), content types, and Range headers that would multiply a response.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_run.h"
#include "serve_rules.h"

namespace fs = std::filesystem;
using namespace tagnet::native;

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

}  // namespace
