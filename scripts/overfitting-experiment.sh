#!/usr/bin/env bash
# The TensorFlow tutorial's overfitting experiment on the embedded data: two classes
# (pullover vs coat from Fashion-MNIST, 1,000 training and 500 validation pictures each at
# 150x150), the cats-vs-dogs network trained once plain and once with Dropout(0.2) and the
# tutorial's augmentation (random flips, rotation up to 0.1 turn, zoom 0.1). Writes both runs'
# plots and histories to build/overfitting/ and prints the final train/validation accuracy gap
# of each. Extra arguments go to both `tagnet train` runs.
#
# Both runs use Adam at 1e-4 for 40 epochs rather than Keras' default 1e-3 for 15: on these
# smooth rendered pictures the augmented run at 1e-3 never leaves chance, because Adam's
# normalised steps follow the small gradient that shrinks the output's variance and switch off
# nearly every ReLU of the third convolution (0.6% still fire after 4 epochs); PyTorch with the
# same network, data and optimizer stays at chance too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset native-release >/dev/null
cmake --build --preset native-release -j "$(nproc)" --target tagnet
tagnet=build/native-release/tagnet
out=build/overfitting
mkdir -p "$out"
[ -d "$out/pullover-coat/train" ] || "$tagnet" make-dataset pullover-coat "$out/pullover-coat" --seed 1
common=(--dataset "$out/pullover-coat/train" --val-dataset "$out/pullover-coat/validation" --labels single
        --arch catsdogs --epochs 40 --batch-size 32 --lr 1e-4 --decay 0 --checkpoint last)
"$tagnet" train "${common[@]}" --no-augment --model "$out/plain.tagnet" --plot "$out/plain-plot.png" \
  --history "$out/plain-history.json" --title "Pullover vs coat: plain" "$@"
"$tagnet" train "${common[@]}" --dropout 0.2 --rotation 36 --width-shift 0 --height-shift 0 --shear 0 \
  --zoom 0.1 --hflip true --model "$out/augmented.tagnet" --plot "$out/augmented-plot.png" \
  --history "$out/augmented-history.json" --title "Pullover vs coat: augmented, dropout 0.2" "$@"
for run in plain augmented; do
  node -e '
    const h = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).history.at(-1);
    const f = (x) => x.toFixed(3);
    console.log(`${process.argv[2].padStart(9)}: train accuracy ${f(h.accuracy)}, validation accuracy ` +
                `${f(h.val_accuracy)}, gap ${(h.accuracy - h.val_accuracy >= 0 ? "+" : "")}${f(h.accuracy - h.val_accuracy)}`);
  ' "$out/$run-history.json" "$run"
done
