#!/usr/bin/env bash
# Configures, builds and runs the GPU engine tests on a machine with a CUDA GPU
# (the GPU machine: Ubuntu 24.04, gcc 13, CMake 4, CUDA 13; no oneDNN there).
#   YOLOC_SHARED=.carry/shared scripts/test-gpu.sh [gtest args for yoloc_gpu_tests]
# Env: BUILD (build folder, default build-gpu), JOBS (default nproc),
#      CUDA_ARCHS (default 90: H100/H200 only, the fastest build).
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
cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DYOLOC_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" -DYOLOC_BUILD_TESTS=ON > "$BUILD.configure.log" 2>&1 \
  || { tail -40 "$BUILD.configure.log"; exit 1; }
grep -E "yoloc:" "$BUILD.configure.log" || true
grep -q "CUDA engine ON" "$BUILD.configure.log" || { echo "error: CUDA was not found by CMake"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target yoloc_gpu_tests yoloc_tests yoloc > "$BUILD.build.log" 2>&1 \
  || { grep -E "error|Error" "$BUILD.build.log" | head -40; tail -20 "$BUILD.build.log"; exit 1; }
echo "build ok"
status=0
# CPU-side engine tests (plan, memory plan, engine file) first: quick.
"$BUILD"/yoloc_tests --gtest_brief=1 --gtest_filter='Engine*' || status=1
"$BUILD"/yoloc_gpu_tests --gtest_color=no "$@" || status=1
exit $status
