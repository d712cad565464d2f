#!/usr/bin/env bash
# yoloc's fast CPU executor vs ONNX Runtime CPU, side by side in one run, same
# machine, same thread count: batch 1, input filled with 0.5, median of ITERS runs.
#
# usage: bench/cpu_vs_ort.sh [MODEL]
# env:   PEER_PYTHON  python with onnxruntime + numpy (default /root/peervenv/bin/python)
#        THREADS (2)  ITERS (20)  REPEATS (3: ORT and yoloc alternate, each repeat prints both)
#        DNNL=ON|OFF  build yoloc with or without oneDNN (default ON; OFF builds in build-bench-nodnnl)
#        BUILD_DIR    where to build (default build-bench[-nodnnl] in the repo)
#        EXTRA_ARGS   extra flags for the bench main (e.g. --no-dnnl: own kernels in a oneDNN build)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${1:-$ROOT/../shared/models/yolov8n_coco.onnx}"
PEER_PYTHON="${PEER_PYTHON:-/root/peervenv/bin/python}"
THREADS="${THREADS:-2}"; ITERS="${ITERS:-20}"; REPEATS="${REPEATS:-3}"; DNNL="${DNNL:-ON}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
if [ "$DNNL" = "OFF" ]; then BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench-nodnnl}"; else BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"; fi
PEER="$ROOT/../shared/tools/peers/ort_cpu_bench.py"
[ -f "$PEER" ] || PEER="${ORT_PEER_SCRIPT:?set ORT_PEER_SCRIPT to ort_cpu_bench.py}"
[ -f "$MODEL" ] || { echo "error: model $MODEL not found" >&2; exit 2; }
"$PEER_PYTHON" -c "import onnxruntime" 2>/dev/null || { echo "error: $PEER_PYTHON has no onnxruntime (set PEER_PYTHON)" >&2; exit 2; }

# Build (2 jobs: shared 2-core machine).
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DYOLOC_WITH_DNNL="$DNNL" -DYOLOC_BUILD_TESTS=OFF >/dev/null
fi
ninja -C "$BUILD_DIR" -j2 yoloc_lib >/dev/null
LIBS="-ljpeg -lpng -lpthread"
grep -q "YOLOC_HAVE_DNNL=1" "$BUILD_DIR/build.ninja" && LIBS="$LIBS -ldnnl"

# Prefer the CLI's bench; until it exists, our bench main.
if ninja -C "$BUILD_DIR" -j2 yoloc >/dev/null 2>&1 && [ -z "$EXTRA_ARGS" ] && \
   "$BUILD_DIR/yoloc" bench --help 2>&1 | grep -q -- "--json"; then
  OURS=("$BUILD_DIR/yoloc" bench "$MODEL" --backend cpu --threads "$THREADS" --iters "$ITERS" --json)
else
  BIN="$BUILD_DIR/fast_cpu_bench"
  if [ ! -x "$BIN" ] || [ "$ROOT/bench/fast_cpu_bench.cpp" -nt "$BIN" ] || [ "$BUILD_DIR/libyoloc.a" -nt "$BIN" ]; then
    ${CXX:-g++} -std=c++17 -O2 -I"$ROOT/src" "$ROOT/bench/fast_cpu_bench.cpp" -o "$BIN" "$BUILD_DIR/libyoloc.a" $LIBS
  fi
  OURS=("$BIN" "$MODEL" "$THREADS" "$ITERS" $EXTRA_ARGS)
fi

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$REPEATS"); do
  ORT_JSON="$("$PEER_PYTHON" "$PEER" "$MODEL" "$THREADS" "$ITERS")"
  OUR_JSON="$("${OURS[@]}" | tail -n 1)"
  echo "ort:   $ORT_JSON"
  echo "yoloc: $OUR_JSON"
  "$PEER_PYTHON" - "$ORT_JSON" "$OUR_JSON" <<'PY'
import json, sys
o, y = json.loads(sys.argv[1]), json.loads(sys.argv[2])
om, ym = o["p50_ms"], y["median_ms"]
print(f"median ms: onnxruntime {om:.2f}  yoloc {ym:.2f}  yoloc/ort {ym / om:.3f}")
PY
done
