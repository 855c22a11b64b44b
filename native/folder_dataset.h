// A folder of pictures as a labelled dataset: each subfolder is one example group.
//   --labels multi:  "red_dress" -> {red, dress}   (sigmoid head, one output per label)
//   --labels single: "red_dress" -> class red_dress (softmax head; or one logit for 2 classes)
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/train/train.h"

namespace tagnet::native {

// The labels a folder name stands for.
std::vector<std::string> folder_labels(const std::string& folder, LabelMode mode);

// The labels the subfolders of `dir` stand for, sorted. Throws std::runtime_error naming `dir`
// for a missing folder, no subfolders, or fewer than two labels.
std::vector<std::string> folder_label_names(const std::string& dir, LabelMode mode);

// The head a model gets for a folder dataset: sigmoid for label sets, softmax for classes, one
// logit for two classes.
Head folder_head(LabelMode mode, size_t labels);

// Pictures read from their files whenever a batch asks for them, through an ImageSet of the
// batch (the same pixels and augmentation as one that held them all): under mpirun a process
// decodes only the pictures of its slices and none holds the whole folder.
class PictureFiles : public BatchSource {
 public:
  PictureFiles() = default;
  PictureFiles(const Shape& input, int outputs) : input_(input), F_(outputs) {}
  void add(const std::string& file, const std::vector<float>& target);
  size_t size() const override { return files_.size(); }
  void set_augment(const Augment& a) { augment_ = a; }
  PictureFiles subset(const std::vector<size_t>& indices) const;
  void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng, bool augment) override;

 private:
  Shape input_;
  int F_ = 0;
  std::vector<std::string> files_;
  std::vector<float> targets_;   // (N, F)
  Augment augment_;
};

struct FolderDataset {
  std::vector<std::string> labels;            // sorted
  LabelMode mode = LabelMode::kMulti;
  Head head = Head::kSigmoid;
  ImageSet pictures;
  std::vector<std::string> files;             // one per picture, in order
  std::vector<std::string> skipped;           // "<file>: <why>" for unreadable pictures
  std::set<std::vector<std::string>> combinations;   // label sets seen (multi-label)
  std::vector<std::pair<std::string, size_t>> per_folder;
  PictureFiles listed;   // with FolderOptions::together, instead of `pictures`
};

struct FolderOptions {
  LabelMode mode = LabelMode::kMulti;
  Shape input{96, 96, 3};
  // When given (evaluating a trained model), targets use these labels and the head;
  // otherwise the labels come from the folder names.
  const std::vector<std::string>* fixed_labels = nullptr;
  Head fixed_head = Head::kSigmoid;
  int threads = 0;
  std::function<void(const std::string&)> warn;   // one call per skipped picture
  // Set (several processes training together): the readable pictures go to `listed`, not
  // `pictures`; each process decodes its share once to find the unreadable ones, and the
  // processes join what they found, so all skip the same.
  Collective* together = nullptr;
};

// Throws std::runtime_error naming the folder for a missing folder, no subfolders, an empty
// subfolder, or no readable pictures at all.
FolderDataset load_folder_dataset(const std::string& dir, const FolderOptions& options);

// Picture files directly in `dir` (by extension), sorted.
std::vector<std::string> list_pictures(const std::string& dir);

}  // namespace tagnet::native
