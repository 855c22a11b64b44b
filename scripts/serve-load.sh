#!/usr/bin/env bash
# Load test of `tagnet serve` (not part of the test suite): serves a copy of a small folder (the
# page's index.html and sources) on loopback and runs wrk against it, 200 connections for 30 s,
# asking for each file in turn. Prints the requests, the errors (sockets and non-2xx answers)
# and the 99th-percentile latency.
#
#   scripts/serve-load.sh [path/to/tagnet]          # default build/native-release/tagnet
#   CONNECTIONS=50 DURATION=10 scripts/serve-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tagnet=$(realpath "${1:-build/native-release/tagnet}")
connections=${CONNECTIONS:-200}
duration=${DURATION:-30}
threads=${THREADS:-2}
command -v wrk >/dev/null || { echo "tagnet: error: wrk is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site"
cp web/index.html "$work/site/"
cp -r web/src "$work/site/src"

# The server logs a line a request: to a file, not the terminal.
"$tagnet" serve "$work/site" --port 0 >"$work/out" 2>"$work/log" &
server=$!
for _ in $(seq 50); do grep -q '^serving' "$work/out" && break; sleep 0.1; done
url=$(sed -n 's|^serving .* on \(http://[^ ]*\)$|\1|p' "$work/out")
[ -n "$url" ] || { echo "tagnet: error: tagnet serve did not start" >&2; cat "$work/log" >&2; exit 1; }

{
  echo 'local paths = {"/"'
  (cd "$work/site" && find src -type f | sort | sed 's|.*|, "/&"|')
  echo '}'
  cat <<'EOF'
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("requests: %d in %.1f s (%.0f/s)\n", summary.requests, summary.duration / 1e6,
                         summary.requests / (summary.duration / 1e6)))
  io.write(string.format("errors: %d (connect %d, read %d, write %d, timeout %d, non-2xx %d)\n",
                         e.connect + e.read + e.write + e.timeout + e.status, e.connect, e.read, e.write,
                         e.timeout, e.status))
  io.write(string.format("p99 latency: %.2f ms (p50 %.2f ms, max %.2f ms)\n", latency:percentile(99) / 1000,
                         latency:percentile(50) / 1000, latency.max / 1000))
end
EOF
} >"$work/load.lua"

echo "wrk -t$threads -c$connections -d${duration}s against $url ($(find "$work/site" -type f | wc -l) files)"
wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$work/load.lua" "$url" | sed -n '/^requests:/,$p'
