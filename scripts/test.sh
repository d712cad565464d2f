#!/usr/bin/env bash
# Installs, builds and runs every test (GoogleTest via ctest, including the
# Python oracle checks registered in ctest), then the portability checks of
# docs/PORTABILITY.md: the CUDA sources as strict C++14 (when nvcc is there) and
# the aarch64 cross build with its quick suite under qemu-user.
# YOLOC_CROSS=0 skips the portability checks (e.g. for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Measured on 2 cores with other builds running: a fresh clone's setup, build and native
# suite took 34 min (CI log); the aarch64 build, its quick suite under qemu and the CUDA
# check take 11-25 min more (docs/PORTABILITY.md).
echo "test.sh: about 35 min on 2 cores for setup, build and the native suite, then 11-25 min for the aarch64 and CUDA checks (YOLOC_CROSS=0 skips them)" >&2
bash scripts/setup.sh
bash scripts/peer-venv.sh   # test oracles from PyPI (pycocotools, onnxruntime) in .venv
BUILD=${YOLOC_BUILD_DIR:-build}
cd "$BUILD"
ctest --output-on-failure ${YOLOC_CTEST_ARGS:-} -j"${YOLOC_TEST_JOBS:-2}"
cd "$ROOT"
if [ "${YOLOC_CROSS:-1}" != 0 ]; then
  bash scripts/cross-aarch64.sh
fi
