#include "folder_dataset.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace fs = std::filesystem;

namespace tagnet::native {


std::vector<std::string> folder_labels(const std::string& folder, LabelMode mode) {
  if (mode == LabelMode::kSingle) return {folder};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= folder.size()) {
    const size_t end = std::min(folder.find('_', start), folder.size());
    if (end > start) out.push_back(folder.substr(start, end - start));
    start = end + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> list_pictures(const std::string& dir) {
  static const std::set<std::string> exts = {".jpg", ".jpeg", ".png", ".bmp", ".gif"};
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot list the folder (" + ec.message() + ")");
  for (const auto& e : it) {
    // Broken links and link loops are not pictures: skipped, like any other non-file.
    if (!e.is_regular_file(ec) || ec) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (exts.count(ext)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// The subfolders of `dir`, sorted; a folder of pictures without class subfolders is a common
// mistake, and is named as such.
std::vector<std::string> class_folders(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir + ": no such folder");
  std::vector<std::string> folders;
  fs::directory_iterator it(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot list the folder (" + ec.message() + ")");
  for (const auto& e : it)
    if (e.is_directory(ec) && !ec) folders.push_back(e.path().filename().string());
  std::sort(folders.begin(), folders.end());
  if (folders.empty())
    throw std::runtime_error(dir + ": no class folders (expected e.g. " + dir + "/red_dress/*.jpg)");
  return folders;
}

std::vector<std::string> label_names(const std::string& dir, const std::vector<std::string>& folders,
                                     LabelMode mode) {
  std::set<std::string> all;
  for (auto& f : folders)
    for (auto& l : folder_labels(f, mode)) all.insert(l);
  if (all.size() < 2)
    throw std::runtime_error(dir + ": only one label (" + (all.empty() ? "" : *all.begin()) +
                             "); training needs at least two");
  return {all.begin(), all.end()};
}

}  // namespace

std::vector<std::string> folder_label_names(const std::string& dir, LabelMode mode) {
  return label_names(dir, class_folders(dir), mode);
}

Head folder_head(LabelMode mode, size_t labels) {
  if (mode == LabelMode::kMulti) return Head::kSigmoid;
  return labels == 2 ? Head::kLogit : Head::kSoftmax;
}

FolderDataset load_folder_dataset(const std::string& dir, const FolderOptions& o) {
  const std::vector<std::string> folders = class_folders(dir);
  const std::vector<std::string> labels = o.fixed_labels ? *o.fixed_labels : label_names(dir, folders, o.mode);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < labels.size(); ++i) index[labels[i]] = i;

  const Head head = o.fixed_labels ? o.fixed_head : folder_head(o.mode, labels.size());
  const int outputs = head == Head::kLogit ? 1 : static_cast<int>(labels.size());

  struct Job {
    std::string file;
    std::vector<float> target;
  };
  std::vector<Job> jobs;
  FolderDataset ds{labels, o.mode, head, ImageSet(o.input, outputs), {}, {}, {}, {}, {}};
  for (auto& f : folders) {
    const auto pics = list_pictures((fs::path(dir) / f).string());
    if (pics.empty()) throw std::runtime_error((fs::path(dir) / f).string() + ": no pictures in this folder");
    const auto fl = folder_labels(f, o.mode);
    std::vector<float> target(outputs, 0.f);
    for (auto& l : fl) {
      auto it = index.find(l);
      if (it == index.end())
        throw std::runtime_error((fs::path(dir) / f).string() + ": label '" + l + "' is not one of the model's labels");
      if (head == Head::kLogit) target[0] = it->second == 1 ? 1.f : 0.f;
      else target[it->second] = 1.f;
    }
    ds.combinations.insert(fl);
    ds.per_folder.emplace_back(f, pics.size());
    for (auto& p : pics) jobs.push_back({p, target});
  }

  // Decode in parallel; keep the order of the file list. Together, each process decodes its
  // share [begin, end) of the list only to find unreadable pictures.
  const size_t parts = o.together ? o.together->size() : 1, part = o.together ? o.together->rank() : 0;
  const size_t begin = jobs.size() * part / parts, end = jobs.size() * (part + 1) / parts;
  std::vector<Image> images(jobs.size());
  std::vector<std::string> errors(jobs.size());
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (size_t i = begin + t; i < end; i += threads) {
        try {
          // Resized here, in parallel, so add() below only converts.
          images[i] = resize_image(load_image(jobs[i].file), o.input[1], o.input[0]);
          if (o.together) images[i] = Image();
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      }
    });
  for (auto& th : pool) th.join();
  if (o.together) {
    std::vector<double> unreadable(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) unreadable[i] = errors[i].empty() ? 0 : 1;
    o.together->sum(unreadable.data(), unreadable.size());
    for (size_t i = 0; i < jobs.size(); ++i)
      if (unreadable[i] > 0 && errors[i].empty()) errors[i] = jobs[i].file + ": unreadable (found by another process)";
    ds.listed = PictureFiles(o.input, outputs);
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!errors[i].empty()) {
      ds.skipped.push_back(errors[i]);
      if (o.warn) o.warn(errors[i]);
      continue;
    }
    if (o.together) ds.listed.add(jobs[i].file, jobs[i].target);
    else ds.pictures.add(images[i], jobs[i].target);
    ds.files.push_back(jobs[i].file);
    images[i] = Image();
  }
  if (ds.files.empty()) throw std::runtime_error(dir + ": no readable pictures");
  return ds;
}

void PictureFiles::add(const std::string& file, const std::vector<float>& target) {
  if (static_cast<int>(target.size()) != F_)
    throw std::invalid_argument("target has " + std::to_string(target.size()) + " values, expected " +
                                std::to_string(F_));
  files_.push_back(file);
  targets_.insert(targets_.end(), target.begin(), target.end());
}

PictureFiles PictureFiles::subset(const std::vector<size_t>& indices) const {
  PictureFiles s(input_, F_);
  s.augment_ = augment_;
  for (size_t i : indices) {
    if (i >= size()) throw std::out_of_range("picture index out of range");
    s.add(files_[i], std::vector<float>(targets_.begin() + i * F_, targets_.begin() + (i + 1) * F_));
  }
  return s;
}

void PictureFiles::fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng, bool augment) {
  ImageSet batch(input_, F_);
  batch.set_augment(augment_);
  std::vector<size_t> order(indices.size());
  for (size_t b = 0; b < indices.size(); ++b) {
    const size_t i = indices[b];
    if (i >= size()) throw std::out_of_range("picture index out of range");
    batch.add(resize_image(load_image(files_[i]), input_[1], input_[0]),
              std::vector<float>(targets_.begin() + i * F_, targets_.begin() + (i + 1) * F_));
    order[b] = b;
  }
  batch.fill(order, x, y, rng, augment);
}

}  // namespace tagnet::native
