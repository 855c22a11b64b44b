#!/usr/bin/env bash
# Builds the web page into web/dist with everything it needs: the native CLI (preset
# native-release, which trains the default model and serves the page), both WebAssembly variants
# (preset wasm-release, copied to web/wasm/), the default model (smallervggnet-gap at 64x64
# trained on `tagnet make-dataset fashion-color`; cached in build/web/model/ and retrained only
# when its recipe changes), web/node_modules (npm ci) and the Vite build.
#
#   web/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}

cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$jobs" --target tagnet
tagnet=$root/build/native-release/tagnet

cmake --preset wasm-release >/dev/null
cmake --build --preset wasm-release -j "$jobs"

# The default model: small enough for the page (1.3 MB), trained in about 3 minutes on 2 cores.
model_dir=$root/build/web/model
dataset_args=(--seed 1 --per-class 350)
train_args=(--labels multi --arch smallervggnet-gap --size 64 --epochs 30 --batch-size 16 --seed 42 --threads 2
            --checkpoint best)
recipe="make-dataset ${dataset_args[*]}; train ${train_args[*]}"
if [[ ! -f $model_dir/default.tagnet || "$(cat "$model_dir/recipe.txt" 2>/dev/null)" != "$recipe" ]] ||
   ! "$tagnet" summary --model "$model_dir/default.tagnet" >/dev/null 2>&1; then
  echo "web/build.sh: training the default model ($recipe)"
  rm -rf "$model_dir"
  mkdir -p "$model_dir"
  "$tagnet" make-dataset fashion-color "$model_dir/fashion-color" "${dataset_args[@]}" >/dev/null
  "$tagnet" train --dataset "$model_dir/fashion-color/dataset" "${train_args[@]}" \
    --model "$model_dir/default.tagnet" --plot "$model_dir/plot.png" --history "$model_dir/history.json" \
    > "$model_dir/train.log"
  tail -n 12 "$model_dir/train.log"
  echo "$recipe" > "$model_dir/recipe.txt"
fi

# npm ci only when the lock file changed since the last install.
cd web
if ! cmp -s package-lock.json node_modules/.tagnet-installed-lock 2>/dev/null; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.tagnet-installed-lock
fi
TAGNET_WASM_DIR=$root/web/wasm TAGNET_WEB_MODEL=$model_dir/default.tagnet \
  TAGNET_WEB_EXAMPLES=$model_dir/fashion-color/examples TAGNET_WEB_MODEL_DESCRIPTION='clothing colours and kinds' \
  npm run --silent build
cd "$root"

