#!/usr/bin/env bash
# Installs, builds and runs every test (GoogleTest via ctest, including the
# Python oracle checks registered in ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/peer-venv.sh   # test oracles from PyPI (pycocotools, onnxruntime) in .venv
BUILD=${YOLOC_BUILD_DIR:-build}
cd "$BUILD"
ctest --output-on-failure ${YOLOC_CTEST_ARGS:-} -j"${YOLOC_TEST_JOBS:-2}"
