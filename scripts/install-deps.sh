#!/usr/bin/env bash
# Installs, by Debian package name, what tagnet needs to build and test. Idempotent: does
# nothing when everything is already installed.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libxnnpack-dev libpthreadpool-dev libhwy-dev libstb-dev nlohmann-json3-dev libcli11-dev
  zlib1g-dev libgtest-dev libbenchmark-dev libcairo2-dev dataset-fashion-mnist
  emscripten nodejs chromium libcpp-httplib-dev wrk
  # The fuzz targets: clang, libFuzzer and the sanitizer runtimes, the symbolizer for their
  # reports, and cjpeg/jpegtran for the JPEG seeds (tests/fuzz/make-corpus.sh).
  clang-14 libclang-rt-14-dev llvm-14 libjpeg-turbo-progs
  # Data-parallel training over processes and hosts (docs/distributed.md); iproute2 for the
  # two-host simulation in scripts/bench-ranks.sh.
  libopenmpi-dev openmpi-bin iproute2
  # ONNX: libonnx and libprotobuf parse the same files as tagnet's own reader in a native test;
  # PyTorch, the onnx package and Pillow are the import tests' oracle. None is linked into tagnet.
  libonnx-dev libprotobuf-dev python3-torch python3-onnx python3-pil
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tagnet: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
