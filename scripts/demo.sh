#!/usr/bin/env bash
# The main job on a built-in default: generate a YOLOv8n, inspect it, and detect
# objects on the sample photos with the real COCO model when ../shared is there
# (else with the generated model on a generated image).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
Y=build/yoloc
OUT=${YOLOC_DEMO_OUT:-out/demo}
mkdir -p "$OUT"
$Y generate --scale n --nc 80 -o "$OUT/yolov8n_generated.onnx"
$Y inspect "$OUT/yolov8n_generated.onnx"
SHARED=${YOLOC_SHARED:-../shared}
if [ -f "$SHARED/models/yolov8n_coco.onnx" ]; then
  $Y inspect "$SHARED/models/yolov8n_coco.onnx"
  $Y detect "$SHARED/models/yolov8n_coco.onnx" "$SHARED/data/samples" --out "$OUT/detections"
else
  echo "demo: $SHARED not found; detecting with the generated model on a generated image" >&2
  $Y generate --scale n --nc 80 -o "$OUT/yolov8n_generated.onnx" --sample-image "$OUT/generated.png"
  $Y detect "$OUT/yolov8n_generated.onnx" "$OUT/generated.png" --out "$OUT/detections" --conf 0.000001 --max-det 20
fi
MODEL="$OUT/yolov8n_generated.onnx"; [ -f "$SHARED/models/yolov8n_coco.onnx" ] && MODEL="$SHARED/models/yolov8n_coco.onnx"
$Y bench "$MODEL" --iters 10 --warmup 2
echo "demo: results in $OUT/detections (one .json and one annotated .jpg per image)" >&2
