// tagnet under mpirun: the processes of one data-parallel training run, over MPI
// (docs/distributed.md). Without mpirun, or in a build without MPI, tagnet runs alone and
// these say so.
//
//   int main(int argc, char** argv) {
//     tagnet::native::join_processes(&argc, &argv);
//     ...  trainer.set_collective(tagnet::native::processes());   // null: alone
//     if (tagnet::native::leads()) model.save(...);
//     tagnet::native::leave_processes();
//   }
//
// Environment (read once, by join_processes):
//   TAGNET_BUCKET_MB  gradients travel in buckets of about this many MiB, each started as soon
//                     as backward has finished its layers (default 4; 0: one allreduce of all
//                     gradients after backward, no overlap)
//   TAGNET_TIMEOUT    seconds without an answer from the other processes after which a process
//                     gives up with an error (default 300)
#pragma once

#include <cstddef>
#include <string>

#include "tagnet/train/train.h"

namespace tagnet::native {

// Joins the other processes when started by mpirun (first thing in main). On every process but
// rank 0, stdout and stderr go to /dev/null: rank 0 alone reports; errors still show (fail).
void join_processes(int* argc, char*** argv);
// The run's processes, or null when tagnet runs alone.
Collective* processes();
// Whether this process reports and writes the run's files: rank 0, or alone.
bool leads();
// Threads per process when --threads is not given: this host's cores shared among its processes
// (0, the engine's own default, when alone).
int default_threads();
// Leaves the processes at the normal end of a run.
void leave_processes();
// Prints "tagnet: error: MESSAGE" (naming the rank when there are several processes) and ends
// this process with status 1; mpirun then stops the others.
[[noreturn]] void fail(const std::string& message);

// What the gradient allreduce cost so far: its time on the communication thread, and the part
// of it the compute thread waited for after backward (the rest was hidden behind backward).
struct AllreduceStats {
  size_t steps = 0;
  double seconds = 0, exposed_seconds = 0;
  size_t bytes = 0;     // gradient bytes per step, per process
  size_t buckets = 0;   // per step
};
AllreduceStats allreduce_stats();

}  // namespace tagnet::native
