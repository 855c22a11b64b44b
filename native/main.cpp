// tagnet: train, evaluate, classify and inspect image classifiers from the command line.
// Every command lives in cmd/<name>.cpp and registers itself the same way (cmd/commands.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "distributed.h"
#include "tagnet/engine.h"

namespace nat = tagnet::native;

int main(int argc, char** argv) {
  // Under mpirun: one of the processes of a data-parallel training run (docs/distributed.md).
  nat::join_processes(&argc, &argv);
  CLI::App app{"tagnet: train and run image classifiers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    std::string sets;
    for (const auto& s : tagnet::Engine::available_instruction_sets()) sets += (sets.empty() ? "" : ", ") + s;
    return std::string("tagnet ") + TAGNET_VERSION + "\nkernels: " + tagnet::Engine().instruction_set() +
           " (this CPU runs: " + sets + "; TAGNET_HWY_TARGET chooses)\nbackends: " +
           [] {
             std::string b;
             for (const auto& n : tagnet::Engine::available_backends()) b += (b.empty() ? "" : ", ") + n;
             return b;
           }();
  });
  std::vector<nat::Command> commands;
  for (auto add : {nat::add_train, nat::add_evaluate, nat::add_classify, nat::add_preview, nat::add_make_dataset,
                   nat::add_summary, nat::add_bench, nat::add_serve, nat::add_features, nat::add_finetune,
                   nat::add_replace_head, nat::add_teach, nat::add_import, nat::add_export})
    commands.push_back(add(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    if (status != 0 && nat::processes()) nat::fail("bad command line (above)");
    nat::leave_processes();
    return status;
  }
  for (const auto& c : commands) {
    if (!*c.app) continue;
    try {
      const std::string name = c.app->get_name();
      if (nat::processes() && nat::processes()->size() > 1 && name != "train" && name != "finetune")
        throw std::invalid_argument("only train and finetune run on several processes; run " + name +
                                    " without mpirun");
      const int status = c.run();
      nat::leave_processes();
      return status;
    } catch (const std::exception& e) {
      // Together, the others must not wait for this process: it leaves at once.
      if (nat::processes()) nat::fail(e.what());
      std::fprintf(stderr, "tagnet: error: %s\n", e.what());
      return 1;
    }
  }
  nat::leave_processes();
  return 0;
}
