// What a forward or backward pass of the layers runs with: the engine, training or inference,
// the random numbers of Dropout, and the sums of other processes that train the same model.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tagnet/kernels/engine.h"

namespace tagnet {

// Sums over the processes that train one model together (tagnet::Collective, train.h): what
// synchronised BatchNorm normalises with.
class ProcessSums {
 public:
  virtual ~ProcessSums() = default;
  virtual void statistics(double* v, size_t n) = 0;   // of the inputs, in place
  // Of gradients, each process's weighted by its share of the global batch (its loss is the
  // mean over its own examples), returned in this process's units.
  virtual void gradients(double* v, size_t n) = 0;
};

// What a forward or backward pass runs with.
struct Context {
  const Engine* engine = nullptr;
  bool training = false;
  Rng* rng = nullptr;            // dropout masks; required when training with Dropout
  uint64_t param_version = 0;    // a new value makes the layers rebuild cached weights
  ProcessSums* sums = nullptr;   // set: BatchNorm trains on the statistics of every process's batch
};

}  // namespace tagnet
