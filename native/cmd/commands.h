// The tagnet subcommands, one file each in this folder, all registered the same way: each adds
// its subcommand and options and returns the function that runs it (see cli.h).
#pragma once

#include "cli.h"

namespace tagnet::native {

Command add_train(CLI::App& app);          // train.cpp (networks), train_top.cpp (--features)
Command add_evaluate(CLI::App& app);
Command add_classify(CLI::App& app);
Command add_preview(CLI::App& app);
Command add_make_dataset(CLI::App& app);
Command add_summary(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_serve(CLI::App& app);
Command add_features(CLI::App& app);
Command add_finetune(CLI::App& app);
Command add_replace_head(CLI::App& app);
Command add_teach(CLI::App& app);
Command add_import(CLI::App& app);
Command add_export(CLI::App& app);

}  // namespace tagnet::native
