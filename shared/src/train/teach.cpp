#include "tagnet/train/teach.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

#include "tagnet/nn/architectures.h"
#include "tagnet/train/features.h"
#include "tagnet/train/novelty.h"
#include "tagnet/train/train.h"

namespace tagnet {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> model_labels(const Model& m, int outputs) {
  std::vector<std::string> names;
  if (int(m.card().labels.size()) == outputs) names = m.card().labels;
  names.resize(size_t(outputs));
  for (int i = 0; i < outputs; ++i)
    if (names[size_t(i)].empty()) names[size_t(i)] = std::to_string(i);
  return names;
}

std::string percent(double x) { return std::to_string(int(std::lround(100 * x))) + "%"; }

}  // namespace

struct Teacher::State {
  TeachOptions o;
  Context ctx;
  bool one_per_picture = false;
  Head head = Head::kSigmoid;
  Model model;                          // a copy of the model taught
  Model base;                           // its layers below the head
  size_t head_at = 0;
  int D = 0;                            // features per picture
  std::vector<std::string> taught;      // the labels taught, in the caller's order
  std::vector<std::string> labels;      // every output's label in the result
  std::vector<int> column;              // taught label -> output
  std::vector<float> W0, b0;            // the head's starting weights, (K, D) and (K)
  int old_outputs = 0;                  // outputs the model had (kept labels)
  NoveltyStats familiar;                // the model's feature statistics, when it has them
  std::vector<Image> pictures;
  std::vector<std::vector<int>> picture_labels;   // indices into `taught`
  std::vector<float> features;          // (pictures, 1 + copies, D)
  size_t featured = 0;
  std::vector<char> held;               // per picture: kept aside for the held-out score
  std::vector<float> W, b;              // the trained head
  int fits = 0;                         // 0 before the held-out fit, 1 before the final, 2 done
  TeachReport report;

  State(const Model& m, const Context& c) : ctx(c), model(slice_model(m, 0, m.num_layers())), base(Shape{1}) {}

  int K() const { return int(labels.size()); }
  const float* feature(size_t picture, int copy) const {
    return features.data() + (picture * size_t(1 + o.copies) + size_t(copy)) * size_t(D);
  }
  // The taught targets of one picture, as the head's K outputs (untaught outputs 0).
  std::vector<float> targets(size_t picture) const {
    std::vector<float> y(static_cast<size_t>(K()), 0.f);
    for (int l : picture_labels[picture]) y[size_t(column[size_t(l)])] = 1.f;
    return y;
  }
  std::vector<float> logits(const std::vector<float>& w, const std::vector<float>& bias, const float* f) const {
    std::vector<float> z(static_cast<size_t>(K()));
    for (int k = 0; k < K(); ++k) {
      double s = bias[size_t(k)];
      for (int d = 0; d < D; ++d) s += double(w[size_t(k) * D + d]) * f[d];
      z[size_t(k)] = float(s);
    }
    return z;
  }

  void extract_some();
  void split();
  void fit(const std::vector<size_t>& train, std::vector<float>& w, std::vector<float>& bias) const;
  void score_held_out(const std::vector<float>& w, const std::vector<float>& bias);
};

Teacher::Teacher(const Model& model, const std::vector<std::string>& labels, bool one_per_picture,
                 const TeachOptions& options, const Context& ctx)
    : s_(std::make_unique<State>(model, ctx)) {
  State& s = *s_;
  s.o = options;
  s.one_per_picture = one_per_picture;
  if (labels.empty()) throw std::invalid_argument("teach: no labels to teach");
  if (std::set<std::string>(labels.begin(), labels.end()).size() != labels.size())
    throw std::invalid_argument("teach: a label is named twice");
  for (const auto& l : labels)
    if (l.empty()) throw std::invalid_argument("teach: a label has no name");
  if (one_per_picture && labels.size() < 2) throw std::invalid_argument("teach: one label per picture needs two labels");
  if (options.copies < 0 || options.steps < 1 || options.batch_size < 1 || !(options.lr > 0) ||
      !(options.held_out >= 0 && options.held_out < 1))
    throw std::invalid_argument("teach: copies, steps, batch size, learning rate or held-out share out of range");
  s.taught = labels;
  s.head_at = head_start(s.model);
  s.base = slice_model(s.model, 0, s.head_at);
  const Shape feat = s.base.output_shape();
  if (feat.rank() != 1) throw std::invalid_argument("teach: the head's input is not flat: " + feat.str());
  s.D = feat[0];
  const Layer& dense = s.model.layer(s.head_at);

  if (options.keep_labels) {
    s.head = model_head(s.model);
    if (s.head == Head::kLogit)
      throw std::invalid_argument("teach: a one-logit head has no room for more labels; replace the head first");
    if (s.head == Head::kSoftmax && !one_per_picture)
      throw std::invalid_argument("teach: a single-label model learns one label per picture");
    const int old = int(s.model.output_shape().numel());
    s.old_outputs = old;
    NoveltyStats::from_json(s.model.card().novelty, s.D, s.familiar);
    s.labels = model_labels(s.model, old);
    s.W0.assign(dense.params()[0].value.data(), dense.params()[0].value.data() + size_t(old) * s.D);
    s.b0.assign(size_t(old), 0.f);
    if (dense.params().size() > 1) std::copy_n(dense.params()[1].value.data(), old, s.b0.begin());
  } else {
    s.head = one_per_picture ? Head::kSoftmax : Head::kSigmoid;
  }
  // New rows start Glorot-uniform, as a new Dense layer's would.
  Rng rng(options.seed ^ 0x7EAC4u);
  const float limit = std::sqrt(6.f / float(s.D + int(s.labels.size() + labels.size())));
  for (const auto& l : labels) {
    const auto it = std::find(s.labels.begin(), s.labels.end(), l);
    if (it != s.labels.end()) {
      s.column.push_back(int(it - s.labels.begin()));
      continue;
    }
    s.column.push_back(int(s.labels.size()));
    s.labels.push_back(l);
    for (int d = 0; d < s.D; ++d) s.W0.push_back(rng.uniform(-limit, limit));
    s.b0.push_back(0.f);
  }
}

Teacher::~Teacher() = default;

void Teacher::add(const Image& picture, const std::vector<std::string>& labels) {
  State& s = *s_;
  if (!s.features.empty() || s.featured) throw std::logic_error("teach: pictures come before the first step");
  std::vector<int> idx;
  for (const auto& l : labels) {
    const auto it = std::find(s.taught.begin(), s.taught.end(), l);
    if (it == s.taught.end()) throw std::invalid_argument("teach: \"" + l + "\" is not one of the labels taught");
    const int i = int(it - s.taught.begin());
    if (std::find(idx.begin(), idx.end(), i) == idx.end()) idx.push_back(i);
  }
  if (s.one_per_picture && idx.size() != 1)
    throw std::invalid_argument("teach: a picture takes exactly one label, got " + std::to_string(idx.size()));
  if (picture.width < 1 || picture.height < 1) throw std::invalid_argument("teach: an empty picture");
  s.pictures.push_back(picture);
  s.picture_labels.push_back(std::move(idx));
}

size_t Teacher::size() const { return s_->pictures.size(); }

void Teacher::State::extract_some() {
  const Shape& in = base.input_shape();
  const int H = in[0], Wd = in[1], C = in[2];
  const size_t per = size_t(1 + o.copies);
  const size_t count = std::min<size_t>(4, pictures.size() - featured);
  Tensor x(in.batched(int(count * per)));
  std::vector<float> plain(in.numel());
  for (size_t i = 0; i < count; ++i) {
    const size_t p = featured + i;
    image_to_input(pictures[p], H, Wd, C, plain.data());
    for (size_t c = 0; c < per; ++c) {
      float* dst = x.data() + (i * per + c) * in.numel();
      if (c == 0) {
        std::copy(plain.begin(), plain.end(), dst);
        continue;
      }
      Rng rng(o.seed * 0x9E3779B97F4A7C15ull + p * 1000003ull + c);
      augment_image(plain.data(), H, Wd, C, dst, o.augment, rng);
    }
  }
  Context c = ctx;
  c.training = false;
  const Tensor& y = base.forward(x, c);
  std::copy(y.data(), y.data() + count * per * size_t(D), features.data() + featured * per * size_t(D));
  featured += count;
}

// Keeps round(held_out x n), at least 2, of each label's n pictures aside (none when a label
// has fewer than 4, which leaves too few to learn from); labels with the fewest pictures choose
// first. Multi-label pictures of no taught label count as a label of their own.
void Teacher::State::split() {
  held.assign(pictures.size(), 0);
  if (o.held_out <= 0) return;
  const int groups = int(taught.size()) + 1;
  std::vector<std::vector<size_t>> members(static_cast<size_t>(groups));
  for (size_t p = 0; p < pictures.size(); ++p) {
    if (picture_labels[p].empty()) members.back().push_back(p);
    for (int l : picture_labels[p]) members[size_t(l)].push_back(p);
  }
  std::vector<int> order(static_cast<size_t>(groups));
  for (int g = 0; g < groups; ++g) order[size_t(g)] = g;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return members[size_t(a)].size() < members[size_t(b)].size(); });
  Rng rng(o.seed + 17);
  for (int g : order) {
    std::vector<size_t> m = members[size_t(g)];
    if (m.size() < 4) continue;
    const size_t want = std::max<size_t>(2, size_t(std::lround(o.held_out * double(m.size()))));
    size_t have = 0;
    for (size_t p : m) have += held[p];
    rng.shuffle(m);
    for (size_t p : m) {
      if (have >= want) break;
      if (!held[p]) held[p] = 1, ++have;
    }
  }
}

void Teacher::State::fit(const std::vector<size_t>& train, std::vector<float>& w, std::vector<float>& bias) const {
  Model m(Shape{D});
  m.add(std::make_unique<Dense>(K()));
  if (head == Head::kSoftmax) m.add(std::make_unique<Softmax>());
  else m.add(std::make_unique<Sigmoid>());
  m.build(o.seed);

  FeatureSet set;
  set.feature_shape = Shape{D};
  const int per = 1 + o.copies;
  // A sigmoid output learns "no" as well as "yes": beside the taught pictures it sees what the
  // model learnt from before, the mean features of each group of its training pictures (kept
  // in its novelty statistics), with the answers the model gives there (no for a new label).
  const std::vector<std::vector<float>>& others =
      head == Head::kSigmoid ? familiar.means : std::vector<std::vector<float>>{};
  const int rows = int(train.size()) * per + int(others.size());
  set.features = Tensor({rows, D});
  set.targets = Tensor({rows, K()});
  for (size_t i = 0; i < train.size(); ++i) {
    const std::vector<float> y = targets(train[i]);
    for (int c = 0; c < per; ++c) {
      const size_t r = i * size_t(per) + size_t(c);
      std::copy_n(feature(train[i], c), D, set.features.data() + r * size_t(D));
      std::copy(y.begin(), y.end(), set.targets.data() + r * size_t(K()));
    }
  }
  for (size_t j = 0; j < others.size(); ++j) {
    const size_t r = train.size() * size_t(per) + j;
    std::copy(others[j].begin(), others[j].end(), set.features.data() + r * size_t(D));
    const std::vector<float> z = logits(W0, b0, others[j].data());
    for (int k = 0; k < K(); ++k)
      set.targets.data()[r * size_t(K()) + size_t(k)] = k < old_outputs ? 1.f / (1.f + std::exp(-z[size_t(k)])) : 0.f;
  }
  // The head trains on standardised features (Adam then moves every input's weight at a
  // comparable pace), its weights mapped there and back: z = w.f + b = (w * sd).(f - mu) / sd
  // + (b + w.mu).
  std::vector<double> mu(size_t(D), 0.0), sd(size_t(D), 0.0);
  float* f = set.features.data();
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < D; ++d) mu[size_t(d)] += f[size_t(r) * D + d];
  for (double& v : mu) v /= rows;
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < D; ++d) sd[size_t(d)] += (f[size_t(r) * D + d] - mu[size_t(d)]) * (f[size_t(r) * D + d] - mu[size_t(d)]);
  double mean_sd = 0;
  for (double& v : sd) mean_sd += (v = std::sqrt(v / rows));
  mean_sd /= D;
  for (double& v : sd) v = std::max(v, 0.1 * mean_sd + 1e-6);
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < D; ++d) f[size_t(r) * D + d] = float((f[size_t(r) * D + d] - mu[size_t(d)]) / sd[size_t(d)]);
  auto& params = m.layer(0).params();
  for (int k = 0; k < K(); ++k) {
    double shift = b0[size_t(k)];
    for (int d = 0; d < D; ++d) {
      const float wkd = W0[size_t(k) * D + d];
      params[0].value.data()[size_t(k) * D + d] = float(wkd * sd[size_t(d)]);
      shift += double(wkd) * mu[size_t(d)];
    }
    params[1].value.data()[k] = float(shift);
  }

  FeatureSource source(set);
  Adam adam(o.lr);
  TrainOptions to;
  to.batch_size = std::min(o.batch_size, rows);
  const int steps_per_epoch = (rows + to.batch_size - 1) / to.batch_size;
  to.epochs = std::max(1, (o.steps + steps_per_epoch - 1) / steps_per_epoch);
  to.seed = o.seed;
  Rng rng(o.seed);
  Context c = ctx;
  c.training = true;
  c.rng = &rng;
  Trainer trainer(m, source, adam, loss_for(head), to, c);
  // Only the taught labels' rows learn; every other output keeps its weights exactly.
  std::vector<char> learns(static_cast<size_t>(K()), 0);
  for (int col : column) learns[size_t(col)] = 1;
  trainer.set_gradient_hook([&](Model& model) {
    auto& p = model.layer(0).params();
    for (int k = 0; k < K(); ++k)
      if (!learns[size_t(k)]) {
        std::fill_n(p[0].grad.data() + size_t(k) * D, D, 0.f);
        p[1].grad.data()[k] = 0.f;
      }
  });
  while (!trainer.done()) trainer.step();
  // Back to the features' own scale; rows that did not learn are the starting ones, bit for bit.
  const auto& trained = m.layer(0).params();
  w = W0;
  bias = b0;
  for (int k = 0; k < K(); ++k) {
    if (!learns[size_t(k)]) continue;
    double shift = trained[1].value.data()[k];
    for (int d = 0; d < D; ++d) {
      const double wkd = trained[0].value.data()[size_t(k) * D + d] / sd[size_t(d)];
      w[size_t(k) * D + d] = float(wkd);
      shift -= wkd * mu[size_t(d)];
    }
    bias[size_t(k)] = float(shift);
  }
}

void Teacher::State::score_held_out(const std::vector<float>& w, const std::vector<float>& bias) {
  TeachReport& r = report;
  r.labels.clear();
  for (size_t l = 0; l < taught.size(); ++l) r.labels.push_back({taught[l], 0, 0, 0});
  for (size_t p = 0; p < pictures.size(); ++p)
    for (int l : picture_labels[p]) ++r.labels[size_t(l)].pictures;
  r.right = r.held_out = 0;
  std::vector<int> positives(taught.size(), 0);
  int held_count = 0;
  for (size_t p = 0; p < pictures.size(); ++p) {
    if (!held[p]) continue;
    ++held_count;
    const std::vector<float> z = logits(w, bias, feature(p, 0));
    if (one_per_picture) {
      int best = 0;
      for (size_t l = 1; l < taught.size(); ++l)
        if (z[size_t(column[l])] > z[size_t(column[size_t(best)])]) best = int(l);
      auto& label = r.labels[size_t(picture_labels[p][0])];
      ++label.held_out;
      label.right += best == picture_labels[p][0];
      ++positives[size_t(picture_labels[p][0])];
      continue;
    }
    for (size_t l = 0; l < taught.size(); ++l) {
      const bool truth = std::find(picture_labels[p].begin(), picture_labels[p].end(), int(l)) != picture_labels[p].end();
      const bool said = z[size_t(column[l])] > 0;   // sigmoid above 0.5
      ++r.labels[l].held_out;
      r.labels[l].right += said == truth;
      positives[l] += truth;
    }
  }
  for (const auto& l : r.labels) r.right += l.right, r.held_out += l.held_out;
  // Chance: always answering the most common class (one per picture), or each label's more
  // common answer.
  r.chance = 0;
  if (held_count > 0) {
    if (one_per_picture) {
      r.chance = double(*std::max_element(positives.begin(), positives.end())) / held_count;
    } else {
      double sum = 0;
      for (int pos : positives) sum += double(std::max(pos, held_count - pos)) / held_count;
      r.chance = sum / double(taught.size());
    }
  }
}

bool Teacher::step() {
  State& s = *s_;
  if (s.fits >= 2) return false;
  if (s.features.empty()) {
    if (s.pictures.empty()) throw std::invalid_argument("teach: no pictures");
    std::vector<int> count(s.taught.size(), 0);
    for (const auto& ls : s.picture_labels)
      for (int l : ls) ++count[size_t(l)];
    for (size_t l = 0; l < s.taught.size(); ++l)
      if (count[l] == 0) throw std::invalid_argument("teach: \"" + s.taught[l] + "\" has no pictures");
    s.features.assign(s.pictures.size() * size_t(1 + s.o.copies) * size_t(s.D), 0.f);
  }
  if (s.featured < s.pictures.size()) {
    const double t0 = now_seconds();
    s.extract_some();
    s.report.feature_seconds += now_seconds() - t0;
    return true;
  }
  const double t0 = now_seconds();
  if (s.fits == 0) {
    s.split();
    std::vector<size_t> train;
    for (size_t p = 0; p < s.pictures.size(); ++p)
      if (!s.held[p]) train.push_back(p);
    std::vector<float> w, b;
    s.fit(train, w, b);
    s.score_held_out(w, b);
  } else {
    std::vector<size_t> all(s.pictures.size());
    for (size_t p = 0; p < all.size(); ++p) all[p] = p;
    s.fit(all, s.W, s.b);

    TeachReport& r = s.report;
    r.trained_params = s.taught.size() * size_t(s.D + 1);
    for (const auto& l : r.labels) {
      if (l.pictures < 4)
        r.warnings.push_back("\"" + l.name + "\" has only " + std::to_string(l.pictures) +
                             (l.pictures == 1 ? " picture" : " pictures") +
                             ": too few to keep any aside for a score. Add at least 10.");
      else if (l.pictures < 10)
        r.warnings.push_back("\"" + l.name + "\" has " + std::to_string(l.pictures) +
                             " pictures; 10 to 20 give a more reliable result.");
    }
    if (r.held_out > 0) {
      const double acc = double(r.right) / r.held_out;
      if (acc < r.chance + 0.5 * (1 - r.chance))
        r.warnings.push_back("Near chance: " + percent(acc) + " of the held-out pictures right, where guessing gets " +
                             percent(r.chance) + ". The model cannot tell these labels apart yet: add more pictures, " +
                             "more varied ones, or pictures that show the difference more clearly.");
    }
  }
  s.report.train_seconds += now_seconds() - t0;
  ++s.fits;
  return s.fits < 2;
}

Teacher::Progress Teacher::progress() const {
  const State& s = *s_;
  if (s.featured < s.pictures.size() || s.features.empty()) return {"features", s.featured, s.pictures.size()};
  if (s.fits < 2) return {"training", size_t(s.fits), 2};
  return {"done", 2, 2};
}

const TeachReport& Teacher::report() const { return s_->report; }

Model Teacher::result() const {
  const State& s = *s_;
  if (s.fits < 2) throw std::logic_error("teach: the teaching is not finished");
  Model out = slice_model(s.model, 0, s.model.num_layers());
  const size_t dense = cut_and_add_head(out, s.head_at, s.K(), s.head, s.o.seed, /*freeze_base=*/true);
  auto& p = out.layer(dense).params();
  std::copy(s.W.begin(), s.W.end(), p[0].value.data());
  std::copy(s.b.begin(), s.b.end(), p[1].value.data());
  ModelCard& card = out.card();
  card.record_fine_tuning({{"recipe", "teach"},
                           {"labels", s.taught},
                           {"pictures", s.pictures.size()},
                           {"one_per_picture", s.one_per_picture},
                           {"held_out", {{"right", s.report.right}, {"total", s.report.held_out}}},
                           {"trainable_params", s.report.trained_params}});
  card.labels = s.labels;
  card.label_mode = label_mode_of(s.head);
  // The label sets the taught pictures stand for: their taught labels with the labels the model
  // already gave them.
  card.combinations.reset();
  if (s.head == Head::kSigmoid && s.model.card().combinations) {
    auto combos = *s.model.card().combinations;
    for (size_t pic = 0; pic < s.pictures.size(); ++pic) {
      const std::vector<float> z = s.logits(s.W, s.b, s.feature(pic, 0));
      std::vector<std::string> set;
      for (int l : s.picture_labels[pic]) set.push_back(s.taught[size_t(l)]);
      for (int k = 0; k < s.K(); ++k) {
        const bool taught = std::find(s.column.begin(), s.column.end(), k) != s.column.end();
        if (!taught && z[size_t(k)] > 0) set.push_back(s.labels[size_t(k)]);
      }
      std::sort(set.begin(), set.end());
      combos.insert(set);
    }
    card.combinations = combos;
  }
  // The taught pictures become familiar: a mean per label set they show.
  NoveltyStats novelty;
  if (NoveltyStats::from_json(s.model.card().novelty, s.D, novelty)) {
    std::map<std::vector<int>, std::pair<std::vector<double>, int>> groups;
    for (size_t pic = 0; pic < s.pictures.size(); ++pic) {
      auto& [sum, n] = groups[s.picture_labels[pic]];
      sum.resize(size_t(s.D), 0.0);
      const float* f = s.feature(pic, 0);
      for (int d = 0; d < s.D; ++d) sum[size_t(d)] += f[d];
      ++n;
    }
    for (const auto& [labels, g] : groups) {
      std::vector<float> mean(size_t(s.D));
      for (int d = 0; d < s.D; ++d) mean[size_t(d)] = float(g.first[size_t(d)] / g.second);
      novelty.means.push_back(std::move(mean));
    }
    card.novelty = novelty.to_json();
  }
  return out;
}

nlohmann::json TeachReport::to_json() const {
  nlohmann::json j;
  j["labels"] = nlohmann::json::array();
  for (const auto& l : labels)
    j["labels"].push_back({{"name", l.name}, {"pictures", l.pictures}, {"right", l.right}, {"heldOut", l.held_out}});
  j["right"] = right;
  j["heldOut"] = held_out;
  j["chance"] = chance;
  j["warnings"] = warnings;
  j["trainedParams"] = trained_params;
  j["featureSeconds"] = feature_seconds;
  j["trainSeconds"] = train_seconds;
  return j;
}

}  // namespace tagnet
