#!/usr/bin/env bash
# The main job on the embedded default data, as the multi-label Keras tutorial does it: make the
# fashion-color clothing dataset from Debian's Fashion-MNIST, train SmallerVGGNet on it (a short
# configuration: 20 epochs; the tutorial's full run is `--epochs 75`), print the validation
# metrics and classify the unseen examples (annotated copies in build/main/annotated/). Then build
# the web page (WebAssembly, the page's compact default model, Vite) and serve it on localhost
# with `tagnet serve`, printing the URL; Ctrl-C stops the server.
# Extra arguments go to `tagnet train` (for example --epochs 75).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$(nproc)" --target tagnet
tagnet=build/native-release/tagnet
out=build/main
mkdir -p "$out"
[ -d "$out/fashion-color/dataset" ] || "$tagnet" make-dataset fashion-color "$out/fashion-color" --seed 1
"$tagnet" train --dataset "$out/fashion-color/dataset" --labels multi --arch smallervggnet --epochs 20 \
  --model "$out/fashion.tagnet" --plot "$out/plot.png" --history "$out/history.json" --checkpoint best "$@"
"$tagnet" classify --model "$out/fashion.tagnet" --image "$out/fashion-color/examples" --output "$out/annotated"
echo "model, plot and history in $out/"
web/build.sh
exec "$tagnet" serve web/dist --host 127.0.0.1 --port "${TAGNET_PORT:-8080}"
