#!/usr/bin/env bash
# tagnet against what people would use instead, measured side by side on this machine: the
# runs alternate (tagnet, peer, tagnet, peer, ...) so that both see the same machine state, and
# the medians of the per-pair ratios are printed with their range.
#   native:  `tagnet bench` (the default backend) against PyTorch (Debian's python3-torch with
#            OpenBLAS from libopenblas0-openmp, unpacked under build/peers and loaded through
#            LD_LIBRARY_PATH, the system's BLAS untouched; channels_last), 2 threads each;
#   browser: `node web/bench.mjs` (the page's module, SIMD + threads) against ONNX Runtime Web
#            (the same network exported to ONNX with NHWC input) in the same headless Chromium,
#            2 threads each; and the page's training against native training with the same
#            kernels (`tagnet bench --backend hwy`, the CPU's best instruction set and SSE4).
# The peers are benchmark tools only; tagnet never loads them.
#
#   scripts/bench-vs-peers.sh [--pairs 5] [--seconds 3] [--native] [--browser]   (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=5 seconds=3 native=0 browser=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --pairs) pairs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --native) native=1; shift ;;
    --browser) browser=1; shift ;;
    *) echo "usage: $0 [--pairs N] [--seconds S] [--native] [--browser]" >&2; exit 2 ;;
  esac
done
if [[ $native == 0 && $browser == 0 ]]; then native=1 browser=1; fi

scripts/install-deps.sh  # python3-torch among them
out=build/peers
mkdir -p "$out"
openblas=$out/openblas/usr/lib/x86_64-linux-gnu/openblas-openmp
if [[ ! -e $openblas/libblas.so.3 ]]; then
  (cd "$out" && rm -f libopenblas0-openmp_*.deb && apt-get download libopenblas0-openmp >/dev/null &&
    dpkg -x libopenblas0-openmp_*.deb openblas)
fi
cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$(nproc)" --target tagnet >/dev/null
tagnet=build/native-release/tagnet
torch_peer() {
  LD_LIBRARY_PATH=$PWD/$openblas /usr/bin/python3 -W ignore scripts/peers/torch_peer.py \
    --threads 2 --channels-last --seconds "$seconds"
}
if [[ $browser == 1 ]]; then
  [[ -f web/dist/index.html ]] || web/build.sh >/dev/null
  (cd scripts/peers && npm ci --no-audit --no-fund --silent)
  [[ -f $out/smallervggnet-nhwc.onnx ]] ||
    /usr/bin/python3 -W ignore scripts/peers/torch_peer.py --export-onnx "$out/smallervggnet-nhwc.onnx"
fi

runs=$out/runs.jsonl
: > "$runs"
record() { printf '{"pair": %d, "what": "%s", "result": %s}\n' "$1" "$2" "$3" >> "$runs"; }
for ((i = 1; i <= pairs; i++)); do
  echo "pair $i of $pairs" >&2
  if [[ $native == 1 ]]; then
    record "$i" tagnet "$("$tagnet" bench --json --no-layers --seconds "$seconds" --threads 2)"
    record "$i" pytorch "$(torch_peer)"
  fi
  if [[ $browser == 1 ]]; then
    record "$i" tagnet-web "$(node web/bench.mjs --json --variant simd-threads --seconds "$seconds" --threads 2 |
                             node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(JSON.stringify({engine:r.variants["simd-threads"].engine,...r.variants["simd-threads"],browser:r.browser}))})')"
    record "$i" ort-web "$(node scripts/peers/ort-web.mjs --model "$out/smallervggnet-nhwc.onnx" --seconds "$seconds" --threads 2)"
    record "$i" tagnet-hwy "$("$tagnet" bench --json --no-layers --seconds "$seconds" --threads 2 --backend hwy)"
    # The same kernels at the page's vector width (128 bits; SSE4 has no FMA, as WebAssembly).
    record "$i" tagnet-sse4 "$(TAGNET_HWY_TARGET=SSE4 "$tagnet" bench --json --no-layers --seconds "$seconds" \
                               --threads 2 --backend hwy)"
  fi
done
/usr/bin/python3 scripts/peers/summarize.py "$runs"
