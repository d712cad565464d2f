"""Torch-Pruning peer for `yoloc prune` (docs/PRUNING.md). Test-only, never a dependency.

Loads the weights of an Ultralytics YOLOv8 ONNX export (BN folded) by name into the plain PyTorch
YOLOv8 of ../shared/tools/peers/torch_yolov8.py, prunes the hidden channels of the C2f bottlenecks
(m.i.cv1 outputs, read by m.i.cv2: the same 10 groups as `yoloc prune --scope c2f`) with
Torch-Pruning's MagnitudePruner (magnitude importance), no fine-tuning, and exports ONNX for
`yoloc eval`. It also exports the unpruned model, whose mAP must equal the original ONNX file's
(the check that the weights were loaded right).

    python torch_pruning_peer.py --onnx MODEL.onnx --peer ../shared/tools/peers/torch_yolov8.py \
        --ratio 0.141 [--round-to 8] --out DIR
writes DIR/unpruned.onnx, DIR/tp_pruned.onnx and prints one JSON line (channel counts, parameters).
"""
import argparse, importlib.util, json, os, sys

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch_pruning as tp


def load_peer(path):
    spec = importlib.util.spec_from_file_location("torch_yolov8", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Ultralytics layer index -> attribute of torch_yolov8.YOLOv8.
LAYER = {0: "b0", 1: "b1", 2: "b2", 3: "b3", 4: "b4", 5: "b5", 6: "b6", 7: "b7", 8: "b8", 9: "b9",
         12: "h12", 15: "h15", 16: "h16", 18: "h18", 19: "h19", 21: "h21", 22: "det"}


def torch_name(onnx_name):
    # model.22.dfl.conv.weight -> det.dfl.weight (a bare nn.Conv2d in the peer)
    parts = onnx_name.split(".")
    if parts[0] != "model" or not parts[1].isdigit() or int(parts[1]) not in LAYER:
        return None
    rest = ".".join(parts[2:])
    if rest == "dfl.conv.weight":
        rest = "dfl.weight"
    return LAYER[int(parts[1])] + "." + rest


def load_weights(model, onnx_path):
    m = onnx.load(onnx_path)
    sd = model.state_dict()
    loaded = set()
    for init in m.graph.initializer:
        name = torch_name(init.name)
        if name is None or name not in sd or name.endswith(("anchors", "strides")):
            continue  # anchors/strides: buffers the peer computes itself
        arr = numpy_helper.to_array(init)
        if tuple(sd[name].shape) != arr.shape:
            raise SystemExit(f"shape mismatch for {init.name} -> {name}: {arr.shape} vs {tuple(sd[name].shape)}")
        sd[name].copy_(torch.from_numpy(np.array(arr, copy=True)))
        loaded.add(name)
    missing = [k for k in sd if k not in loaded and not k.endswith(("anchors", "strides"))]
    if missing:
        raise SystemExit(f"weights not found in {onnx_path}: {missing}")
    return len(loaded)


def export(model, path, imgsz):
    x = torch.zeros(1, 3, imgsz, imgsz)
    kw = dict(input_names=["images"], output_names=["output0"], opset_version=17, do_constant_folding=True)
    try:
        torch.onnx.export(model, x, path, dynamo=False, **kw)
    except TypeError:  # torch without the dynamo argument
        torch.onnx.export(model, x, path, **kw)
    # The TorchScript exporter writes chunk() as Shape/Gather/Slice chains, which yoloc's fast
    # executor runs very slowly (an eval of 128 images did not finish in 25 min); onnxslim folds
    # them away (constant shapes), as Ultralytics' own export does.
    import onnxslim
    onnx.save(onnxslim.slim(onnx.load(path)), path)


def bottlenecks(model):
    for lname in ("b2", "b4", "b6", "b8", "h12", "h15", "h18", "h21"):
        c2f = getattr(model, lname)
        for i, b in enumerate(c2f.m):
            yield f"{lname}.m.{i}", b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--peer", required=True, help="torch_yolov8.py")
    ap.add_argument("--ratio", type=float, default=0.141)
    ap.add_argument("--round-to", type=int, default=0, help="Torch-Pruning's round_to (0: none)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    peer = load_peer(a.peer)
    model = peer.YOLOv8("n", 80, a.imgsz).eval()
    n_loaded = load_weights(model, a.onnx)
    export(model, os.path.join(a.out, "unpruned.onnx"), a.imgsz)
    params0 = sum(p.numel() for p in model.parameters())

    # Only the bottlenecks' hidden channels are prunable: every other conv is ignored, so the
    # groups Torch-Pruning builds are m.i.cv1 (out) -> m.i.cv2 (in).
    targets = {b.cv1.conv for _, b in bottlenecks(model)}
    ignored = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m not in targets]
    example = torch.zeros(1, 3, a.imgsz, a.imgsz)
    imp = tp.importance.MagnitudeImportance(p=2)
    kw = dict(importance=imp, pruning_ratio=a.ratio, ignored_layers=ignored, global_pruning=False)
    if a.round_to > 0:
        kw["round_to"] = a.round_to
    pruner = tp.pruner.MagnitudePruner(model, example, **kw)
    pruner.step()
    with torch.no_grad():
        model(example)  # still runs
    params1 = sum(p.numel() for p in model.parameters())
    widths = {name: b.cv1.conv.out_channels for name, b in bottlenecks(model)}
    export(model, os.path.join(a.out, "tp_pruned.onnx"), a.imgsz)
    print(json.dumps({"torch": torch.__version__, "torch_pruning": getattr(tp, "__version__", "?"),
                      "tensors_loaded": n_loaded, "ratio": a.ratio, "round_to": a.round_to,
                      "params_before": params0, "params_after": params1, "bottleneck_widths": widths}))


if __name__ == "__main__":
    main()
