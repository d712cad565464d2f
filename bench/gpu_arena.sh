#!/usr/bin/env bash
# The three activation arenas of the GPU engine side by side: yolov8n FP16 engines at batch 1
# and 32 built with YOLOC_ARENA=bounded (the default), sequential and concurrent from one timing
# cache (so the same tactics), then benched in turn, round after round (3 rounds at batch 1,
# 2 at batch 32), so that drift of the machine hits all three alike. Needs a CUDA build.
#
# usage: bench/gpu_arena.sh
# env:   YOLOC   yoloc binary built with CUDA (default build-gpu/yoloc)
#        SHARED  ../shared (default $YOLOC_SHARED or ../shared)
#        OUT     folder for engines and build logs (default: a temporary one)
# prints: each engine's planned memory line, then one line per bench: median and p99 GPU compute,
#         throughput and the cudaMemGetInfo drop after the inference runs.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-${YOLOC_SHARED:-$ROOT/../shared}}"
Y="${YOLOC:-$ROOT/build-gpu/yoloc}"
M="$SHARED/models/yolov8n_coco.onnx"
[ -x "$Y" ] || { echo "error: $Y not found: build yoloc with CUDA first (or set YOLOC)" >&2; exit 2; }
[ -f "$M" ] || { echo "error: model $M not found (set SHARED)" >&2; exit 2; }
OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
arenas="bounded sequential concurrent"
for b in 1 32; do
  for a in $arenas; do
    YOLOC_ARENA=$a "$Y" build "$M" --precision fp16 --batch $b --timing-cache "$OUT/tc" -o "$OUT/b${b}_$a.engine" \
      > "$OUT/build_b${b}_$a.log" 2>&1 || { tail -5 "$OUT/build_b${b}_$a.log"; exit 1; }
    echo "b$b $a: $(grep -E '^memory' "$OUT/build_b${b}_$a.log")"
  done
done
echo "[$SECONDS s] engines built"
bm() {  # label, engine, bench arguments
  local label=$1 e=$2; shift 2
  echo -n "$label: "
  "$Y" bench "$e" "$@" --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print('median %.4f ms  p99 %.4f  %.0f img/s  memory after inference %.2f MB' % (j['median_ms'], j['p99_ms'], j['throughput_img_per_s'], [s['delta_bytes'] for s in j['mem_get_info_steps'] if s['after'] == 'inference runs'][0]/1e6))"
}
for r in 1 2 3; do
  for a in $arenas; do bm "round $r fp16 b1 $a" "$OUT/b1_$a.engine" --iters 300 --warmup 30; done
done
for r in 1 2; do
  for a in $arenas; do bm "round $r fp16 b32 $a" "$OUT/b32_$a.engine" --iters 60 --warmup 10; done
done
echo "[$SECONDS s] done"
