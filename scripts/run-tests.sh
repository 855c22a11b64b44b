#!/usr/bin/env bash
# Builds tagnet natively (XNNPACK forward ops and the project's own kernels) and runs the whole
# test suite; the suite again in the other native configuration, the project's own kernels only
# (what the WASM build runs), under the sanitizers, with the fuzz targets over their corpora
# (run-sanitizers.sh); then builds both WebAssembly variants and runs the Node tests against
# the native outputs; then builds the web page and runs its tests in headless Chromium.
# (preset native-noxnnpack builds the own-kernels-only configuration without sanitizers.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$jobs"
ctest --preset native-release -j "$jobs"
scripts/run-sanitizers.sh
TAGNET_WASM_REFERENCE="$PWD/build/native-release/tagnet_wasm_reference" wasm/run-tests.sh
web/run-tests.sh
