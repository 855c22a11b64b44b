#!/usr/bin/env bash
# Rewrites the fuzz targets' seed corpora in tests/fuzz/corpus/ from the fuzz build: small valid
# files made by tagnet (build/fuzz/tagnet_fuzz_corpus), plus a baseline and a progressive JPEG
# of its BMP from cjpeg and jpegtran (libjpeg-turbo-progs).
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j 2 --target tagnet_fuzz_corpus
corpus=tests/fuzz/corpus
rm -rf "$corpus"
mkdir -p "$corpus"/{model,features,image,onnx,onnx_graph,model_numbers}
build/fuzz/tagnet_fuzz_corpus "$corpus"
cjpeg -quality 75 -outfile "$corpus/image/baseline.jpg" "$corpus/image/rgb.bmp"
cjpeg -quality 90 -grayscale -progressive -outfile "$corpus/image/progressive_grey.jpg" "$corpus/image/rgb.bmp"
jpegtran -progressive -outfile "$corpus/image/progressive.jpg" "$corpus/image/baseline.jpg"
du -b -s "$corpus"/*
