#!/usr/bin/env bash
# The tables of docs/PRUNING.md, made with the yoloc CLI alone: each row is one `yoloc prune`,
# then `yoloc eval` of the pruned model on two held-out sets. Calibration: the first 64 images
# of ../shared/data/coco128 (sorted by name); evaluation: the other 64 ("val64", same split as
# docs/PRUNING.md and docs/QUANTIZATION.md) and ../shared/data/coco-val64b (64 COCO val2017
# images, another split than the calibration images).
#
# usage: bench/prune_table.sh [TABLE...]   (default: seed criteria)
#   seed      parameter counts of the seed setting on a generated 7-class YOLOv8n (no images)
#   criteria  criterion x reconstruction, and the downstream correction, at c2f 0.141 (6 prunes, 5 calibrated)
#   refit     the refit options one at a time, at c2f 0.141 (9 calibrated prunes with reconstruction)
#   sweep     `yoloc prune --sweep 0.1,...,0.5` on val64 (10 pruned models, each evaluated and timed)
# env:   YOLOC    yoloc binary (default build/yoloc)
#        SHARED   ../shared (default $YOLOC_SHARED or ../shared beside the repository)
#        THREADS  CPU threads for prune and eval (default 2)
#        OUT      folder for the split files, models and logs (default: a new temporary folder, kept)
#        ROWS     only these rows of the criteria and refit tables (names: l1 l1_rec act act_rec rerr_rec
#                 act_rec_corr r1 r2 r2c r3 ... r9; default: all)
# On a machine other jobs load, OMP_WAIT_POLICY=passive keeps oneDNN's OpenMP threads from spinning; it
# changes no result (the same kernels run), only the time.
# prints: the machine, then one Markdown table per TABLE; every command's output is in OUT/logs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-${YOLOC_SHARED:-$ROOT/../shared}}"
Y="${YOLOC:-$ROOT/build/yoloc}"
THREADS="${THREADS:-2}"
[ -x "$Y" ] || { echo "error: $Y not found: build yoloc first (or set YOLOC)" >&2; exit 2; }
SHARED="$(cd "$SHARED" 2>/dev/null && pwd)" || { echo "error: ../shared not found (set SHARED)" >&2; exit 2; }
M="$SHARED/models/yolov8n_coco.onnx"; C128="$SHARED/data/coco128"; VB="$SHARED/data/coco-val64b/data.yaml"
for f in "$M" "$C128/data.yaml" "$VB"; do [ -f "$f" ] || { echo "error: $f not found (set SHARED)" >&2; exit 2; }; done
OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT/logs" "$OUT/models"
TABLES=("$@"); [ ${#TABLES[@]} -gt 0 ] || TABLES=(seed criteria)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "yoloc: $("$Y" --version 2>/dev/null | head -1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); $(date -u '+%Y-%m-%d %H:%M UTC'); threads $THREADS; OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}; logs in $OUT"

# The split of docs/PRUNING.md: calibrate on the first 64 coco128 images, score on the other 64.
ls "$C128"/images/train2017/*.jpg | sort | sed -n 1,64p > "$OUT/calib64.txt"
ls "$C128"/images/train2017/*.jpg | sort | tail -64 > "$OUT/val64.txt"
{ echo "path: $OUT"; echo "train: val64.txt"; echo "val: val64.txt"; sed -n '/^names:/,$p' "$C128/data.yaml"; } > "$OUT/val64.yaml"

json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(*[j[k] for k in sys.argv[2:]])" "$@"; }
evaluate() {  # model, name, data.yaml -> "mAP50 mAP50-95"
  "$Y" eval "$1" --data "$3" --threads "$THREADS" --json > "$OUT/logs/eval_$2.json" 2> "$OUT/logs/eval_$2.log" \
    || { echo "error: yoloc eval $1 failed (see $OUT/logs/eval_$2.log)" >&2; exit 1; }
  json "$OUT/logs/eval_$2.json" mAP50 mAP50_95
}
BASE_A=""; BASE_B=""
baseline() {
  [ -n "$BASE_A" ] && return
  r=$(evaluate "$M" fp32_val64 "$OUT/val64.yaml"); read -r a50 BASE_A <<< "$r"
  r=$(evaluate "$M" fp32_val64b "$VB"); read -r b50 BASE_B <<< "$r"
  "$Y" inspect "$M" --json > "$OUT/logs/inspect_fp32.json"
  printf '| FP32 (not pruned) | %s | %.3f | %.3f | | %.3f | %.3f | | - | - |\n' \
    "$(json "$OUT/logs/inspect_fp32.json" parameters)" "$a50" "$BASE_A" "$b50" "$BASE_B"
}
row() {  # name, label, then yoloc prune options (model, ratio and output are added)
  local name=$1 label=$2; shift 2
  [ -z "${ROWS:-}" ] || [[ " $ROWS " == *" $name "* ]] || return 0
  local t0=$SECONDS
  "$Y" prune "$M" --scope c2f --ratio 0.141 --threads "$THREADS" "$@" --json -o "$OUT/models/$name.onnx" \
    > "$OUT/logs/prune_$name.json" 2> "$OUT/logs/prune_$name.log" \
    || { echo "error: yoloc prune $* failed (see $OUT/logs/prune_$name.log)" >&2; exit 1; }
  local secs=$((SECONDS - t0))
  local params; params=$(json "$OUT/logs/prune_$name.json" params_after)
  local mse; mse=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])).get('reconstruction') or {}; v=r.get('cv_mse') or 0; print('%.4f' % v if v > 0 else '')" "$OUT/logs/prune_$name.json")
  r=$(evaluate "$OUT/models/$name.onnx" "${name}_val64" "$OUT/val64.yaml"); read -r a50 a <<< "$r"
  r=$(evaluate "$OUT/models/$name.onnx" "${name}_val64b" "$VB"); read -r b50 b <<< "$r"
  python3 -c "
import sys
label, params, a50, a, b50, b, A, B, mse, secs = sys.argv[1:]
d = lambda x, y: '%+.1f' % (100 * (round(float(x), 3) - round(float(y), 3)))
print('| %s | %s | %.3f | %.3f | %s | %.3f | %.3f | %s | %s | %s |' % (label, params, float(a50), float(a), d(a, A),
      float(b50), float(b), d(b, B), mse or '-', secs))" "$label" "$params" "$a50" "$a" "$b50" "$b" "$BASE_A" "$BASE_B" "$mse" "$secs"
}
header() {
  echo
  echo "| $1 | parameters | val64 mAP50 | val64 mAP50-95 | change (points) | val64b mAP50 | val64b mAP50-95 | change (points) | held-out refit MSE | prune s |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
}

for t in "${TABLES[@]}"; do
  case "$t" in
    seed)
      echo
      echo "seed setting: yoloc generate --scale n --nc 7; yoloc prune --scope c2f --ratio 0.141 [--round-to 1]"
      "$Y" generate --scale n --nc 7 -o "$OUT/models/n7.onnx" > "$OUT/logs/generate_n7.log" 2>&1
      echo "| yoloc | parameters before | after | removed | convs changed |"
      echo "| --- | ---: | ---: | ---: | ---: |"
      for rt in 8 1; do
        "$Y" prune "$OUT/models/n7.onnx" --scope c2f --ratio 0.141 --round-to $rt --json -o "$OUT/models/n7p_rt$rt.onnx" \
          > "$OUT/logs/prune_n7_rt$rt.json" 2> "$OUT/logs/prune_n7_rt$rt.log"
        r=$(json "$OUT/logs/prune_n7_rt$rt.json" params_before params_after convs_changed); read -r pb pa cc <<< "$r"
        python3 -c "import sys; b, a, c, rt = map(int, sys.argv[1:]); print('| \`--round-to %d\`%s | {:,} | {:,} | {:,} ({:.2f}%%) | %d |'.format(b, a, b - a, 100 * (b - a) / b) % (rt, ' (default)' if rt == 8 else '', c))" "$pb" "$pa" "$cc" "$rt"
      done ;;
    criteria)
      header "yolov8n_coco, c2f 0.141: criterion and refit"
      baseline
      row l1 '`--criterion l1`, no reconstruction' --criterion l1
      row l1_rec '`--criterion l1 --reconstruct`' --criterion l1 --calib "$OUT/calib64.txt" --reconstruct
      row act '`--criterion activation`, no reconstruction' --criterion activation --calib "$OUT/calib64.txt"
      row act_rec '**`--criterion activation --reconstruct` (the documented command)**' --criterion activation --calib "$OUT/calib64.txt" --reconstruct
      row rerr_rec '`--criterion recon-error --reconstruct`' --criterion recon-error --calib "$OUT/calib64.txt" --reconstruct
      row act_rec_corr 'the documented command `--recon-correct --recon-correct-images 16` (downstream correction)' \
        --criterion activation --calib "$OUT/calib64.txt" --reconstruct --recon-correct --recon-correct-images 16 ;;
    refit)
      header "yolov8n_coco, c2f 0.141, \`--criterion activation --reconstruct\` and"
      baseline
      A=(--criterion activation --calib "$OUT/calib64.txt" --reconstruct)
      row r1 '`--recon-ridge 1e-3 --recon-prior zero --recon-all-at-once --recon-refit-depth 0` (fixed ridge toward 0, all at once)' "${A[@]}" --recon-ridge 1e-3 --recon-prior zero --recon-all-at-once --recon-refit-depth 0
      row r2 '`--recon-all-at-once --recon-refit-depth 0` (cross-validated ridge toward the unpruned weights)' "${A[@]}" --recon-all-at-once --recon-refit-depth 0
      row r2c 'row r2 and `--recon-correct --recon-correct-images 16` (downstream correction)' "${A[@]}" --recon-all-at-once --recon-refit-depth 0 --recon-correct --recon-correct-images 16
      row r3 '`--recon-prior zero --recon-all-at-once --recon-refit-depth 0`' "${A[@]}" --recon-prior zero --recon-all-at-once --recon-refit-depth 0
      row r4 '`--recon-all-at-once --recon-refit-depth 0 --recon-iterations 3`' "${A[@]}" --recon-all-at-once --recon-refit-depth 0 --recon-iterations 3
      row r5 '`--recon-all-at-once` (refit one layer downstream too)' "${A[@]}" --recon-all-at-once
      row r6 '`--recon-all-at-once --recon-samples 256`' "${A[@]}" --recon-all-at-once --recon-samples 256
      row r7 '`--recon-all-at-once --recon-iterations 3`' "${A[@]}" --recon-all-at-once --recon-iterations 3
      row r8 '`--recon-refit-depth 0` (one conv at a time, no downstream refit)' "${A[@]}" --recon-refit-depth 0
      row r9 '**defaults** (one conv at a time in graph order, one layer downstream)' "${A[@]}" ;;
    sweep)
      echo
      echo "sweep: yoloc prune MODEL --sweep 0.1,0.2,0.3,0.4,0.5 --calib calib64.txt --data val64.yaml --scope c2f --criterion activation --threads $THREADS --bench-threads 1 --bench-iters 20"
      t0=$SECONDS
      "$Y" prune "$M" --sweep 0.1,0.2,0.3,0.4,0.5 --calib "$OUT/calib64.txt" --data "$OUT/val64.yaml" --out "$OUT/sweep" \
        --scope c2f --criterion activation --threads "$THREADS" --bench-threads 1 --bench-iters 20 > "$OUT/logs/sweep.log" 2>&1 \
        || { tail -5 "$OUT/logs/sweep.log"; exit 1; }
      cat "$OUT/sweep/sweep.md"
      echo "($((SECONDS - t0)) s)" ;;
    *) echo "error: unknown table '$t' (seed, criteria, refit or sweep)" >&2; exit 2 ;;
  esac
done
