#!/usr/bin/env bash
# Where an engine's device memory goes, step by step: `yoloc bench` with YOLOC_MEM_TRACE=1
# prints the cudaMemGetInfo drop after each step of loading the engine, making a context
# and its first launch (capture, instantiation, first replay). cudaMemGetInfo moves in
# 2 MiB pages, so this tells which step takes one. Rows: the default, one stream, and
# eager module loading (the kernels' code then loads with the CUDA context, before the
# first reading: it hides that memory rather than saving it). Needs a CUDA build.
#
# usage: bench/gpu_memory_steps.sh [ENGINE]   (default: builds yolov8n FP16 batch 1)
# env:   YOLOC (default build-gpu/yoloc), SHARED (default $YOLOC_SHARED or ../shared)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-${YOLOC_SHARED:-$ROOT/../shared}}"
Y="${YOLOC:-$ROOT/build-gpu/yoloc}"
[ -x "$Y" ] || { echo "error: $Y not found: build yoloc with CUDA first (or set YOLOC)" >&2; exit 2; }
E="${1:-}"
if [ -z "$E" ]; then
  E="$(mktemp -d)/f16.engine"
  "$Y" build "$SHARED/models/yolov8n_coco.onnx" --precision fp16 -o "$E" | grep -E "^memory" || exit 1
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for v in "" "YOLOC_GRAPH_STREAMS=1" "CUDA_MODULE_LOADING=EAGER"; do
  echo "== ${v:-default}"
  ( [ -n "$v" ] && export "$v"; YOLOC_MEM_TRACE=1 "$Y" bench "$E" --iters 20 --warmup 5 --json 2>&1 >/dev/null )
done
