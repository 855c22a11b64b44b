#!/usr/bin/env bash
# Builds the web page (web/build.sh), serves it with `tagnet serve` on 127.0.0.1 and runs the
# browser tests (web/test/*.test.mjs) in Debian's headless Chromium. Screenshots of each step go
# to build/web-test-artifacts/.
#
#   web/run-tests.sh
#
# TAGNET_SERVE names another program that has the `serve` subcommand (default: the tagnet just
# built).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}

[[ -x /usr/bin/chromium ]] || { echo "web/run-tests.sh: /usr/bin/chromium is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

web/build.sh
tagnet=$root/build/native-release/tagnet
serve=${TAGNET_SERVE:-$tagnet}
model_dir=$root/build/web/model

log=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$log"
}
trap cleanup EXIT
"$serve" serve web/dist --host 127.0.0.1 --port 0 > "$log/out" 2> "$log/requests" &
server_pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$log/out" || true)
  [[ -n $url ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$log/requests" >&2; echo "web/run-tests.sh: the server did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { echo "web/run-tests.sh: the server did not say where it listens" >&2; exit 1; }
echo "web/run-tests.sh: serving web/dist on $url"

# Screenshots of this run only.
rm -rf build/web-test-artifacts
export TAGNET_WEB_URL=$url TAGNET=$tagnet
export TAGNET_WEB_DATASET=$model_dir/fashion-color/dataset
# Pictures for teaching the default model new labels: Fashion-MNIST's test pictures, which its
# pretraining never drew from; sandals and bags it never saw at all.
for pair in sandal-bag pullover-coat; do
  [[ -d $model_dir/teach/$pair ]] ||
    "$tagnet" make-dataset "$pair" "$model_dir/teach/$pair" --split test --seed 7 >/dev/null
done
export TAGNET_WEB_TEACH_SETS=$model_dir/teach
node --test --test-concurrency=1 web/test/*.test.mjs
