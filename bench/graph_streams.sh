#!/usr/bin/env bash
# Batch-1 GPU latency of yoloc engines with the op DAG on 1, 4 and 8 streams (YOLOC_GRAPH_STREAMS),
# batch 32 throughput, coco128 mAP of each engine with 1 and 4 streams (the streams must not change a
# single detection), and torch.compile beside it in the same run. Needs a CUDA build of yoloc.
#
# usage: bench/graph_streams.sh
# env:   YOLOC   yoloc binary built with CUDA (default build-gpu/yoloc)
#        SHARED  ../shared (model, coco128, peers); default $YOLOC_SHARED or ../shared
#        QDQ     a Q/DQ model from `yoloc quantize` for the INT8 rows (skipped when unset)
#        OUT     folder for engines and logs (default: a temporary one)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-${YOLOC_SHARED:-$ROOT/../shared}}"
Y="${YOLOC:-$ROOT/build-gpu/yoloc}"
M="$SHARED/models/yolov8n_coco.onnx"; D="$SHARED/data/coco128/data.yaml"
[ -x "$Y" ] || { echo "error: $Y not found: build yoloc with CUDA first (or set YOLOC)" >&2; exit 2; }
[ -f "$M" ] || { echo "error: model $M not found (set SHARED)" >&2; exit 2; }
OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u

"$Y" build "$M" --precision fp16 --timing-cache "$OUT/tc" -o "$OUT/f16.engine" > "$OUT/build_f16.log" 2>&1 \
  || { tail -5 "$OUT/build_f16.log"; exit 1; }
grep -E "^memory" "$OUT/build_f16.log"
"$Y" build "$M" --precision fp16 --batch 32 --timing-cache "$OUT/tc" -o "$OUT/f16b32.engine" > "$OUT/build_b32.log" 2>&1 \
  || { tail -5 "$OUT/build_b32.log"; exit 1; }
# The same engine under a device-memory budget the concurrent arena does not fit: the build falls back to
# the sequential arena (docs/DECISIONS.md); speed and memory of both in the same run.
"$Y" build "$M" --precision fp16 --memory-budget 15MB --timing-cache "$OUT/tc" -o "$OUT/f16seq.engine" \
  > "$OUT/build_f16seq.log" 2>&1 || { tail -5 "$OUT/build_f16seq.log"; exit 1; }
grep -E "^memory" "$OUT/build_f16seq.log"
engines="f16"
if [ -n "${QDQ:-}" ]; then
  "$Y" build "$QDQ" --precision int8 --timing-cache "$OUT/tc" -o "$OUT/i8.engine" > "$OUT/build_i8.log" 2>&1 \
    || { tail -5 "$OUT/build_i8.log"; exit 1; }
  engines="f16 i8"
fi
bm() {
  "$Y" bench "$@" --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print('median %.4f ms  p99 %.4f ms  %.0f img/s  planned %.2f MB  cudaMemGetInfo delta %.2f MB' % (j['median_ms'], j['p99_ms'], j['throughput_img_per_s'], j['planned_device_bytes']/1e6, j['mem_get_info_delta_bytes']/1e6))"
}
for round in 1 2; do
  for s in 1 4 8; do echo -n "fp16 b1, $s stream(s): "; YOLOC_GRAPH_STREAMS=$s bm "$OUT/f16.engine" --iters 300 --warmup 30; done
  [ -f "$OUT/i8.engine" ] && for s in 1 4; do
    echo -n "int8 b1, $s stream(s): "; YOLOC_GRAPH_STREAMS=$s bm "$OUT/i8.engine" --iters 300 --warmup 30
  done
done
echo -n "fp16 b1, sequential arena (--memory-budget 15MB): "; bm "$OUT/f16seq.engine" --iters 300 --warmup 30
for e in f16 f16seq; do
  echo -n "$e device memory steps (cudaMemGetInfo drop, MB): "
  "$Y" bench "$OUT/$e.engine" --iters 20 --warmup 5 --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print(', '.join('%s %.2f' % (s['after'], s['delta_bytes']/1e6) for s in j['mem_get_info_steps']))"
done
echo -n "fp16 b32, 4 streams: "; bm "$OUT/f16b32.engine" --iters 60 --warmup 10
"$Y" bench "$OUT/f16.engine" --profile --iters 10 > "$OUT/profile_f16.txt" 2>&1
[ -f "$OUT/i8.engine" ] && "$Y" bench "$OUT/i8.engine" --profile --iters 10 > "$OUT/profile_i8.txt" 2>&1
for e in $engines; do
  for s in 1 4; do
    echo -n "eval $e, $s stream(s): "
    YOLOC_GRAPH_STREAMS=$s "$Y" eval "$OUT/$e.engine" --data "$D" --json 2>/dev/null \
      | python3 -c "import json,sys; j=json.load(sys.stdin); print('mAP50 %.6f mAP50-95 %.6f' % (j['mAP50'], j['mAP50_95']))"
  done
done
timeout 300 python3 "$SHARED/tools/peers/torch_yolov8.py" --modes compile16 --batches 1,32 2>/dev/null
echo -n "fp16 b1, 4 streams, after torch: "; bm "$OUT/f16.engine" --iters 300 --warmup 30
