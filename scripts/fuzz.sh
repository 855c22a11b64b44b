#!/usr/bin/env bash
# Builds the fuzz preset (clang 14, libFuzzer, ASan + UBSan) and runs tagnet's fuzz targets.
#
#   scripts/fuzz.sh --seconds N [model|features|image|onnx|onnx_graph|model_numbers ...]
#                                                            fuzz each target for N seconds
#   scripts/fuzz.sh --corpus-only                            every target once over its committed
#                                                            corpus and regression inputs (CI)
#
# Fuzzing starts from tests/fuzz/corpus/<target>/ and keeps what it finds in build/fuzz/corpus/
# (never in git); a run's crashing inputs land in build/fuzz/findings/<target>/ (emptied when the
# target starts). Per target it prints
# executions, coverage (cov, ft) and the crashes, leaks, timeouts and out-of-memory runs; it
# exits non-zero when there is any.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

all_targets=(model features image onnx onnx_graph model_numbers)
seconds=""
corpus_only=false
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --corpus-only) corpus_only=true; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    model|features|image|onnx|onnx_graph|model_numbers) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (targets: ${all_targets[*]})" >&2; exit 2 ;;
  esac
done
if ! $corpus_only && ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "fuzz.sh: give --seconds N or --corpus-only" >&2
  exit 2
fi
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j 2 >/dev/null

# Inputs larger than this are not what the readers' logic is about, and slow the search.
declare -A max_len=([model]=8192 [features]=8192 [image]=16384 [onnx]=8192 [onnx_graph]=4096 [model_numbers]=256)
# The structure-aware targets build files that are valid in form from their input, so what one
# input may cost is bounded tighter: memory in MB and seconds.
declare -A rss_limit=([model]=2560 [features]=2560 [image]=2560 [onnx]=2560 [onnx_graph]=1024 [model_numbers]=1024)
declare -A time_limit=([model]=25 [features]=25 [image]=25 [onnx]=25 [onnx_graph]=10 [model_numbers]=10)
build=build/fuzz
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  regressions=tests/fuzz/regressions/$t
  findings=$build/findings/$t
  log=$build/fuzz-$t.log
  rm -rf "$findings"
  mkdir -p "$findings"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  common=(-max_len="${max_len[$t]}" -timeout="${time_limit[$t]}" -rss_limit_mb="${rss_limit[$t]}"
          -malloc_limit_mb="$(( ${rss_limit[$t]} < 2048 ? ${rss_limit[$t]} : 2048 ))"
          -artifact_prefix="$findings/" "${dict[@]}")
  if $corpus_only; then
    inputs=("$seeds"/* "$regressions"/*)
    rc=0
    "$build/fuzz_$t" "${common[@]}" -runs=0 "${inputs[@]}" >"$log" 2>&1 || rc=$?
    runs=$(grep -c "^Executed " "$log" || true)
    crashes=$(grep -cE "^==[0-9]+==ERROR|runtime error|^SUMMARY: libFuzzer" "$log" || true)
    printf 'fuzz %-8s %4d inputs: %s\n' "$t" "$runs" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (see $log)")"
    [ $rc -eq 0 ] || { status=1; tail -30 "$log" >&2; }
    continue
  fi
  work=$build/corpus/$t
  mkdir -p "$work"
  rc=0
  dirs=("$work" "$seeds")
  [ -d "$regressions" ] && dirs+=("$regressions")
  "$build/fuzz_$t" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E "^#[0-9]+" "$log" | grep -E "cov: " | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  n_crash=$(ls "$findings" | grep -c '^crash-' || true)
  n_leak=$(ls "$findings" | grep -c '^leak-' || true)
  n_timeout=$(ls "$findings" | grep -c '^timeout-' || true)
  n_oom=$(ls "$findings" | grep -c '^oom-' || true)
  printf 'fuzz %-8s %10s executions in %ss, cov %s ft %s, corpus %s; crashes %d, leaks %d, timeouts %d, out-of-memory %d\n' \
    "$t" "${execs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "$(ls "$work" | wc -l)" "$n_crash" "$n_leak" "$n_timeout" "$n_oom"
  if [ $rc -ne 0 ] || [ $((n_crash + n_leak + n_timeout + n_oom)) -gt 0 ]; then
    status=1
    echo "  findings in $findings/, log $log" >&2
    grep -m3 -E "ERROR|runtime error|SUMMARY" "$log" | sed 's/^/  /' >&2 || true
  fi
done
exit $status
