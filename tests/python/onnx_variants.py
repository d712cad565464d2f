#!/usr/bin/env python3
"""ctest: yoloc reads the export variants users have, with the same outputs.

Makes, from yolov8n_coco.onnx (opset 17, torch export): an onnxslim-folded copy, an onnx-simplified-style
copy with shapes inferred (onnx.shape_inference), and opset 13 and opset 21 conversions
(onnx.version_converter); runs `yoloc run --save` on each and on the original, and checks every output
against ../shared/data/reference/dog.npy (<= 1e-2 px on boxes, <= 1e-4 on scores). Test-only: onnx and
onnxslim come from PyPI in .venv (scripts/peer-venv.sh). Exit 77 = skipped outside CI.

    onnx_variants.py YOLOC_BINARY SOURCE_DIR WORK_DIR
"""
import os
import subprocess
import sys

yoloc, src, work = sys.argv[1:4]
shared = os.environ.get("YOLOC_SHARED", os.path.join(src, "..", "shared"))
model = os.path.join(shared, "models", "yolov8n_coco.onnx")


def skip(why):
    if os.environ.get("CI") == "true":
        print("FAIL (CI):", why)
        sys.exit(1)
    print("SKIP:", why)
    sys.exit(77)


if not os.path.exists(model):
    skip(shared + " not found")
try:
    import numpy as np
    import onnx
    import onnxslim
    from onnx import version_converter
except ImportError as e:
    skip(f"{sys.executable} lacks {e.name} (run scripts/peer-venv.sh)")

os.makedirs(work, exist_ok=True)
base = onnx.load(model)
variants = {"original": model}
slim = os.path.join(work, "slim.onnx")
onnx.save(onnxslim.slim(base), slim)
variants["onnxslim"] = slim
inferred = os.path.join(work, "inferred.onnx")
onnx.save(onnx.shape_inference.infer_shapes(base), inferred)
variants["shape-inferred"] = inferred
p = os.path.join(work, "opset21.onnx")
onnx.save(version_converter.convert_version(base, 21), p)
variants["opset21"] = p
# The converter has no 14->13 adapters; this graph's ops mean the same at opset 13 once
# Reshape's allowzero (added in 14) is dropped, and the checker confirms the result.
m13 = onnx.load(model)
m13.opset_import[0].version = 13
for n in m13.graph.node:
    keep = [a for a in n.attribute if not (n.op_type == "Reshape" and a.name == "allowzero")]
    del n.attribute[:]
    n.attribute.extend(keep)
onnx.checker.check_model(m13, full_check=True)
p = os.path.join(work, "opset13.onnx")
onnx.save(m13, p)
variants["opset13"] = p

ref = np.load(os.path.join(shared, "data", "reference", "dog.npy"))
img = os.path.join(shared, "data", "samples", "dog.jpg")
failed = 0
for name, path in variants.items():
    out = os.path.join(work, name + ".npy")
    r = subprocess.run([yoloc, "run", path, "--image", img, "--save", out], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{name}: yoloc failed: {r.stderr.strip()}")
        failed += 1
        continue
    y = np.load(out).reshape(ref.shape)
    box = float(np.abs(y[:4] - ref[:4]).max())
    score = float(np.abs(y[4:] - ref[4:]).max())
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    ok = box <= 1e-2 and score <= 1e-4
    failed += not ok
    print(f"{name:15s} opset {onnx.load(path).opset_import[0].version:2d}  box max|diff| {box:.2e}  "
          f"score max|diff| {score:.2e}  {'ok' if ok else 'FAIL'}  ops: {' '.join(ops)}")
print(f"{len(variants) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
