#!/usr/bin/env bash
# Builds tagnet in both native configurations (XNNPACK on, and the project's own kernels
# only, which is what the WASM build runs) and runs the whole test suite on each; the suite
# again under the sanitizers with the fuzz targets over their corpora (run-sanitizers.sh); then builds
# both WebAssembly variants and runs the Node tests against the native outputs; then builds the
# web page and runs its tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
for preset in native-release native-noxnnpack; do
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done
scripts/run-sanitizers.sh
TAGNET_WASM_REFERENCE="$PWD/build/native-release/tagnet_wasm_reference" wasm/run-tests.sh
web/run-tests.sh
