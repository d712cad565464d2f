"""Every model of ../shared/models/zoo (and the real yolov8n / yolo11n) run by yoloc's
reference and fast executors equals ONNX Runtime on the same input.

usage: zoo_parity.py YOLOC SOURCE_DIR SCRATCH [MODEL_FILTER]

Tolerances (what the detect stages need): |yoloc - ORT| <= 1e-4 where |ORT| <= 1
(scores, protos, normalised values) and <= 1e-3 px elsewhere (box and keypoint pixels)
for the zoo models. The real COCO models on a photo get 1e-3 px + 2e-5 of the value:
float32 convolutions summed in another order drift by 1e-6..3e-5 relative over 60-90
layers, which boxes of 50-480 px turn into up to 2e-3 px (ONNX Runtime's own graph
optimisation levels differ by 9e-4 px on yolov8n and 1.2e-3 px on yolo11n for the dog
photo; yoloc's fast executor on an AVX2 machine by up to 2.3e-3 px from ORT).
End-to-end outputs ([N, K, 6]: box, score, class after TopK) are compared as sets of
rows: a row may move among rows of nearly equal score, since 1e-6 differences may
reorder ties, but every row must find its twin.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

yoloc, src, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
only = sys.argv[4] if len(sys.argv) > 4 else ""
shared = os.environ.get("YOLOC_SHARED", os.path.join(src, "..", "shared"))
zoo = os.path.join(shared, "models", "zoo")
if not os.path.isdir(zoo):
    print(f"SKIP: no {zoo}")
    sys.exit(77)
os.makedirs(scratch, exist_ok=True)

models = [os.path.join(zoo, f) for f in sorted(os.listdir(zoo)) if f.endswith(".onnx")]
models += [os.path.join(shared, "models", f) for f in ("yolov8n_coco.onnx", "yolo11n_coco.onnx")]
models = [m for m in models if os.path.exists(m) and only in os.path.basename(m)]


def input_for(sess, seed, path):
    i = sess.get_inputs()[0]
    if "_coco" in os.path.basename(path):
        # Real weights: a real photo (noise makes flat DFL distributions whose box
        # expectations amplify float32 rounding), letterboxed by yoloc itself.
        npy = os.path.join(scratch, os.path.basename(path) + ".photo.npy")
        photo = os.path.join(shared, "data", "samples", "dog.jpg")
        subprocess.run([yoloc, "run", path, "--image", photo, "--save-input", npy], check=True, capture_output=True)
        return i.name, np.load(npy)
    shape = [d if isinstance(d, int) else (1 if k == 0 else 320) for k, d in enumerate(i.shape)]
    rng = np.random.default_rng(seed)
    return i.name, rng.random(shape, dtype=np.float32)


def compare_rows(ref, got, name):
    """[N, K, 6] end-to-end rows: every ORT row has a yoloc twin (same class, close values)."""
    assert ref.shape == got.shape, f"{name}: shape {got.shape} vs {ref.shape}"
    worst = 0.0
    for b in range(ref.shape[0]):
        free = list(range(ref.shape[1]))
        for r in ref[b]:
            best, best_d = None, None
            for j in free:
                g = got[b, j]
                if g[5] != r[5]:
                    continue
                d = max(np.max(np.abs(g[:4] - r[:4])) / 10.0, abs(g[4] - r[4]))
                if best_d is None or d < best_d:
                    best, best_d = j, d
            if best is None or best_d > 1e-4:
                raise AssertionError(f"{name}: row {r} has no twin in yoloc's output (closest diff {best_d})")
            free.remove(best)
            worst = max(worst, best_d)
    return worst


failures = []
for path in models:
    base = os.path.basename(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    in_name, x = input_for(sess, len(base), path)
    npy = os.path.join(scratch, base + ".in.npy")
    np.save(npy, x)
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {in_name: x})))
    for backend in ("reference", "fast"):
        out_dir = os.path.join(scratch, base + "." + backend)
        r = subprocess.run([yoloc, "run", path, "--input", npy, "--backend", backend, "--outputs", out_dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{base} {backend}: yoloc run failed: {r.stderr.strip()}")
            continue
        for oname, want in ref.items():
            safe = "".join(c if c.isalnum() or c in "_-." else "_" for c in oname)
            got = np.load(os.path.join(out_dir, safe + ".npy"))
            try:
                if want.ndim == 3 and want.shape[-1] == 6 and want.shape[1] > want.shape[2]:
                    worst = compare_rows(want.astype(np.float32), got, f"{base}:{oname}")
                else:
                    assert got.shape == want.shape, f"shape {got.shape} vs ORT {want.shape}"
                    d = np.abs(got.astype(np.float64) - want.astype(np.float64))
                    rel = 2e-5 if "_coco" in base else 0.0
                    tol = np.where(np.abs(want) <= 1, 1e-4, 1e-3 + rel * np.abs(want))
                    bad = d > tol
                    worst = float(d.max()) if d.size else 0.0
                    assert not bad.any(), (f"{int(bad.sum())} of {d.size} values differ beyond tolerance, "
                                           f"max {worst:.3g} at {np.unravel_index(np.argmax(d - tol), d.shape)}")
                print(f"ok   {base:28s} {backend:9s} {oname:10s} {str(tuple(want.shape)):20s} max|diff| {worst:.3g}")
            except AssertionError as e:
                failures.append(f"{base} {backend} {oname}: {e}")
                print(f"FAIL {base} {backend} {oname}: {e}")

if not models:
    print("FAIL: no models found")
    sys.exit(1)
if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"{len(models)} models x 2 executors equal ONNX Runtime")
