// `tagnet preview`: a montage of a folder dataset's pictures with their labels and augmented
// versions of one, to check labels and augmentation before training.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "commands.h"
#include "draw.h"
#include "folder_dataset.h"

namespace tagnet::native {

namespace {

struct PreviewArgs {
  std::string dataset, out = "preview.png", labels = "multi";
  int count = 16, augmented = 8, size = 96;
  uint64_t seed = 42;
  AugmentArgs augment;
};

int preview_command(const PreviewArgs& a) {
  FolderDataset ds = load_folder_dataset(a.dataset, folder_options(label_mode_from_name(a.labels), {a.size, a.size, 3}, 0));
  ImageSet& set = ds.pictures;
  Rng rng(a.seed);
  std::vector<size_t> order(set.size());
  std::iota(order.begin(), order.end(), 0);
  rng.shuffle(order);
  std::vector<Image> tiles;
  std::vector<std::string> captions;
  auto to_image = [&](const float* x) {
    Image im;
    im.width = a.size, im.height = a.size;
    im.rgb.resize(size_t(a.size) * a.size * 3);
    for (size_t i = 0; i < im.rgb.size(); ++i)
      im.rgb[i] = static_cast<uint8_t>(std::lround(std::min(1.f, std::max(0.f, x[i])) * 255));
    return im;
  };
  auto caption = [&](size_t i) {
    std::string c;
    const float* t = set.target(i);
    for (int k = 0; k < set.outputs(); ++k)
      if (t[k] > 0.5f) c += (c.empty() ? "" : ", ") + ds.labels[ds.head == Head::kLogit ? 1 : k];
    return c.empty() && ds.head == Head::kLogit ? ds.labels[0] : c;
  };
  Tensor x, y;
  for (int k = 0; k < a.count && k < static_cast<int>(order.size()); ++k) {
    set.fill({order[k]}, x, y, rng, false);
    tiles.push_back(to_image(x.data()));
    captions.push_back(caption(order[k]));
  }
  set.set_augment(a.augment.to_augment());
  for (int k = 0; k < a.augmented; ++k) {
    set.fill({order[0]}, x, y, rng, true);
    tiles.push_back(to_image(x.data()));
    captions.push_back("augmented " + std::to_string(k + 1));
  }
  save_montage(a.out, tiles, captions, 8, 128);
  std::printf("wrote %s: %d pictures with their labels and %d augmented versions of %s\n", a.out.c_str(),
              std::min<int>(a.count, static_cast<int>(order.size())), a.augmented, ds.files[order[0]].c_str());
  return 0;
}

}  // namespace

Command add_preview(CLI::App& app) {
  auto a = std::make_shared<PreviewArgs>();
  auto* c = app.add_subcommand("preview", "A montage of dataset pictures and augmented versions of one");
  c->add_option("--dataset", a->dataset, "Folder dataset")->required();
  c->add_option("--out", a->out)->capture_default_str();
  c->add_option("--labels", a->labels, "Folder names: multi or single")
      ->check(CLI::IsMember({"multi", "single"}))
      ->capture_default_str();
  c->add_option("--count", a->count, "Dataset pictures shown")->capture_default_str();
  c->add_option("--augmented", a->augmented, "Augmented versions shown")->capture_default_str();
  c->add_option("--size", a->size)->capture_default_str();
  c->add_option("--seed", a->seed)->capture_default_str();
  add_augment_options(c, a->augment);
  return {c, [a] { return preview_command(*a); }};
}

}  // namespace tagnet::native
