// Pictures drawn with cairo for the command line: the training-history chart, a captioned
// montage for `tagnet preview`, and predictions written onto a picture.
//
//   tagnet::native::save_history_plot("plot.png", model.metadata()["history"],
//                                     "Training Loss and Accuracy");
//   tagnet::native::save_montage("preview.png", pictures, names, /*columns=*/8, /*tile_px=*/96);
//   tagnet::Image out = tagnet::native::annotate_image(im, {"red: 99.95%", "dress: 98.40%"});
//
// PNG files are written beside their path under "<path>.tmp-<pid>" and renamed over it, so a
// reader never sees half a file; failures throw std::runtime_error naming the path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tagnet/io/image.h"

namespace tagnet::native {

// history: one object per epoch with "loss" and "accuracy", optionally "val_loss",
// "val_accuracy" (absent or null values are skipped) and "epoch" (else 1, 2, ...). Draws an
// 800x500 chart of train_loss, val_loss, train_acc and val_acc against "Epoch #", with grid,
// numbered ticks, a legend placed where it hides the fewest points, and `title`.
void save_history_plot(const std::string& path, const nlohmann::json& history,
                       const std::string& title);

// The line colours of save_history_plot as 0xRRGGBB, in the order train_loss, val_loss,
// train_acc, val_acc.
extern const unsigned kHistoryColours[4];

// Gap between montage cells and around the montage, in pixels.
constexpr int kMontageGap = 8;

// A grid of `columns` cells, left to right then top to bottom, on white. Each picture is
// scaled to fit a tile_px square (aspect kept, centred) with its caption under it; a caption
// may hold several lines split by '\n', and a line too wide for the tile is cut short with an
// ellipsis. The file is columns' * (tile_px + kMontageGap) + kMontageGap wide, where columns'
// is min(columns, tiles.size()). `captions` is empty or has one entry per tile.
void save_montage(const std::string& path, const std::vector<Image>& tiles,
                  const std::vector<std::string>& captions, int columns, int tile_px);

// A copy of `img`, enlarged to `min_width` pixels wide (aspect kept) when narrower, with
// `lines` written at the top left in green on a dark translucent box, one line under another.
Image annotate_image(const Image& img, const std::vector<std::string>& lines,
                     int min_width = 400);

}  // namespace tagnet::native
