#!/usr/bin/env bash
# Nsight Compute on chosen kernels of a yoloc engine: speed of light, occupancy, warp stalls, launch
# statistics per kernel launch (kernel nodes of the CUDA graph). The GPU machine's CUDA 13 has ncu
# and allows the counters. Needs a CUDA build (scripts/test-gpu.sh makes build-gpu/).
#
# usage: bench/gpu_ncu.sh ENGINE [KERNEL_REGEX] [LAUNCHES]
#   e.g. bench/gpu_ncu.sh /tmp/e/b32.engine 'sppf_words|detect_parts|conv_stem_kernel' 3
# env:   YOLOC  yoloc binary (default build-gpu/yoloc);  NCU  ncu binary (default: on PATH or /usr/local/cuda/bin)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
Y="${YOLOC:-$ROOT/build-gpu/yoloc}"
NCU="${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}"
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
[ -x "$NCU" ] || { echo "error: ncu not found (set NCU)" >&2; exit 2; }
[ -x "$Y" ] || { echo "error: $Y not found: build yoloc with CUDA first (or set YOLOC)" >&2; exit 2; }
"$NCU" --graph-profiling node --kernel-name "regex:${2:-conv_}" --launch-count "${3:-4}" \
  --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
  "$Y" bench "$1" --iters 1 --warmup 0
