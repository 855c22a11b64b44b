#!/usr/bin/env bash
# The web page's default model, web/model/default.tagnet, from its recipe: the wardrobe set
# (`tagnet make-dataset wardrobe`: six colours x seven garments and garments in muted colours;
# no sandals or bags, which are left for measuring what a taught label gets from it) and
# SmallerVGGNet's convolutions under global average pooling and a linear classifier
# (smallervggnet-gap-linear) at 64x64 trained on it with tagnet's own kernels on 2 threads and
# their AVX2 build (TAGNET_HWY_TARGET=AVX2), which gives the same weights on every x86-64 machine
# with AVX2. It keeps BatchNorm's moving averages (--bn-statistics moving), with which it was
# made and measured, and no optimizer state (the page downloads it). About 14 minutes on 2 cores; the result is committed
# with the recipe in web/model/recipe.txt, and web/build.sh rebuilds it when the recipe changes.
#
#   scripts/make-web-model.sh            # write web/model/default.tagnet and recipe.txt
#   scripts/make-web-model.sh --check    # train again; the weights must equal the committed ones bit for bit
#   scripts/make-web-model.sh --recipe   # print the recipe
set -euo pipefail
cd "$(dirname "$0")/.."

dataset_args=(--seed 1 --per-class 120)
train_args=(--labels multi --arch smallervggnet-gap-linear --size 64 --epochs 30 --batch-size 16 --seed 42
            --threads 2 --backend hwy --checkpoint best --bn-statistics moving --no-optimizer-state)
recipe="make-dataset wardrobe ${dataset_args[*]}; train ${train_args[*]}"
if [[ ${1:-} == --recipe ]]; then
  echo "$recipe"
  exit 0
fi

cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$(nproc)" --target tagnet
tagnet=$PWD/build/native-release/tagnet
# Each instruction set sums in its own order; one is pinned so that the weights are reproducible.
export TAGNET_HWY_TARGET=AVX2
work=build/web-model
rm -rf "$work"
mkdir -p "$work"
# Relative paths: the model records its dataset as given, and the file is committed.
(cd "$work" && "$tagnet" make-dataset wardrobe wardrobe "${dataset_args[@]}" >/dev/null &&
  "$tagnet" train --dataset wardrobe/dataset "${train_args[@]}" --model default.tagnet --plot plot.png \
    --history history.json --title "The web page's default model: smallervggnet-gap-linear on the wardrobe set" > train.log)
tail -n 14 "$work/train.log"

# The data section of a model file (weights and statistics); the JSON header also holds the
# epochs' wall times, which differ from run to run.
data_section() { tail -c "$(od -An -t u8 -j 24 -N 8 "$1" | tr -d ' ')" "$1"; }
if [[ ${1:-} == --check ]]; then
  if cmp <(data_section "$work/default.tagnet") <(data_section web/model/default.tagnet); then
    echo "make-web-model: web/model/default.tagnet has its recipe's weights, bit for bit"
  else
    echo "make-web-model: web/model/default.tagnet differs from what its recipe trains" >&2
    exit 1
  fi
  exit 0
fi
mkdir -p web/model
cp "$work/default.tagnet" web/model/default.tagnet
cp "$work/plot.png" web/model/plot.png
echo "$recipe" > web/model/recipe.txt
echo "make-web-model: wrote web/model/default.tagnet ($(stat -c %s web/model/default.tagnet) bytes)"
