// tagnet: train, evaluate, classify and inspect image classifiers from the command line.
// Every command lives in cmd/<name>.cpp and registers itself the same way (cmd/commands.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <vector>

#include "cmd/commands.h"

namespace nat = tagnet::native;

int main(int argc, char** argv) {
  CLI::App app{"tagnet: train and run image classifiers"};
  app.require_subcommand(1);
  std::vector<nat::Command> commands;
  for (auto add : {nat::add_train, nat::add_evaluate, nat::add_classify, nat::add_preview, nat::add_make_dataset,
                   nat::add_summary, nat::add_bench, nat::add_serve, nat::add_features, nat::add_finetune,
                   nat::add_replace_head, nat::add_teach, nat::add_import, nat::add_export})
    commands.push_back(add(app));
  CLI11_PARSE(app, argc, argv);
  for (const auto& c : commands) {
    if (!*c.app) continue;
    try {
      return c.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tagnet: error: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
