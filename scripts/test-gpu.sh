#!/usr/bin/env bash
# Configures, builds and runs the GPU engine tests on a machine with a CUDA GPU
# (the GPU machine: Ubuntu 24.04, gcc 13, CMake 4, CUDA 13; no oneDNN there).
#   YOLOC_SHARED=/path/to/shared scripts/test-gpu.sh [gtest args for yoloc_gpu_tests]
# Env: BUILD (build folder, default build-gpu), JOBS (default nproc),
#      CUDA_ARCHS (default 90: H100/H200 only, the fastest build),
#      QUICK=1 (the test binaries only: no CLI engines, benches or coco128 evals).
set -euo pipefail
if [[ -n "${YOLOC_SHARED:-}" ]]; then
  YOLOC_SHARED="$(cd "$YOLOC_SHARED" && pwd)"
  export YOLOC_SHARED
fi
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv || true
nvcc --version | tail -1
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
mkdir -p "$BUILD"
configure() {
  cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DYOLOC_WITH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" -DYOLOC_BUILD_TESTS=ON "$@" > "$BUILD/configure.log" 2>&1
}
if ! configure; then
  # GoogleTest shipped as sources only (/usr/src/googletest): build it locally once.
  if grep -qi "gtest" "$BUILD/configure.log" && [[ -d /usr/src/googletest ]]; then
    echo "GTest not found as a package: building /usr/src/googletest"
    gt="$PWD/$BUILD/gtest"
    cmake -S /usr/src/googletest -B "$gt/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$gt/install" > "$gt.log" 2>&1 && cmake --build "$gt/build" -j "$JOBS" >> "$gt.log" 2>&1 \
      && cmake --install "$gt/build" >> "$gt.log" 2>&1 || { tail -20 "$gt.log"; exit 1; }
    rm -f "$BUILD/CMakeCache.txt"
    configure -DCMAKE_PREFIX_PATH="$gt/install" || { tail -40 "$BUILD/configure.log"; exit 1; }
  else
    tail -40 "$BUILD/configure.log"
    ls -d /usr/include/gtest /usr/include/CLI /usr/include/nlohmann /usr/include/jpeglib.h /usr/include/png.h \
      /usr/src/googletest 2>&1 | sed 's/^/deps: /'
    exit 1
  fi
fi
grep -E "yoloc:" "$BUILD/configure.log" || true
grep -q "CUDA engine ON" "$BUILD/configure.log" || { echo "error: CUDA was not found by CMake"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target yoloc_gpu_tests yoloc_tests yoloc > "$BUILD/build.log" 2>&1 \
  || { grep -E "error|Error" "$BUILD/build.log" | head -40; tail -20 "$BUILD/build.log"; exit 1; }
echo "build ok"
status=0
# CPU-side engine tests (plan, memory plan, engine file) first: quick.
"$BUILD"/tests/yoloc_tests --gtest_brief=1 --gtest_filter='Engine*' || status=1
"$BUILD"/tests/gpu/yoloc_gpu_tests --gtest_color=no "$@" || status=1

# The CLI end to end: build engines and bench them (GPU compute median from CUDA events).
model="${YOLOC_SHARED:-../shared}/models/yolov8n_coco.onnx"
if [[ -f "$model" && "${QUICK:-0}" != 1 ]]; then
  out="$BUILD/engines"
  mkdir -p "$out"
  # Builds time every conv tactic on this GPU (per-layer choices printed); the timing
  # cache makes the second fp16 build skip the timing.
  cache="$out/timing.cache"
  rm -f "$cache"
  for prec in fp32 fp16; do
    "$BUILD"/yoloc build "$model" --precision "$prec" --timing-cache "$cache" -o "$out/yolov8n_$prec.engine" || status=1
    "$BUILD"/yoloc bench "$out/yolov8n_$prec.engine" --iters 200 --warmup 20 --json || status=1
  done
  "$BUILD"/yoloc build "$model" --precision fp16 --timing-cache "$cache" -o "$out/yolov8n_fp16_cached.engine" \
    | grep -E "^tactics" || status=1
  # The batch-1 memory target in a fresh process: the cudaMemGetInfo drop from before
  # loading the FP16 batch-1 engine to after its inference runs, at most 20 MB.
  "$BUILD"/yoloc bench "$out/yolov8n_fp16.engine" --iters 20 --warmup 5 --json | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
steps = {s["after"]: s["delta_bytes"] for s in j["mem_get_info_steps"]}
m = steps["inference runs"]
print("device memory, fp16 batch 1, after inference: %.2f MB (target <= 20 MB); steps: %s" % (m / 1e6,
      ", ".join("%s %.2f" % (k, v / 1e6) for k, v in steps.items())))
sys.exit(0 if m <= 20e6 else 1)' || status=1
  # Baselines on the same engine: one stream in the graph; no programmatic dependent
  # launch; the old SIMT GEMM everywhere.
  YOLOC_GRAPH_STREAMS=1 "$BUILD"/yoloc bench "$out/yolov8n_fp16.engine" --iters 200 --warmup 20 --json || status=1
  YOLOC_PDL=0 "$BUILD"/yoloc bench "$out/yolov8n_fp16.engine" --iters 200 --warmup 20 --json || status=1
  YOLOC_CONV_KERNEL=3 "$BUILD"/yoloc bench "$out/yolov8n_fp16.engine" --iters 100 --warmup 10 --json || status=1
  # Where the time goes: every op alone.
  "$BUILD"/yoloc bench "$out/yolov8n_fp16.engine" --profile --iters 10 || status=1
  "$BUILD"/yoloc build "$model" --precision fp16 --batch 32 --timing-cache "$cache" -o "$out/yolov8n_fp16_b32.engine" || status=1
  "$BUILD"/yoloc bench "$out/yolov8n_fp16_b32.engine" --iters 50 --warmup 5 --json || status=1
  # A corrupt engine must be refused cleanly.
  head -c 1000 "$out/yolov8n_fp16.engine" > "$out/cut.engine" || true
  if "$BUILD"/yoloc bench "$out/cut.engine" 2>&1; then echo "FAIL: truncated engine accepted"; status=1; fi
  # Detector on the engine: letterbox, decode and NMS on the GPU (detect), and mAP of
  # each engine on coco128 next to the CPU executor's on the same machine (target:
  # within 0.3 points).
  shared="${YOLOC_SHARED:-../shared}"
  "$BUILD"/yoloc detect "$out/yolov8n_fp16.engine" "$shared/data/samples" --out "$out/detect_fp16" --no-draw || status=1
  data="$shared/data/coco128/data.yaml"
  if [[ -f "$data" ]]; then
    map() { "$BUILD"/yoloc eval "$1" --data "$data" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["mAP50_95"])'; }
    cpu=$(map "$model") || status=1
    for prec in fp32 fp16; do
      gpu=$(map "$out/yolov8n_$prec.engine") || status=1
      python3 -c "
import sys; c, g = float('$cpu'), float('$gpu')
print('coco128 mAP50-95: CPU fp32 %.4f, engine $prec %.4f, diff %+.2f points' % (c, g, 100 * (g - c)))
sys.exit(0 if abs(g - c) <= 0.003 else 1)" || status=1
    done
  fi
fi
# Optional speed peer (slow: torch.compile): PEER=1 and the peer script under $YOLOC_SHARED.
peer="${YOLOC_SHARED:-../shared}/tools/peers/torch_yolov8.py"
if [[ -n "${PEER:-}" && -f "$peer" ]]; then
  python3 "$peer" --modes compile16 --batches "${PEER_BATCHES:-1,32}" || true
fi
echo "test-gpu: $([[ $status == 0 ]] && echo PASS || echo FAIL)"
exit $status
