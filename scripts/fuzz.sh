#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS.
#   scripts/fuzz.sh [--parallel] [--build-dir DIR] [SECONDS] [TARGET...]
#     SECONDS     time per target (default 300)
#     TARGET      onnx_reader engine_file dataset image calib_cache (default: all, in this order)
#     --parallel  run the targets at the same time (one process each) instead of one after another
#     --build-dir build folder (default build-fuzz; also $YOLOC_FUZZ_BUILD)
# Seeds: fuzz/corpus/<corpus>/ (read-only); the growing corpus: BUILD/corpus/<corpus>/.
# Findings (crash-*, leak-*, timeout-*, oom-*) land in BUILD/findings/<target>/, each
# run's log in BUILD/logs/<target>.log; the last line per target says seconds, executions
# and the result. Prefix with `nice -n 19` on a shared machine. Exit 1 when any target
# found something.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${YOLOC_FUZZ_BUILD:-build-fuzz}
SECS=300
PARALLEL=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --parallel) PARALLEL=1 ;;
    --build-dir) BUILD=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    [0-9]*) SECS=$1 ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done
ALL=(onnx_reader engine_file dataset image calib_cache)
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

corpus_of() {
  case "$1" in
    onnx_reader) echo onnx ;;
    engine_file) echo engine ;;
    *) echo "$1" ;;
  esac
}
max_len_of() {
  case "$1" in
    dataset|calib_cache) echo 16384 ;;
    *) echo 65536 ;;
  esac
}

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DYOLOC_FUZZ=ON -DYOLOC_BUILD_TESTS=OFF -DYOLOC_WITH_DNNL=OFF -DYOLOC_WITH_CUDA=OFF >/dev/null
ninja -C "$BUILD" ${YOLOC_JOBS:+-j$YOLOC_JOBS} $(for t in "${TARGETS[@]}"; do echo "fuzz_$t"; done)

run_one() {
  local name=$1 corpus work log rc
  corpus=$(corpus_of "$name")
  [ -d "fuzz/corpus/$corpus" ] || { echo "fuzz: unknown target $name" >&2; return 2; }
  work=$BUILD/corpus/$corpus
  log=$BUILD/logs/$name.log
  mkdir -p "$work" "$BUILD/findings/$name" "$BUILD/logs"
  echo "fuzz: $name for ${SECS}s (log $log)" >&2
  rc=0
  # TMPDIR: the dataset target writes its data.yaml there.
  TMPDIR=$BUILD "$BUILD/fuzz/fuzz_$name" "$work" "fuzz/corpus/$corpus" -max_total_time="$SECS" \
    -rss_limit_mb=2048 -max_len="$(max_len_of "$name")" -timeout=10 \
    -artifact_prefix="$BUILD/findings/$name/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  local execs secs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $name: ${secs:-$SECS} s, ${execs:-?} executions, no finding" >&2
  else
    echo "fuzz: $name: FINDING (exit $rc) after ${execs:-?} executions: see $log and $BUILD/findings/$name/" >&2
    grep -m3 -E 'ERROR:|runtime error:|SUMMARY:' "$log" >&2 || true
  fi
  return $rc
}

status=0
if [ $PARALLEL -eq 1 ]; then
  pids=()
  for t in "${TARGETS[@]}"; do run_one "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
else
  for t in "${TARGETS[@]}"; do run_one "$t" || status=1; done
fi
exit $status
