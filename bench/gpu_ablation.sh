#!/usr/bin/env bash
# Batch-1 GPU latency of yoloc engines with each launch decision of the runtime turned off
# in turn (same engine, same call), the build-time choices compared the same way, device
# memory step by step, batch 32, coco128 mAP of the engines, and torch.compile beside it
# in the same run (only same-run ratios count: docs/BENCHMARKS.md). Needs a CUDA build.
#
# usage: bench/gpu_ablation.sh
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

build() {  # name, then yoloc build arguments
  local name=$1; shift
  "$Y" build "$@" -o "$OUT/$name.engine" > "$OUT/build_$name.log" 2>&1 || { tail -5 "$OUT/build_$name.log"; exit 1; }
}
build f16 "$M" --precision fp16 --timing-cache "$OUT/tc"
grep -E "^(ops|memory)" "$OUT/build_f16.log"
# Build-time choices, each off (no timing cache: the cache holds the default's choices).
build f16_fused "$M" --precision fp16 --horizontal-fusion
YOLOC_TACTIC_SHARE=0 YOLOC_MAX_CONV_KERNELS=0 build f16_fastest "$M" --precision fp16
YOLOC_ARENA=sequential build f16seq "$M" --precision fp16 --timing-cache "$OUT/tc"
# The arena without its bound (default: bounded to the sequential arena's 2 MiB pages).
YOLOC_ARENA=concurrent build f16_conc "$M" --precision fp16 --timing-cache "$OUT/tc"
build f16b32 "$M" --precision fp16 --batch 32 --timing-cache "$OUT/tc"
YOLOC_ARENA=concurrent build f16b32_conc "$M" --precision fp16 --batch 32 --timing-cache "$OUT/tc"
# cuDNN tactics off at batch 32 (default there: on), on at batch 1 (default there: off).
YOLOC_CUDNN=0 build f16b32_own "$M" --precision fp16 --batch 32
YOLOC_CUDNN_CANDIDATES=4 build f16_dnn "$M" --precision fp16
# Batch 32 with the batch-1 tactic policy (shared tactics, at most 8 kernels), no cache.
YOLOC_TACTIC_SHARE=0.03 YOLOC_MAX_CONV_KERNELS=8 build f16b32_cap8 "$M" --precision fp16 --batch 32
engines="f16"
if [ -n "${QDQ:-}" ]; then
  build i8 "$QDQ" --precision int8 --timing-cache "$OUT/tc"
  build i8_fp16io "$QDQ" --precision int8 --no-int8-storage --timing-cache "$OUT/tc"
  build i8b32 "$QDQ" --precision int8 --batch 32 --timing-cache "$OUT/tc"
  grep -E "^(ops|int8|memory)" "$OUT/build_i8.log"
  engines="f16 i8"
fi
for e in f16 f16_fastest $( [ -f "$OUT/i8.engine" ] && echo i8 ); do
  echo "$e: $(grep -oE "mma[0-9x]+k[0-9]+(sk[0-9]|cl[0-9])?|i8mma[0-9x]+k[0-9]+(sk[0-9])?|i8in[0-9x]+k[0-9]+s[0-9](sk[0-9])?|i8halo[0-9x]+n[0-9]+c[0-9]+s[0-9](x2)?|halo[0-9x]+n[0-9]+c[0-9]+s[0-9](x2)?|stem\(nchw\)" "$OUT/build_$e.log" | sort -u | wc -l) distinct conv kernels"
done
bm() {
  "$Y" bench "$@" --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print('median %.4f ms  p99 %.4f ms  %.0f img/s  memory after inference %.2f MB' % (j['median_ms'], j['p99_ms'], j['throughput_img_per_s'], [s['delta_bytes'] for s in j['mem_get_info_steps'] if s['after'] == 'inference runs'][0]/1e6))"
}
row() {  # label, env assignments ("" for none), engine
  echo -n "$1: "; ( [ -n "$2" ] && export $2; bm "$OUT/$3.engine" --iters 300 --warmup 30 )
}
for round in 1 2; do
  row "fp16 b1, default" "" f16
  row "fp16 b1, one stream" "YOLOC_GRAPH_STREAMS=1" f16
  row "fp16 b1, 8 streams" "YOLOC_GRAPH_STREAMS=8" f16
  row "fp16 b1, driver's carveout per kernel" "YOLOC_CARVEOUT=-1" f16
  row "fp16 b1, no programmatic dependent launch" "YOLOC_PDL=0" f16
  row "fp16 b1, no stream priorities" "YOLOC_PRIORITY=0" f16
  row "fp16 b1, old SPPF and Detect kernels" "YOLOC_SPPF=plain YOLOC_DETECT=rows" f16
  row "fp16 b1, output tiles stored from the fragments (no shared-memory staging)" "YOLOC_STAGE_OUT=0" f16
  row "fp16 b1, critical chain alone (diagnostic, wrong outputs)" "YOLOC_DEBUG_CHAIN_ONLY=1" f16
  row "fp16 b1, built with horizontal fusion (--horizontal-fusion)" "" f16_fused
  row "fp16 b1, built with each layer's fastest tactic (no sharing, no kernel cap)" "" f16_fastest
  row "fp16 b1, sequential arena (YOLOC_ARENA=sequential)" "" f16seq
  row "fp16 b1, unbounded concurrent arena (YOLOC_ARENA=concurrent)" "" f16_conc
  row "fp16 b1, built with cuDNN tactics too (YOLOC_CUDNN_CANDIDATES=4)" "" f16_dnn
  [ -f "$OUT/i8.engine" ] && row "int8 b1, default" "" i8 && row "int8 b1, driver's carveout" "YOLOC_CARVEOUT=-1" i8
  [ -f "$OUT/i8_fp16io.engine" ] && row "int8 b1, built with --no-int8-storage (fp16 between layers)" "" i8_fp16io
done
for e in f16 f16_conc f16_fastest f16seq f16_dnn f16b32 $( [ -f "$OUT/i8.engine" ] && echo i8 ); do
  echo -n "$e device memory steps (cudaMemGetInfo drop, MB): "
  "$Y" bench "$OUT/$e.engine" --iters 20 --warmup 5 --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print(', '.join('%s %.2f' % (s['after'], s['delta_bytes']/1e6) for s in j['mem_get_info_steps']))"
done
echo -n "fp16 b32: "; "$Y" bench "$OUT/f16b32.engine" --iters 60 --warmup 10 --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print('median %.4f ms  %.0f img/s' % (j['median_ms'], j['throughput_img_per_s']))"
[ -f "$OUT/i8b32.engine" ] && { echo -n "int8 b32: "; "$Y" bench "$OUT/i8b32.engine" --iters 60 --warmup 10 --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print('median %.4f ms  %.0f img/s' % (j['median_ms'], j['throughput_img_per_s']))"; }
b32() {  # label, env assignments ("" for none), engine
  echo -n "$1: "; ( [ -n "$2" ] && export $2; "$Y" bench "$OUT/$3.engine" --iters 60 --warmup 10 --json | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print('median %.4f ms  %.0f img/s' % (j['median_ms'], j['throughput_img_per_s']))" )
}
b32 "fp16 b32, carveout 100 (the batch-1 choice; default from batch 8: the driver's)" "YOLOC_CARVEOUT=100" f16b32
b32 "fp16 b32, built with the batch-1 tactic policy (shared, at most 8 kernels)" "" f16b32_cap8
b32 "fp16 b32, one stream" "YOLOC_GRAPH_STREAMS=1" f16b32
b32 "fp16 b32, output tiles stored from the fragments (no shared-memory staging)" "YOLOC_STAGE_OUT=0" f16b32
b32 "fp16 b32, built without cuDNN tactics (YOLOC_CUDNN=0)" "" f16b32_own
b32 "fp16 b32, unbounded concurrent arena (YOLOC_ARENA=concurrent)" "" f16b32_conc
b32 "fp16 b32, default (again)" "" f16b32
"$Y" bench "$OUT/f16.engine" --profile --iters 10 > "$OUT/profile_f16.txt" 2>&1
[ -f "$OUT/i8.engine" ] && "$Y" bench "$OUT/i8.engine" --profile --iters 10 > "$OUT/profile_i8.txt" 2>&1
for e in f16b32 f16_dnn; do
  echo -n "eval $e (cuDNN layers): "
  "$Y" eval "$OUT/$e.engine" --data "$D" --json 2>/dev/null \
    | python3 -c "import json,sys; j=json.load(sys.stdin); print('mAP50 %.6f mAP50-95 %.6f' % (j['mAP50'], j['mAP50_95']))"
done
for e in $engines; do
  for s in 1 4; do
    echo -n "eval $e, $s stream(s): "
    YOLOC_GRAPH_STREAMS=$s "$Y" eval "$OUT/$e.engine" --data "$D" --json 2>/dev/null \
      | python3 -c "import json,sys; j=json.load(sys.stdin); print('mAP50 %.6f mAP50-95 %.6f' % (j['mAP50'], j['mAP50_95']))"
  done
done
timeout 300 python3 "$SHARED/tools/peers/torch_yolov8.py" --modes compile16 --batches 1,32 2>/dev/null
row "fp16 b1, default, after the torch run" "" f16
