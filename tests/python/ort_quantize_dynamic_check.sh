#!/usr/bin/env bash
# Test-only: quantizes the real YOLOv8n the way the seed report did (ONNX Runtime's
# quantize_dynamic, pip onnxruntime) and checks that `yoloc check --target tensorrt`
# rejects it (non-zero exit, DynamicQuantizeLinear/ConvInteger and zero-point lines),
# while the float model passes.
# Usage: tests/python/ort_quantize_dynamic_check.sh [YOLOC_BINARY] [MODEL]
# Env: PYTHON (a python with onnxruntime; default .venv/bin/python from scripts/peer-venv.sh).
# Exit 77 (ctest skip) when the model or onnxruntime is missing outside CI; failure in CI.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
yoloc="${1:-$here/build/yoloc}"
model="${2:-${YOLOC_SHARED:-$here/../shared}/models/yolov8n_coco.onnx}"
py="${PYTHON:-$here/.venv/bin/python}"
skip() { if [ "${CI:-}" = true ]; then echo "FAIL (CI): $*"; exit 1; fi; echo "SKIP: $*"; exit 77; }
[ -f "$model" ] || skip "$model not found"
"$py" -c "import onnxruntime.quantization" 2>/dev/null || skip "$py has no onnxruntime (scripts/peer-venv.sh)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" - "$model" "$tmp/dyn.onnx" <<'PY'
import sys
from onnxruntime.quantization import quantize_dynamic, QuantType
# The seed's call: defaults (uint8 weights, QOperator integer ops for Conv/MatMul).
quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QUInt8)
print("quantize_dynamic: wrote", sys.argv[2])
PY
set +e
"$yoloc" check "$tmp/dyn.onnx" --target tensorrt > "$tmp/out.txt" 2> "$tmp/err.txt"
rc=$?
set -e
fail=0
[ "$rc" -ne 0 ] || { echo "FAIL: yoloc check accepted the quantize_dynamic model"; fail=1; }
for rule in '\[dynamic-quantization\]' '\[integer-op\]' '\[zero-point\]'; do
    grep -q "$rule" "$tmp/out.txt" || { echo "FAIL: no $rule line"; fail=1; }
done
"$yoloc" check "$model" --target tensorrt > "$tmp/float.txt" 2>&1 || { echo "FAIL: float model flagged"; cat "$tmp/float.txt"; fail=1; }
echo "quantize_dynamic model: exit $rc, $(grep -c ': \[' "$tmp/out.txt") violation lines, e.g.:"
# One example line per rule. Filter in awk rather than `sort | head`: under pipefail,
# head closing the pipe early kills sort with SIGPIPE and set -e ends the script (a CI failure).
awk -F'[][]' '/: \[/ && !seen[$2]++' "$tmp/out.txt"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
