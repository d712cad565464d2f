"""One-node models of element-wise and tensor ops, run by yoloc's reference and fast
executors, must equal ONNX Runtime on the same input.

usage: op_parity.py YOLOC SOURCE_DIR SCRATCH

The unary ops are read from src/ir/unary_ops.h (the one list every backend expands), so
an op added there is checked here without touching this file. Each op gets inputs in its
domain (positive for Log/Sqrt, values near rounding points for Round/Floor/Ceil) and,
where the op has attributes, a node that sets them to non-default values.
Tolerance: 1e-6 + 2e-6 * max(1, |y|): the expressions are float32 math on both sides, in
other libraries (Softplus and Mish differ most, by 9.5e-7 at |y| near 30; most ops exactly).
"""
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

yoloc, src, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(scratch, exist_ok=True)

header = open(os.path.join(src, "src", "ir", "unary_ops.h")).read()
unary = re.findall(r'X\((\w+),\s*"(\w*)",\s*([-0-9.e]+)f,\s*"(\w*)",\s*([-0-9.e]+)f,', header)
if len(unary) < 10:
    print(f"FAIL: read only {len(unary)} ops from unary_ops.h")
    sys.exit(1)

# Mish needs opset 18; every other op of the list exists there with the same attributes.
OPSET = 18
rng = np.random.default_rng(7)


def domain(op, shape):
    x = rng.uniform(-6, 6, shape).astype(np.float32)
    if op in ("Log", "Sqrt"):
        x = rng.uniform(1e-3, 50, shape).astype(np.float32)
    if op == "Reciprocal":
        x = np.where(np.abs(x) < 1e-2, 1.0, x).astype(np.float32)
    if op in ("Round", "Floor", "Ceil"):
        # Halves and integers: where rounding rules differ (ONNX Round: half to even).
        x = (np.round(rng.uniform(-8, 8, shape) * 2) / 2).astype(np.float32)
    if op in ("Exp", "Softplus", "Mish", "Elu"):
        x = rng.uniform(-30, 30, shape).astype(np.float32)
    return x


def model_file(name, node, x_shape, y_shape, y_type=TensorProto.FLOAT, extra_inputs=()):
    g = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
        + [helper.make_tensor_value_info(n, t, s) for n, t, s in extra_inputs],
        [helper.make_tensor_value_info("y", y_type, y_shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = os.path.join(scratch, name + ".onnx")
    onnx.save(m, path)
    return path


cases = []  # (label, model path, input)
shape = [1, 3, 7, 5]
for op, an, ad, bn, bd in unary:
    x = domain(op, shape)
    cases.append((op, model_file(op, helper.make_node(op, ["x"], ["y"]), shape, shape), x))
    attrs = {}
    if an:
        attrs[an] = float(ad) * 1.5 + 0.1
    if bn:
        attrs[bn] = float(bd) * 0.5 + 0.2
    if attrs:
        label = op + "_" + "_".join(f"{k}{v:g}" for k, v in attrs.items())
        cases.append((label, model_file(label, helper.make_node(op, ["x"], ["y"], **attrs), shape, shape), x))

failures = []
for label, path, x in cases:
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    npy = os.path.join(scratch, label + ".in.npy")
    np.save(npy, x)
    for backend in ("reference", "fast"):
        out_dir = os.path.join(scratch, label + "." + backend)
        r = subprocess.run([yoloc, "run", path, "--input", npy, "--backend", backend, "--outputs", out_dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{label} {backend}: yoloc run failed: {r.stderr.strip()}")
            print(f"FAIL {label} {backend}: {r.stderr.strip()}")
            continue
        got = np.load(os.path.join(out_dir, "y.npy"))
        d = np.abs(got.astype(np.float64) - want.astype(np.float64))
        tol = 1e-6 + 2e-6 * np.maximum(1.0, np.abs(want.astype(np.float64)))
        same_nan = np.isnan(got) == np.isnan(want)
        bad = (d > tol) & ~np.isnan(want) | ~same_nan
        worst = float(np.nanmax(d)) if d.size else 0.0
        if got.shape != want.shape or bad.any():
            k = np.unravel_index(np.argmax(np.where(bad, 1, 0)), want.shape)
            failures.append(f"{label} {backend}: shape {got.shape} vs {want.shape}, {int(bad.sum())} values off, "
                            f"x={x[k]} yoloc={got[k] if got.shape == want.shape else '?'} ort={want[k]}")
            print(f"FAIL {failures[-1]}")
        else:
            print(f"ok   {label:28s} {backend:9s} max|diff| {worst:.3g}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"{len(cases)} one-node models x 2 executors equal ONNX Runtime ({len(unary)} unary ops from unary_ops.h)")
