// Keras-style training progress: a live bar with ETA on a terminal, plain lines otherwise.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "tagnet/train/train.h"

namespace tagnet::native {

class ProgressPrinter {
 public:
  ProgressPrinter(FILE* out, const std::string& metric_name);
  void operator()(const Progress& p);

 private:
  FILE* out_;
  bool tty_;
  std::string metric_;
  std::chrono::steady_clock::time_point epoch_start_, last_draw_;
  size_t next_plain_ = 0;
};

std::string format_duration(double seconds);

}  // namespace tagnet::native
