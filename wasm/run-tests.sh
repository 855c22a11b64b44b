#!/usr/bin/env bash
# Builds both WebAssembly variants (preset wasm-release) and the native reference program
# (tests/wasm_reference.cpp), then runs the Node tests in wasm/test/ against them.
#
#   wasm/run-tests.sh
#
# TAGNET_NATIVE_PRESET (default native-release) is the native build the reference program comes
# from; TAGNET_WASM_REFERENCE, when set, names an already built one instead.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
native_preset=${TAGNET_NATIVE_PRESET:-native-release}

# Debian's emscripten runs its JS optimizer with Node and needs the packaged modules.
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}

cmake --preset wasm-release >/dev/null
cmake --build --preset wasm-release -j "$jobs"

if [[ -z "${TAGNET_WASM_REFERENCE:-}" ]]; then
  cmake --preset "$native_preset" >/dev/null
  cmake --build --preset "$native_preset" -j "$jobs" --target tagnet_wasm_reference
  TAGNET_WASM_REFERENCE="$PWD/build/$native_preset/tagnet_wasm_reference"
fi
export TAGNET_WASM_REFERENCE

ref_dir=$(mktemp -d)
trap 'rm -rf "$ref_dir"' EXIT
"$TAGNET_WASM_REFERENCE" make "$ref_dir"

# ONNX Runtime checks the ONNX files tagnet exports (test/onnx.test.mjs), at the version the
# lockfile pins. Its install script only fetches GPU providers; the CPU runtime is in the package.
(cd wasm && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

export TAGNET_WASM_DIR="$PWD/build/wasm-release/wasm"
export TAGNET_WASM_REFERENCE_DIR="$ref_dir"
node --test wasm/test/*.test.mjs
