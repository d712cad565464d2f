#!/usr/bin/env bash
# Torch-Pruning peer for `yoloc prune` (docs/PRUNING.md): prunes yolov8n_coco's C2f bottleneck
# channels with Torch-Pruning (magnitude importance, no fine-tuning), exports ONNX and scores the
# unpruned export and the pruned one with `yoloc eval` on the val64 split (last 64 coco128 images).
# Not registered in ctest. Exits 77 (skip) when torch / torch-pruning or ../shared are missing.
#
# usage: tests/python/torch_pruning_peer.sh YOLOC_BINARY [OUT_DIR] [RATIO] [ROUND_TO]
# The venv (torch CPU + torch-pruning + onnx) is $YOLOC_TP_VENV or out/venv-tp:
#   python3 -m venv out/venv-tp
#   out/venv-tp/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu   # or plain `torch` from PyPI
#   out/venv-tp/bin/pip install torch-pruning numpy onnx onnxslim
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
YOLOC=${1:?usage: torch_pruning_peer.sh YOLOC_BINARY [OUT_DIR] [RATIO] [ROUND_TO]}
OUT=${2:-$ROOT/out/torch_pruning_peer}
RATIO=${3:-0.141}
ROUND_TO=${4:-0}
SHARED=${YOLOC_SHARED:-$ROOT/../shared}
VENV=${YOLOC_TP_VENV:-$ROOT/out/venv-tp}
PY="$VENV/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -c "import torch, torch_pruning, onnx, onnxslim" 2>/dev/null; then
  echo "SKIP: no torch + torch-pruning + onnx + onnxslim in $VENV (see this script's header)"; exit 77
fi
if [ ! -f "$SHARED/models/yolov8n_coco.onnx" ]; then echo "SKIP: $SHARED/models/yolov8n_coco.onnx missing"; exit 77; fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
ls "$SHARED"/data/coco128/images/train2017/* | sort | tail -64 > "$OUT/val64.txt"
{ echo "path: $OUT"; echo "train: val64.txt"; echo "val: val64.txt"; sed -n '/^names:/,$p' "$SHARED/data/coco128/data.yaml"; } > "$OUT/val64.yaml"
"$PY" "$ROOT/tests/python/torch_pruning_peer.py" --onnx "$SHARED/models/yolov8n_coco.onnx" \
  --peer "$SHARED/tools/peers/torch_yolov8.py" --ratio "$RATIO" --round-to "$ROUND_TO" --out "$OUT" | tail -1 | tee "$OUT/peer.json"
for m in "$SHARED/models/yolov8n_coco.onnx" "$OUT/unpruned.onnx" "$OUT/tp_pruned.onnx"; do
  echo "$m: $("$YOLOC" eval "$m" --data "$OUT/val64.yaml" --threads 2 2>&1 | grep ' all ' | awk '{print "mAP50", $6, "mAP50-95", $7}')"
done
# The unpruned export must score exactly like the original (weights loaded right).
a=$("$YOLOC" eval "$SHARED/models/yolov8n_coco.onnx" --data "$OUT/val64.yaml" --threads 2 --json 2>/dev/null | "$PY" -c "import json,sys; print(round(json.load(sys.stdin)['mAP50_95'],4))")
b=$("$YOLOC" eval "$OUT/unpruned.onnx" --data "$OUT/val64.yaml" --threads 2 --json 2>/dev/null | "$PY" -c "import json,sys; print(round(json.load(sys.stdin)['mAP50_95'],4))")
if [ "$a" != "$b" ]; then echo "FAIL: unpruned export scores $b, the original $a"; exit 1; fi
echo "PASS: unpruned export scores $a like the original"
