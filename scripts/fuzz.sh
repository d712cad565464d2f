#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 300).
#   scripts/fuzz.sh [SECONDS]
# Findings (crash-*, leak-*, timeout-*) land in build-fuzz/findings/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-300}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DYOLOC_FUZZ=ON -DYOLOC_BUILD_TESTS=OFF -DYOLOC_WITH_DNNL=OFF >/dev/null
ninja -C build-fuzz fuzz_onnx_reader
status=0
for t in onnx_reader:onnx; do
  name=${t%%:*}; corpus=${t##*:}
  work=build-fuzz/corpus/$corpus; mkdir -p "$work" "build-fuzz/findings/$name"
  cp -n fuzz/corpus/$corpus/* "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${SECS}s" >&2
  build-fuzz/fuzz/fuzz_$name "$work" fuzz/corpus/$corpus -max_total_time="$SECS" -rss_limit_mb=2048 \
    -max_len=65536 -timeout=10 -artifact_prefix="build-fuzz/findings/$name/" -print_final_stats=1 || status=1
done
exit $status
