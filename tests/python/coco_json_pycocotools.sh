#!/usr/bin/env bash
# ctest: `yoloc eval --save-json --json` on coco128, then pycocotools loads and scores the file
# and its mAP50-95 and mAP50 must equal yoloc's own figures within the protocol difference
# (check_coco_json.py --tol says how much and why).
# Needs a python with pycocotools ($YOLOC_PEER_PYTHON, made by scripts/peer-venv.sh).
# Exit 77 = skipped (ctest SKIP_RETURN_CODE) when ../shared or the venv is missing outside CI.
set -euo pipefail
YOLOC=$1; SRC=$2; OUT=$3
SHARED=${YOLOC_SHARED:-$SRC/../shared}
PY=${YOLOC_PEER_PYTHON:-$SRC/.venv/bin/python}
skip() { if [ "${CI:-}" = true ]; then echo "FAIL (CI): $*"; exit 1; else echo "SKIP: $*"; exit 77; fi; }
[ -f "$SHARED/models/yolov8n_coco.onnx" ] || skip "$SHARED not found"
"$PY" -c "import pycocotools" 2>/dev/null || skip "$PY has no pycocotools (run scripts/peer-venv.sh)"
mkdir -p "$OUT"
YOLOC_NO_PROGRESS=1 "$YOLOC" eval "$SHARED/models/yolov8n_coco.onnx" --data "$SHARED/data/coco128/data.yaml" \
  --save-json "$OUT/preds.json" --json > "$OUT/eval.json"
"$PY" "$SRC/tests/python/check_coco_json.py" "$OUT/preds.json" --images "$SHARED/data/coco128/images/train2017" \
  --yoloc-json "$OUT/eval.json"
