#!/usr/bin/env bash
# A scratch virtual environment (.venv, ignored by git) with the test oracles and
# benchmark peers from PyPI: pycocotools, onnxruntime, numpy. Never a dependency
# of yoloc itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && "$PY" -m venv .venv; }
fi
.venv/bin/python -c "import pycocotools, onnxruntime, numpy, onnx, onnxslim" 2>/dev/null && exit 0
echo "peer-venv: installing pycocotools onnxruntime numpy onnx onnxslim into .venv" >&2
.venv/bin/pip install -q --disable-pip-version-check pycocotools onnxruntime numpy onnx onnxslim
