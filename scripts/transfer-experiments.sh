#!/usr/bin/env bash
# Transfer learning on the embedded Fashion-MNIST data, in three parts (figures: docs/transfer.md):
#
#  1. The Fashion-MNIST backbone: FashionNet trained on Fashion-MNIST at 56x56, one garment per
#     picture in a quadrant drawn afresh every epoch; 20 epochs of Adam at 1e-3, then 3 more at
#     1e-4 continuing the same Adam state. Prints its test accuracy.
#  2. The bottleneck-features tutorial on pullover vs coat (`tagnet make-dataset pullover-coat`:
#     1,000 training and 500 validation pictures per class, product-photo style). Its backbone
#     is a VGG-style network trained on pictures of that kind: SmallerVGGNet on the fashion-color
#     dataset (`tagnet make-dataset fashion-color`, multi-label colour + garment, 75 epochs,
#     best checkpoint by validation loss). Its convolutional base runs once over both folders
#     (`tagnet features`), a top model (Flatten -> Dense 256 relu -> Dropout 0.5 -> Dense 2
#     softmax, SGD) trains on the cached features, then `tagnet finetune` joins base and top and
#     trains the last convolutional block with SGD 1e-4, momentum 0.9 and the Keras blog's
#     augmentation (shear 0.2, zoom 0.2, horizontal flips). Prints validation accuracy of the
#     top model alone and after fine-tuning.
#  3. The 2x2 multi-label task: 56x56 pictures holding 0 to 4 garments in random quadrants, a
#     fresh random set every epoch, a fixed seeded test set of 10,000. (a) the FashionNet
#     backbone of part 1 frozen under a new sigmoid head, (b) the same start with every layer
#     training. Prints exact match, per-label F1 and mAP of both.
#
#   scripts/transfer-experiments.sh [--quick] [--fresh] [--out DIR]
#
# --quick uses a fraction of the data and epochs (a smoke run of a few minutes); --fresh redoes
# every step (by default a step whose output file exists is kept, so an interrupted run resumes
# where it stopped, and a backbone copied to OUT/fashionnet.tagnet or OUT/vgg-backbone.tagnet
# is used as it is); --out picks the folder (default build/transfer, build/transfer-quick with
# --quick). Trainings run under `nice -n 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
fresh=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --fresh) fresh=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "transfer-experiments.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  out=${out:-build/transfer-quick}
  backbone_data=(--limit 12000 --test-limit 2000); backbone_epochs=2; backbone_slow_epochs=1
  vgg_data=(--per-class 100); vgg_epochs=3; top_epochs=20; finetune_epochs=2
  grid_size=(--epoch-size 3000 --test-size 1000); grid_epochs=2
else
  out=${out:-build/transfer}
  backbone_data=(); backbone_epochs=20; backbone_slow_epochs=3
  vgg_data=(); vgg_epochs=75; top_epochs=50; finetune_epochs=10
  grid_size=(--epoch-size 20000 --test-size 10000); grid_epochs=10
fi

scripts/install-deps.sh
cmake --preset native-release >/dev/null
nice -n 10 cmake --build --preset native-release -j "$(nproc)" --target tagnet
tagnet=build/native-release/tagnet
mkdir -p "$out"
[ "$fresh" = 1 ] && rm -rf "$out"/*.tagnet "$out"/*.features "$out"/*.json "$out/fashion-color" "$out/pullover-coat"

# Runs a step unless its output exists; the log keeps everything the step printed.
step() {
  local target="$1" name="$2"
  shift 2
  if [ -e "$target" ]; then
    echo "== $name: keeping $target"
    return
  fi
  echo "== $name"
  echo "   $*"
  nice -n 5 "$@" > "$out/$name.log" 2>&1 || { tail -n 5 "$out/$name.log" >&2; exit 1; }
}

# One figure from a JSON file: json FILE EXPRESSION (JavaScript, `j` is the parsed file).
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                  console.log(eval(process.argv[2]))' "$1" "$2"; }

# 1. The Fashion-MNIST backbone.
step "$out/fashionnet-phase1.tagnet" fashionnet-phase1 \
  "$tagnet" train --dataset fashion-mnist --arch fashionnet --epochs "$backbone_epochs" "${backbone_data[@]}" \
  --lr 1e-3 --model "$out/fashionnet-phase1.tagnet" --plot "$out/fashionnet-phase1-plot.png" \
  --history "$out/fashionnet-phase1-history.json"
step "$out/fashionnet.tagnet" fashionnet \
  "$tagnet" train --dataset fashion-mnist --base "$out/fashionnet-phase1.tagnet" --lr 1e-4 \
  --epochs "$backbone_slow_epochs" "${backbone_data[@]}" --model "$out/fashionnet.tagnet" \
  --plot "$out/fashionnet-plot.png" --history "$out/fashionnet-history.json"

# 2. The VGG-style backbone, then bottleneck features, top model, fine-tuning.
step "$out/fashion-color/dataset" make-fashion-color "$tagnet" make-dataset fashion-color "$out/fashion-color" --seed 1 \
  "${vgg_data[@]}"
step "$out/vgg-backbone.tagnet" vgg-backbone \
  "$tagnet" train --dataset "$out/fashion-color/dataset" --labels multi --arch smallervggnet --checkpoint best \
  --epochs "$vgg_epochs" --model "$out/vgg-backbone.tagnet" --plot "$out/vgg-backbone-plot.png" \
  --history "$out/vgg-backbone-history.json"
pc="$out/pullover-coat"
step "$pc/train" make-dataset "$tagnet" make-dataset pullover-coat "$pc" --seed 1
if [ "$quick" = 1 ]; then
  # 200 + 100 pictures per class.
  for split in train:200 validation:100; do
    dir=${split%%:*}; keep=${split##*:}
    for cls in "$pc/$dir"/*/; do
      ls "$cls" | sort | tail -n +$((keep + 1)) | sed "s|^|$cls|" | xargs -r rm -f
    done
  done
fi
step "$out/train.features" features-train \
  "$tagnet" features --model "$out/vgg-backbone.tagnet" --dataset "$pc/train" --labels single --out "$out/train.features"
step "$out/validation.features" features-validation \
  "$tagnet" features --model "$out/vgg-backbone.tagnet" --dataset "$pc/validation" --labels single \
  --out "$out/validation.features"
step "$out/top.tagnet" top-model \
  "$tagnet" train --features "$out/train.features" --val-features "$out/validation.features" \
  --epochs "$top_epochs" --batch-size 32 --lr 1e-3 --momentum 0.9 --model "$out/top.tagnet" \
  --plot "$out/top-plot.png" --history "$out/top-history.json"
step "$out/finetuned.tagnet" finetune \
  "$tagnet" finetune --base "$out/vgg-backbone.tagnet" --top "$out/top.tagnet" --dataset "$pc/train" \
  --val-dataset "$pc/validation" --unfreeze last-block --lr 1e-4 --momentum 0.9 --epochs "$finetune_epochs" \
  --batch-size 16 --rotation 0 --width-shift 0 --height-shift 0 --shear 0.2 --zoom 0.2 \
  --model "$out/finetuned.tagnet" --history "$out/finetune-history.json"

# 3. The 2x2 task: frozen base + new sigmoid head, and everything training.
step "$out/grid-frozen.tagnet" grid-frozen \
  "$tagnet" train --dataset fashion-mnist-2x2 --base "$out/fashionnet.tagnet" --trainable head \
  "${grid_size[@]}" --epochs "$grid_epochs" --lr 1e-3 --model "$out/grid-frozen.tagnet" \
  --plot "$out/grid-frozen-plot.png" --history "$out/grid-frozen-history.json"
step "$out/grid-all.tagnet" grid-all \
  "$tagnet" train --dataset fashion-mnist-2x2 --base "$out/fashionnet.tagnet" --trainable all \
  "${grid_size[@]}" --epochs "$grid_epochs" --lr 1e-3 --model "$out/grid-all.tagnet" \
  --plot "$out/grid-all-plot.png" --history "$out/grid-all-history.json"

echo
echo "Fashion-MNIST backbone (FashionNet, 56x56, one garment per picture):"
printf '  test accuracy after %s + %s epochs: %s\n' "$backbone_epochs" "$backbone_slow_epochs" \
  "$(json "$out/fashionnet-history.json" 'j.metrics.accuracy.toFixed(4)')"
echo "VGG-style backbone (SmallerVGGNet, fashion-color, best of $vgg_epochs epochs):"
printf '  validation exact match %s, mAP %s\n' "$(json "$out/vgg-backbone-history.json" 'j.metrics.exact_match.toFixed(4)')" \
  "$(json "$out/vgg-backbone-history.json" 'j.metrics.mAP.toFixed(4)')"
echo "pullover vs coat on the VGG-style backbone's features, validation accuracy:"
printf '  top model alone on cached features:  %s\n' "$(json "$out/top-history.json" 'j.metrics.accuracy.toFixed(4)')"
printf '  base + top before fine-tuning:       %s\n' \
  "$(json "$out/finetune-history.json" 'j.metrics_before_finetuning.accuracy.toFixed(4)')"
printf '  last block fine-tuned:               %s\n' \
  "$(json "$out/finetune-history.json" 'j.metrics.accuracy.toFixed(4)')"
echo "2x2 multi-label task (fixed test set):"
for run in frozen all; do
  f="$out/grid-$run-history.json"
  label=$([ "$run" = frozen ] && echo "(a) frozen base + new sigmoid head" || echo "(b) every layer fine-tuned")
  printf '  %-36s exact match %s  micro F1 %s  macro F1 %s  mAP %s\n' "$label" \
    "$(json "$f" 'j.metrics.exact_match.toFixed(4)')" "$(json "$f" 'j.metrics.micro_f1.toFixed(4)')" \
    "$(json "$f" 'j.metrics.macro_f1.toFixed(4)')" "$(json "$f" 'j.metrics.mAP.toFixed(4)')"
  printf '      per-label F1: %s\n' "$(json "$f" \
    'j.labels.map((k) => k + " " + j.metrics.per_label[k].f1.toFixed(3)).join(", ")')"
done
