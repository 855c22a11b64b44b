#!/usr/bin/env bash
# Builds the web page into web/dist with everything it needs: the native CLI (preset
# native-release, which makes the example pictures and serves the page), both WebAssembly variants
# (preset wasm-release, copied to web/wasm/), the default model (web/model/default.tagnet,
# committed; scripts/make-web-model.sh trains it), the example pictures, web/node_modules
# (npm ci) and the Vite build.
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

# The default model is committed (web/model/default.tagnet, 1.3 MB) with its recipe; when the
# recipe in scripts/make-web-model.sh changes, it is trained again (about 14 minutes).
model_dir=$root/build/web/model
if [[ "$(cat web/model/recipe.txt 2>/dev/null)" != "$(scripts/make-web-model.sh --recipe)" ]] ||
   ! "$tagnet" summary --model web/model/default.tagnet >/dev/null 2>&1; then
  echo "web/build.sh: the default model's recipe changed: training it again (scripts/make-web-model.sh)"
  scripts/make-web-model.sh
fi
# The bundled examples are the unseen test pictures of `make-dataset fashion-color` (seed 1),
# the same pictures the wardrobe set comes with; its folders give the browser tests pictures.
if [[ ! -d $model_dir/fashion-color/examples ]]; then
  rm -rf "$model_dir"
  mkdir -p "$model_dir"
  "$tagnet" make-dataset fashion-color "$model_dir/fashion-color" --seed 1 >/dev/null
fi

# npm ci only when the lock file changed since the last install.
cd web
if ! cmp -s package-lock.json node_modules/.tagnet-installed-lock 2>/dev/null; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.tagnet-installed-lock
fi
TAGNET_WASM_DIR=$root/web/wasm TAGNET_WEB_MODEL=$root/web/model/default.tagnet \
  TAGNET_WEB_EXAMPLES=$model_dir/fashion-color/examples TAGNET_WEB_MODEL_DESCRIPTION='clothing colours and kinds' \
  npm run --silent build
cd "$root"

