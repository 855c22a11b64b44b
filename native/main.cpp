// tagnet: train, evaluate, classify and inspect image classifiers from the command line.
// Every command lives in cmd/<name>.cpp and registers itself the same way (cmd/commands.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli.h"
#include "cmd/commands.h"
#include "distributed.h"
#include "tagnet/kernels/engine.h"

namespace nat = tagnet::native;

int main(int argc, char** argv) {
  // Under mpirun: one of the processes of a data-parallel training run (docs/distributed.md).
  nat::join_processes(&argc, &argv);
  CLI::App app{"tagnet: train and run image classifiers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    const auto sets = tagnet::Engine::available_instruction_sets();
    return std::string("tagnet ") + TAGNET_VERSION + "\nkernels: " + tagnet::Engine::chosen_instruction_set() +
           " (this CPU runs: " + nat::join(sets) + "; TAGNET_HWY_TARGET chooses)\nbackends: " +
           nat::join(tagnet::Engine::available_backends());
  });
  std::vector<nat::Command> commands;
  for (auto add : {nat::add_train, nat::add_evaluate, nat::add_classify, nat::add_preview, nat::add_make_dataset,
                   nat::add_summary, nat::add_bench, nat::add_serve, nat::add_features, nat::add_finetune,
                   nat::add_replace_head, nat::add_teach, nat::add_import, nat::add_export})
    commands.push_back(add(app));
  // "--plot=" gives an empty value, as "--plot ''" does; CLI11 would take the next argument.
  std::vector<std::string> words;
  for (int i = 0; i < argc; ++i) {
    const std::string w = argv[i];
    const bool empty_value = i > 0 && w.size() > 3 && w.compare(0, 2, "--") == 0 && w.find('=') == w.size() - 1;
    words.push_back(empty_value ? w.substr(0, w.size() - 1) : w);
    if (empty_value) words.emplace_back();
  }
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    // --help and --version print and end well; a bad command line gets one line, as every error.
    const bool asked = dynamic_cast<const CLI::CallForHelp*>(&e) || dynamic_cast<const CLI::CallForAllHelp*>(&e) ||
                       dynamic_cast<const CLI::CallForVersion*>(&e);
    int status = 1;
    if (asked) status = app.exit(e);
    else std::fprintf(stderr, "tagnet: error: %s (tagnet %s--help)\n", e.what(),
                      app.get_subcommands().empty() ? "" : (app.get_subcommands().front()->get_name() + " ").c_str());
    if (status != 0 && nat::processes()) nat::fail("bad command line (above)");
    nat::leave_processes();
    return status;
  } catch (const std::exception& e) {  // --version with a bad TAGNET_HWY_TARGET
    std::fprintf(stderr, "tagnet: error: %s\n", e.what());
    nat::leave_processes();
    return 1;
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
