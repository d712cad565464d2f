#!/usr/bin/env python3
"""ctest: the calibration cache `yoloc quantize` writes, read by a parser written from TensorRT's
documented format (not yoloc's reader), agrees with the Q/DQ scales of the ONNX model it wrote.

TensorRT's INT8 calibration cache (IInt8Calibrator::writeCalibrationCache; what trtexec --calib reads):

    TRT-<version>-<CalibratorName>      e.g. TRT-8205-EntropyCalibration2, TRT-8601-MinMaxCalibration
    <tensor name>: <8 hex digits>       the IEEE-754 float32 scale (amax / 127), its bits as one
                                        32-bit number in hex, i.e. the big-endian bytes of the float

Runs `yoloc quantize` twice on a YOLOv8n from `yoloc generate` (160x160, so that it is quick everywhere,
qemu included; its concat groups and Detect tail are the real model's), calibrated on its sample picture:
  1. --concat-scales own --method minmax --trt-version 8601: header TRT-8601-MinMaxCalibration, and every
     activation QuantizeLinear/DequantizeLinear scale equals the cache's scale of its tensor, bit for bit;
  2. the defaults (shared concat scales): header TRT-8205-EntropyCalibration2, and every activation scale
     equals the largest cache scale of its group, the groups rebuilt here from the ONNX graph by
     docs/QUANTIZATION.md's rule (the inputs and output of each Concat, joined through MaxPool and
     nearest Resize).
Also: zero points are int8 0, each DequantizeLinear after a QuantizeLinear has its scale and zero point,
every cache tensor is a value of the model, every quantized activation has a cache line, and a copy of
the cache with its bytes in little-endian order is caught (the check can fail).
Test-only: onnx and numpy come from PyPI in .venv (scripts/peer-venv.sh). Exit 77 = skipped outside CI.
(The Q/DQ scales of the real yolov8n_coco.onnx were compared the same way when this check was written:
243 cache tensors, 58 activation scales, 17 concat groups, all equal.)

    calib_cache_trt_format.py YOLOC_BINARY SOURCE_DIR WORK_DIR
"""
import os
import re
import struct
import subprocess
import sys

yoloc, src, work = sys.argv[1:4]
# Calibrator names TensorRT writes in the header (nvinfer1::CalibrationAlgoType).
CALIBRATORS = {"EntropyCalibration", "EntropyCalibration2", "MinMaxCalibration", "LegacyCalibration"}


def skip(why):
    if os.environ.get("CI") == "true":
        print("FAIL (CI):", why)
        sys.exit(1)
    print("SKIP:", why)
    sys.exit(77)


try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:
    skip(f"{sys.executable} lacks {e.name} (run scripts/peer-venv.sh)")


def parse_cache(text, big_endian=True):
    """{tensor: float32 scale} and (version, calibrator); raises ValueError on anything off-format."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError("empty cache")
    m = re.fullmatch(r"TRT-(\d+)-([A-Za-z0-9]+)", lines[0])
    if not m or m.group(2) not in CALIBRATORS:
        raise ValueError(f"header {lines[0]!r} is not TRT-<version>-<CalibratorName>")
    scales = {}
    for k, line in enumerate(lines[1:], 2):
        m = re.fullmatch(r"(.+): ([0-9a-fA-F]{8})", line)
        if not m:
            raise ValueError(f"line {k}: {line!r} is not '<tensor>: <8 hex digits>'")
        raw = bytes.fromhex(m.group(2))
        v = struct.unpack(">f" if big_endian else "<f", raw)[0]
        if m.group(1) in scales:
            raise ValueError(f"line {k}: {m.group(1)} listed twice")
        scales[m.group(1)] = np.float32(v)
    return scales, (int(re.match(r"TRT-(\d+)", lines[0]).group(1)), lines[0].split("-", 2)[2])


def concat_groups(graph):
    """Union-find over value names: Concat inputs with its output; MaxPool and nearest Resize in with out."""
    parent = {}

    def find(v):
        parent.setdefault(v, v)
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    def join(a, b):
        parent[find(a)] = find(b)

    for n in graph.node:
        if not n.input or not n.output:
            continue
        if n.op_type == "Concat":
            for x in n.input:
                if x:
                    join(x, n.output[0])
        elif n.op_type == "MaxPool":
            join(n.input[0], n.output[0])
        elif n.op_type == "Resize":
            mode = next((a.s.decode() for a in n.attribute if a.name == "mode"), "nearest")
            if mode == "nearest":
                join(n.input[0], n.output[0])
    return find


def float_graph_find(qdq):
    """The same grouping on the float graph the Q/DQ model was made from: Q/DQ pairs removed."""
    g = onnx.GraphProto()
    g.CopyFrom(qdq.graph)
    alias = {}
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            alias[n.output[0]] = n.input[0]

    def orig(v):
        while v in alias:
            v = alias[v]
        return v

    keep = [n for n in g.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    for n in keep:
        for i, x in enumerate(n.input):
            n.input[i] = orig(x)
    del g.node[:]
    g.node.extend(keep)
    return concat_groups(g)


def check(onnx_path, cache_path, shared_scales, want_header, big_endian=True):
    """List of problems (empty when the cache and the model agree)."""
    problems = []
    try:
        cache, header = parse_cache(open(cache_path).read(), big_endian)
    except ValueError as e:
        return [f"{cache_path}: {e}"]
    if header != want_header:
        problems.append(f"header {header} != {want_header}")
    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    values = {i.name for i in m.graph.input} | {o for n in m.graph.node for o in n.output}
    for name in cache:
        if name not in values:
            problems.append(f"cache tensor {name} is not a value of the model")
        if not (np.isfinite(cache[name]) and cache[name] > 0):
            problems.append(f"cache scale of {name} is {cache[name]}")
    find = float_graph_find(m) if shared_scales else None
    groups = {}
    if shared_scales:
        for name, s in cache.items():
            r = find(name)
            groups[r] = max(groups.get(r, np.float32(0)), s)
    dq_of = {n.input[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    checked = 0
    for n in m.graph.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits:
            continue  # weights: per-channel, not in the cache
        x = n.input[0]
        scale, zp = inits.get(n.input[1]), inits.get(n.input[2]) if len(n.input) > 2 else None
        if scale is None or scale.dtype != np.float32 or scale.size != 1:
            problems.append(f"{n.name}: scale is not one float32 initializer")
            continue
        if zp is None or zp.dtype != np.int8 or int(zp.reshape(-1)[0]) != 0:
            problems.append(f"{n.name}: zero point is not int8 0")
        if x not in cache:
            problems.append(f"{n.name}: {x} has no cache line")
            continue
        want = groups[find(x)] if shared_scales else cache[x]
        got = np.float32(scale.reshape(-1)[0])
        if got.tobytes() != want.tobytes():
            problems.append(f"{x}: Q/DQ scale {got!r} != cache {want!r}")
        dq = dq_of.get(n.output[0])
        if dq is None:
            problems.append(f"{n.name}: no DequantizeLinear reads it")
        elif not (np.array_equal(inits.get(dq.input[1]), scale) and
                  (len(dq.input) > 2 and np.array_equal(inits.get(dq.input[2]), zp))):
            problems.append(f"{dq.name}: scale or zero point differs from {n.name}'s")
        checked += 1
    if checked == 0:
        problems.append("no activation QuantizeLinear in the model")
    shared_n = sum(1 for r in groups if sum(1 for v in cache if find(v) == r) > 1)
    if big_endian:
        print(f"  {os.path.basename(cache_path)}: {header[1]} {header[0]}, {len(cache)} tensors, {checked} activation "
              f"Q/DQ scales compared{f', {shared_n} concat groups' if shared_scales else ''}")
    return problems


os.makedirs(work, exist_ok=True)
env = dict(os.environ, YOLOC_NO_PROGRESS="1")
model, picture = os.path.join(work, "yolov8n_160.onnx"), os.path.join(work, "picture.png")
r = subprocess.run([yoloc, "generate", "--scale", "n", "--nc", "80", "--imgsz", "160", "-o", model,
                    "--sample-image", picture], capture_output=True, text=True, env=env)
if r.returncode != 0:
    print(f"yoloc generate failed: {r.stderr.strip()}")
    sys.exit(1)
calib = os.path.join(work, "calib.txt")
with open(calib, "w") as f:
    f.write(picture + "\n")
runs = [("own", ["--concat-scales", "own", "--method", "minmax", "--trt-version", "8601"], False,
         (8601, "MinMaxCalibration")),
        ("shared", [], True, (8205, "EntropyCalibration2"))]
failed = 0
for name, extra, shared_scales, header in runs:
    out = os.path.join(work, name + ".onnx")
    cmd = [yoloc, "quantize", model, "--calib", calib, "--keep-fp", "0", "-o", out] + extra
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"{name}: yoloc quantize failed: {r.stderr.strip()}")
        failed += 1
        continue
    cache = out[:-len(".onnx")] + ".cache"
    print(f"{name}: {' '.join(extra) or 'defaults'}")
    problems = check(out, cache, shared_scales, header)
    for p in problems[:10]:
        print("  FAIL:", p)
    failed += bool(problems)
    # The negative control: the same numbers written little-endian must not pass.
    swapped = check(out, cache, shared_scales, header, big_endian=False)
    if not swapped:
        print("  FAIL: the cache read little-endian passes too: the check cannot fail")
        failed += 1
    else:
        print(f"  little-endian reading of the same file: {len(swapped)} mismatches (as it must)")
print("PASS" if not failed else f"{failed} run(s) failed")
sys.exit(1 if failed else 0)
