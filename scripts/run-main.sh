#!/usr/bin/env bash
# The main job on the embedded default data: trains the Fashion-MNIST tutorial network on
# Debian's Fashion-MNIST (each picture in a random quadrant of a 56x56 canvas) and prints its
# test accuracy. Extra arguments go to `tagnet train` (for example --epochs 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$(nproc)" --target tagnet
build/native-release/tagnet train --dataset fashion-mnist --epochs 5 --model build/fashion.tagnet "$@"
build/native-release/tagnet evaluate --model build/fashion.tagnet --dataset fashion-mnist
