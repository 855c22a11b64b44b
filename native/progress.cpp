#include "progress.h"

#include <unistd.h>

#include <cmath>

namespace tagnet::native {

ProgressPrinter::ProgressPrinter(FILE* out, const std::string& metric)
    : out_(out), tty_(::isatty(::fileno(out)) != 0), metric_(metric) {}

std::string format_duration(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%d:%02d:%02d", int(s) / 3600, int(s) / 60 % 60, int(s) % 60);
  else if (s >= 60) std::snprintf(b, sizeof b, "%d:%02d", int(s) / 60, int(s) % 60);
  else std::snprintf(b, sizeof b, "%ds", int(std::lround(s)));
  return b;
}

void ProgressPrinter::operator()(const Progress& p) {
  using clock = std::chrono::steady_clock;
  const auto now = clock::now();
  if (p.step == 1) {
    epoch_start_ = now;
    next_plain_ = p.steps / 10;
    std::fprintf(out_, "Epoch %d/%d\n", p.epoch, p.epochs);
  }
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  char stats[256];
  std::snprintf(stats, sizeof stats, "loss: %.4f - %s: %.4f", p.loss, metric_.c_str(), p.accuracy);
  if (p.epoch_end) {
    const double elapsed = p.seconds;   // the Trainer's, validation included
    const double per_step = p.steps ? elapsed / p.steps : 0;
    std::string val;
    if (p.has_val) {
      char v[128];
      std::snprintf(v, sizeof v, " - val_loss: %.4f - val_%s: %.4f", p.val.loss, metric_.c_str(), p.val.accuracy);
      val = v;
    }
    std::fprintf(out_, "%s%zu/%zu [==============================] - %s %.0fms/step - %s%s\n",
                 tty_ ? "\r\033[K" : "", p.steps, p.steps, format_duration(elapsed).c_str(),
                 per_step * 1000, stats, val.c_str());
    std::fflush(out_);
    return;
  }
  if (tty_) {
    // Redraw at most ten times a second.
    if (p.step != p.steps && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30;
    const int done = static_cast<int>(width * p.step / p.steps);
    std::string bar(done, '=');
    if (done < width) bar += '>' + std::string(width - done - 1, '.');
    const double eta = p.step ? elapsed / p.step * (p.steps - p.step) : 0;
    std::fprintf(out_, "\r\033[K%zu/%zu [%s] - ETA: %s - %s", p.step, p.steps, bar.c_str(),
                 format_duration(eta).c_str(), stats);
    std::fflush(out_);
  } else if (p.step >= next_plain_ && p.step < p.steps && next_plain_ > 0) {
    // Logs get a line at every tenth of the epoch.
    std::fprintf(out_, "%zu/%zu - %s - %s\n", p.step, p.steps, format_duration(elapsed).c_str(), stats);
    std::fflush(out_);
    next_plain_ += std::max<size_t>(1, p.steps / 10);
  }
}

}  // namespace tagnet::native
