#!/usr/bin/env bash
# Installs, builds and runs every test (GoogleTest via ctest, including the
# Python oracle checks registered in ctest), then the portability checks of
# docs/PORTABILITY.md: the CUDA sources as strict C++14 (when nvcc is there) and
# the aarch64 cross build with its quick suite under qemu-user.
# YOLOC_CROSS=0 skips the portability checks (e.g. for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh
bash scripts/peer-venv.sh   # test oracles from PyPI (pycocotools, onnxruntime) in .venv
BUILD=${YOLOC_BUILD_DIR:-build}
cd "$BUILD"
ctest --output-on-failure ${YOLOC_CTEST_ARGS:-} -j"${YOLOC_TEST_JOBS:-2}"
cd "$ROOT"
if [ "${YOLOC_CROSS:-1}" != 0 ]; then
  bash scripts/cross-aarch64.sh
fi
