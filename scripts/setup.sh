#!/usr/bin/env bash
# Installs what yoloc needs on Debian 12 and builds it into build/.
#   YOLOC_SKIP_APT=1    skip apt (packages already there)
#   YOLOC_BUILD_DIR     build folder (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${YOLOC_SKIP_APT:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  pkgs=(build-essential cmake ninja-build pkg-config
        libjpeg62-turbo-dev libpng-dev nlohmann-json3-dev libcli11-dev libgtest-dev
        libdnnl-dev                       # fast CPU kernels (optional at configure time)
        python3 python3-venv python3-onnx python3-numpy # test oracles: the official ONNX checker; .venv for PyPI ones
        clang libclang-rt-14-dev)         # libFuzzer for the fuzz targets
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

BUILD=${YOLOC_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${YOLOC_CMAKE_ARGS:-} >/dev/null
ninja -C "$BUILD" ${YOLOC_JOBS:+-j$YOLOC_JOBS}
echo "setup: built $BUILD/yoloc" >&2
