// Picture folders made from Fashion-MNIST, standing in for the photo collections two tutorials
// download, so that both can be followed without a network:
//
//   make_fashion_color  the multi-label clothing set laid out like the tutorial's project:
//                       dataset/{black_jeans blue_dress blue_jeans blue_shirt red_dress red_shirt}
//                       (colour + garment per folder) and examples/ with unseen test pictures,
//                       among them the combination black_dress that no training folder holds.
//   make_two_class      the overfitting tutorial's two-class set, e.g. pullover-coat:
//                       train/{pullover,coat} (1,000 each), validation/{pullover,coat} (500 each).
//
// The output is a pure function of the seed. Both write into "<out_dir>.tmp-<pid>" and rename it
// into place only when every picture is written, so an interrupted run never leaves a partial
// dataset under out_dir.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tagnet::native {

struct MakeDatasetReport {
  size_t images = 0;
  std::vector<std::pair<std::string, size_t>> per_folder;   // relative folder, picture count
};

// per_class pictures of size x size in each of the six folders, from Fashion-MNIST train
// pictures; examples/ from test pictures. Throws std::runtime_error if out_dir exists and is not
// empty (unless overwrite), std::invalid_argument for an unusable per_class or size.
MakeDatasetReport make_fashion_color(const std::string& out_dir, const std::string& fmnist_dir,
                                     uint64_t seed, int per_class = 350, int size = 96,
                                     bool overwrite = false);

// The default web model's pretraining set: dataset/<colour>_<garment> for six colours (black,
// blue, red, white, green, yellow) and seven garments (jeans, dress, shirt, pullover, coat,
// sneaker, boot), every pair but black_dress, and dataset/<garment> (eight times as many) in muted
// colours of any hue, labelled by kind alone; over faintly tinted backgrounds at varied sizes
// and angles; examples/ as make_fashion_color's. Sandals and bags never appear, so teaching
// them measures what transfers.
MakeDatasetReport make_wardrobe(const std::string& out_dir, const std::string& fmnist_dir,
                                uint64_t seed, int per_class = 120, int size = 96,
                                bool overwrite = false);

// `pair` names two Fashion-MNIST classes joined by '-' (pullover-coat, tshirt-shirt, ...);
// `test_split` draws from the test pictures instead (500 train, 500 validation per class);
// throws std::invalid_argument, before writing anything, for anything else.
MakeDatasetReport make_two_class(const std::string& out_dir, const std::string& fmnist_dir,
                                 const std::string& pair, uint64_t seed, int size = 150,
                                 bool overwrite = false, bool test_split = false);

}  // namespace tagnet::native
