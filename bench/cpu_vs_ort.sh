#!/usr/bin/env bash
# yoloc's fast CPU executor vs ONNX Runtime CPU, side by side in one run, same
# machine, same thread count: batch 1, input filled with 0.5, median of ITERS runs.
#
# usage: bench/cpu_vs_ort.sh [MODEL]
# env:   PEER_PYTHON  python with onnxruntime + numpy (default .venv/bin/python, made by scripts/peer-venv.sh)
#        THREADS (2)  ITERS (20)  REPEATS (3: ORT and yoloc alternate, each repeat prints both)
#        DNNL=ON|OFF  build yoloc with or without oneDNN (default ON; OFF builds in build-bench-nodnnl)
#        BUILD_DIR    where to build (default build-bench[-nodnnl] in the repo)
#        VARIANTS     which yoloc runs: default passive own cli (default: all but cli that apply)
#        EXTRA_ARGS   extra flags for the bench main (e.g. --profile)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${1:-$ROOT/../shared/models/yolov8n_coco.onnx}"
if [ -z "${PEER_PYTHON:-}" ]; then bash "$ROOT/scripts/peer-venv.sh"; PEER_PYTHON="$ROOT/.venv/bin/python"; fi
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

BIN="$BUILD_DIR/fast_cpu_bench"
if [ ! -x "$BIN" ] || [ "$ROOT/bench/fast_cpu_bench.cpp" -nt "$BIN" ] || [ "$BUILD_DIR/libyoloc.a" -nt "$BIN" ]; then
  ${CXX:-g++} -std=c++17 -O2 -I"$ROOT/src" "$ROOT/bench/fast_cpu_bench.cpp" -o "$BIN" "$BUILD_DIR/libyoloc.a" $LIBS
fi
# The CLI's bench too, once it exists (same executor as "default").
CLI=()
if ninja -C "$BUILD_DIR" -j2 yoloc >/dev/null 2>&1 && "$BUILD_DIR/yoloc" bench --help 2>&1 | grep -q -- "--json"; then
  CLI=("$BUILD_DIR/yoloc" bench "$MODEL" --backend cpu --threads "$THREADS" --iters "$ITERS" --json)
fi

# Variants: default = what make_executor(model, "fast") does in this environment
# (ConvKernels::Auto: oneDNN when built in, for a convolution oneDNN runs with a fast
# implementation; our kernels otherwise); own = our conv kernels; dnnl = oneDNN with
# OpenMP's default (spinning) workers; passive = oneDNN with OMP_WAIT_POLICY=passive
# (workers sleep between primitives); cli = the `yoloc bench` command itself.
if grep -q "YOLOC_HAVE_DNNL=1" "$BUILD_DIR/build.ninja"; then DEF="default own dnnl passive"; else DEF="default"; fi
[ ${#CLI[@]} -gt 0 ] && DEF="$DEF cli"
VARIANTS="${VARIANTS:-$DEF}"

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); build $BUILD_DIR"
for r in $(seq "$REPEATS"); do
  ORT_JSON="$("$PEER_PYTHON" "$PEER" "$MODEL" "$THREADS" "$ITERS")"
  echo "ort:              $ORT_JSON"
  LINES=()
  for v in $VARIANTS; do
    case "$v" in
      default) J="$("$BIN" "$MODEL" "$THREADS" "$ITERS" $EXTRA_ARGS | tail -n 1)";;
      passive) J="$(OMP_WAIT_POLICY=passive "$BIN" "$MODEL" "$THREADS" "$ITERS" --dnnl $EXTRA_ARGS | tail -n 1)";;
      dnnl)    J="$(env -u OMP_WAIT_POLICY "$BIN" "$MODEL" "$THREADS" "$ITERS" --dnnl $EXTRA_ARGS | tail -n 1)";;
      own)     J="$("$BIN" "$MODEL" "$THREADS" "$ITERS" --own $EXTRA_ARGS | tail -n 1)";;
      cli)     [ ${#CLI[@]} -gt 0 ] || continue; J="$("${CLI[@]}" | tail -n 1)";;
      *) echo "error: unknown variant $v" >&2; exit 2;;
    esac
    printf "yoloc %-10s %s\n" "$v:" "$J"
    LINES+=("$v=$J")
  done
  "$PEER_PYTHON" - "$ORT_JSON" "${LINES[@]}" <<'PY'
import json, sys
om = json.loads(sys.argv[1])["p50_ms"]
parts = [f"onnxruntime {om:.2f}"]
for a in sys.argv[2:]:
    name, j = a.split("=", 1)
    ym = json.loads(j)["median_ms"]
    parts.append(f"yoloc[{name}] {ym:.2f} (x{ym / om:.3f} of ort)")
print("median ms: " + "  ".join(parts))
PY
done
