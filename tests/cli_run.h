// Runs the tagnet binary of the build (TAGNET_BIN) for the command-line tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace tagnet::cli {

struct CliResult {
  int status;
  std::string out;
};

// A shell command line (its redirections included) and what it printed on stdout.
inline CliResult run_shell(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// `tagnet ARGS` with stdout and stderr together in `out`, or stdout alone with `stdout_only`.
inline CliResult run_cli(const std::string& args, bool stdout_only = false) {
  return run_shell(std::string(TAGNET_BIN) + " " + args + (stdout_only ? " 2>/dev/null" : " 2>&1"));
}

// stdout of a command that prints JSON; a failed command fails the test.
inline nlohmann::json run_cli_json(const std::string& args) {
  const CliResult r = run_cli(args, true);
  EXPECT_EQ(r.status, 0) << args << "\n" << r.out;
  return nlohmann::json::parse(r.out);
}

// A fresh, empty folder for one test.
inline std::string cli_temp_dir(const std::string& name) {
  const auto d = std::filesystem::path(::testing::TempDir()) / ("tagnet_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

inline int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace tagnet::cli
