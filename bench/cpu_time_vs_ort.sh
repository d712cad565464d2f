#!/usr/bin/env bash
# CPU time per inference, yoloc's fast executor against ONNX Runtime CPU, alternating in
# one run: each side runs ITERS_LO and ITERS_HI timed inferences under `perf stat -e
# task-clock`, and (CPU ms at HI - CPU ms at LO) / (HI - LO) is its CPU time per inference,
# model loading and warm-up cancelled out. On a machine shared with other builds this moves
# far less with the load than wall time (time spent waiting for a core is not counted);
# with THREADS > 1 it also counts what threads burn while they spin-wait.
#
# usage: bench/cpu_time_vs_ort.sh [MODEL]
# env:   PEER_PYTHON (.venv/bin/python)  THREADS (1)  ITERS_LO (2)  ITERS_HI (22)  REPEATS (3)
#        BUILD_DIR (build; must hold fast_cpu_bench, which bench/cpu_vs_ort.sh builds)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${1:-$ROOT/../shared/models/yolov8n_coco.onnx}"
PEER_PYTHON="${PEER_PYTHON:-$ROOT/.venv/bin/python}"
THREADS="${THREADS:-1}"; LO="${ITERS_LO:-2}"; HI="${ITERS_HI:-22}"; REPEATS="${REPEATS:-3}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PEER="$ROOT/../shared/tools/peers/ort_cpu_bench.py"
BIN="$BUILD_DIR/fast_cpu_bench"
[ -f "$MODEL" ] || { echo "error: model $MODEL not found" >&2; exit 2; }
[ -f "$PEER" ] || { echo "error: $PEER not found (the ONNX Runtime peer script)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "error: $BIN not found: run bench/cpu_vs_ort.sh with BUILD_DIR=$BUILD_DIR first" >&2; exit 2; }
command -v perf >/dev/null || { echo "error: perf not found (apt-get install linux-perf)" >&2; exit 2; }
[ "$HI" -gt "$LO" ] || { echo "error: ITERS_HI ($HI) must be larger than ITERS_LO ($LO)" >&2; exit 2; }

cpu_ms() { perf stat -x, -e task-clock "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1}'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); threads $THREADS; $((HI - LO)) inferences per side per round"
for r in $(seq "$REPEATS"); do
  o_lo=$(cpu_ms "$PEER_PYTHON" "$PEER" "$MODEL" "$THREADS" "$LO")
  o_hi=$(cpu_ms "$PEER_PYTHON" "$PEER" "$MODEL" "$THREADS" "$HI")
  y_lo=$(cpu_ms "$BIN" "$MODEL" "$THREADS" "$LO")
  y_hi=$(cpu_ms "$BIN" "$MODEL" "$THREADS" "$HI")
  awk -v r="$r" -v a="$o_lo" -v b="$o_hi" -v c="$y_lo" -v d="$y_hi" -v n="$((HI - LO))" 'BEGIN {
    o = (b - a) / n; y = (d - c) / n;
    printf "round %d: CPU ms per inference: onnxruntime %.1f  yoloc %.1f (x%.3f of ort)\n", r, o, y, y / o }'
done
