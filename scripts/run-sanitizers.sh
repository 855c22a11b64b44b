#!/usr/bin/env bash
# The native suite under AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer
# (preset native-debug, -O1), built with tagnet's own kernels only (XNNPACK's forward ops run in
# the release suite), then every fuzz target once over its committed corpus and
# regression inputs. Any report fails the run. Suppressions: tests/lsan.supp, tests/ubsan.supp,
# each entry saying why it is safe.
#
#   scripts/run-sanitizers.sh
#
# Left out under the sanitizers, for time only (each runs in the release suite): the
# end-to-end folder pipeline (20 epochs of SmallerVGGNet, about 25 minutes under ASan), the
# full-size dataset generations, and the accuracy checks of Fashion-MNIST training and of the
# web page's model (1 to 2 minutes each under ASan; Cli.* and Teach.* run the same code on
# fewer pictures). The build leaves MPI out (mpirun's processes are not
# instrumented, and Open MPI keeps process-wide allocations LeakSanitizer would report); the
# Trainer's data parallelism runs under the sanitizers with threads as processes
# (tests/test_data_parallel.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
slow='^(Cli\.(FolderPipelineEndToEnd|FashionMnistTrainsAndEvaluates)|MakeDataset\.(FoldersCountsAndPictureSizes|TwoClassFromTheTestPictures)|WebModel\..*)$'
cmake --preset native-debug >/dev/null
cmake --build --preset native-debug -j "$jobs"
ctest --preset native-debug -j "$jobs" -E "$slow"
scripts/fuzz.sh --corpus-only
