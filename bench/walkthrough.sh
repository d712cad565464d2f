#!/usr/bin/env bash
# Regenerates docs/reports/yolov8n-jetson-nano-2gb/ with the README walkthrough's command:
#
#     yoloc pipeline yolov8n.onnx --calib calib64.txt --data val64.yaml --target jetson-nano-2gb \
#         --prune 0.141 --out report/
#
# run in a scratch folder where yolov8n.onnx is ../shared/models/yolov8n_coco.onnx and calib64.txt /
# val64.yaml are the split of docs/PRUNING.md (calibrate on the first 64 coco128 images, score on the
# other 64). The report, its charts, every stage's log and the pipeline's own log are copied into the
# report folder with every path made relative: the yoloc binary reads `yoloc`, the scratch folder
# `.`, ../shared `../shared`. Models and engines stay in the scratch folder (not committed).
# On a machine without a CUDA GPU the GPU rows say they were skipped and why.
#
# usage: bench/walkthrough.sh
# env:   YOLOC    yoloc binary (default build/yoloc; build-gpu/yoloc on the GPU machine)
#        SHARED   ../shared (default $YOLOC_SHARED or ../shared beside the repository)
#        DEST     report folder (default docs/reports/yolov8n-jetson-nano-2gb in the repository)
#        WORK     scratch folder (default: a new temporary folder, kept: models/ and engines/ are there)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-${YOLOC_SHARED:-$ROOT/../shared}}"
SHARED="$(cd "$SHARED" 2>/dev/null && pwd)" || { echo "error: ../shared not found (set SHARED)" >&2; exit 2; }
Y="${YOLOC:-$ROOT/build/yoloc}"
[ -x "$Y" ] || { echo "error: $Y not found: build yoloc first (or set YOLOC)" >&2; exit 2; }
Y="$(cd "$(dirname "$Y")" && pwd)/$(basename "$Y")"
DEST="${DEST:-$ROOT/docs/reports/yolov8n-jetson-nano-2gb}"
WORK="${WORK:-$(mktemp -d)}"; mkdir -p "$WORK"; WORK="$(cd "$WORK" && pwd)"
M="$SHARED/models/yolov8n_coco.onnx"; C128="$SHARED/data/coco128"
for f in "$M" "$C128/data.yaml"; do [ -f "$f" ] || { echo "error: $f not found (set SHARED)" >&2; exit 2; }; done
[ ! -e "$WORK/report" ] || { echo "error: $WORK/report exists: give an empty WORK folder" >&2; exit 2; }

cd "$WORK"
ln -sfn "$M" yolov8n.onnx
ls "$C128"/images/train2017/*.jpg | sort | sed -n 1,64p > calib64.txt
ls "$C128"/images/train2017/*.jpg | sort | tail -64 > val64.txt
{ echo "path: $WORK"; echo "train: val64.txt"; echo "val: val64.txt"; sed -n '/^names:/,$p' "$C128/data.yaml"; } > val64.yaml

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "yoloc: $("$Y" --version | head -1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); scratch folder $WORK"
status=0
"$Y" pipeline yolov8n.onnx --calib calib64.txt --data val64.yaml --target jetson-nano-2gb \
    --prune 0.141 --out report/ 2>&1 | tee pipeline.log || status=$?
[ -f report/report.json ] || { echo "error: the pipeline wrote no report (exit $status)" >&2; exit 1; }

# Into DEST, nothing of the scratch folder's models or engines, and no absolute path of this machine.
mkdir -p "$(dirname "$DEST")"
tmp="$(mktemp -d "$(dirname "$DEST")/.walkthrough.XXXXXX")"; trap 'rm -rf "$tmp"' EXIT
cp -r report/report.md report/report.json report/report.html report/charts report/logs "$tmp/"
cp pipeline.log "$tmp/"
find "$tmp" -type f -print0 | xargs -0 sed -i -e "s#$Y#yoloc#g" -e "s#$WORK/##g" -e "s#$WORK#.#g" \
    -e "s#$SHARED#../shared#g" -e "s#$ROOT/##g"
if grep -rIl -e "$HOME/" -e "$WORK" -e "$ROOT/" "$tmp" >/dev/null; then
  echo "error: absolute paths left in the report:" >&2; grep -rIn -e "$HOME/" -e "$WORK" -e "$ROOT/" "$tmp" | head >&2
  exit 1
fi
rm -rf "$DEST"; mv "$tmp" "$DEST"
echo "wrote $DEST (pipeline exit $status)"
exit "$status"
