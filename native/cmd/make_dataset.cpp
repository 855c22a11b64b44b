// `tagnet make-dataset`: tutorial-shaped datasets written from Fashion-MNIST (make_dataset.h).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "commands.h"
#include "fashion_mnist.h"
#include "make_dataset.h"

namespace tagnet::native {

namespace {

struct MakeDatasetArgs {
  std::string kind, out, data_dir = kFashionMnistDir;
  uint64_t seed = 1;
  int per_class = 0;   // 0: the kind's default
  std::string split = "train";
  bool overwrite = false;
};

int make_dataset_command(const MakeDatasetArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  MakeDatasetReport r;
  if (a.kind == "fashion-color")
    r = make_fashion_color(a.out, a.data_dir, a.seed, a.per_class ? a.per_class : 350, 96, a.overwrite);
  else if (a.kind == "wardrobe")
    r = make_wardrobe(a.out, a.data_dir, a.seed, a.per_class ? a.per_class : 120, 96, a.overwrite);
  else
    r = make_two_class(a.out, a.data_dir, a.kind, a.seed, 150, a.overwrite, a.split == "test");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& [folder, n] : r.per_folder) std::printf("  %-28s %zu\n", folder.c_str(), n);
  std::printf("wrote %zu pictures to %s in %.1f s\n", r.images, a.out.c_str(), s);
  return 0;
}

}  // namespace

Command add_make_dataset(CLI::App& app) {
  auto a = std::make_shared<MakeDatasetArgs>();
  auto* c = app.add_subcommand("make-dataset", "Write a tutorial-shaped dataset from Fashion-MNIST");
  c->add_option("kind", a->kind,
                "fashion-color, wardrobe, or two Fashion-MNIST classes for the overfitting experiment: pullover-coat, "
                "tshirt-shirt, ... (tshirt trouser pullover dress coat sandal shirt sneaker bag boot)")
      ->required();
  c->add_option("out", a->out, "Output folder")->required();
  c->add_option("--data-dir", a->data_dir)->capture_default_str();
  c->add_option("--seed", a->seed)->capture_default_str();
  c->add_option("--per-class", a->per_class, "fashion-color and wardrobe: pictures per folder (350, 120)")
      ->check(at_least(1));
  c->add_option("--split", a->split,
                "two classes: draw from Fashion-MNIST's train pictures (1,000 + 500 per class) or its test "
                "pictures (500 + 500), which the wardrobe never uses")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  c->add_flag("--overwrite", a->overwrite, "Replace an existing output folder");
  return {c, [a] { return make_dataset_command(*a); }};
}

}  // namespace tagnet::native
