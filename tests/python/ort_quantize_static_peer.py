#!/usr/bin/env python3
"""Peer for docs/QUANTIZATION.md: ONNX Runtime's quantize_static, configured the way a
user targeting TensorRT would (QDQ format, symmetric int8 activations and weights,
per-channel weights), calibrated on the same images with the same letterbox as yoloc.
The result is then evaluated with `yoloc eval` (not here).

usage: ort_quantize_static_peer.py MODEL CALIB_LIST.txt OUT.onnx [MinMax|Entropy|Percentile] [all|conv]
"all" = ORT's defaults (every supported op, output0 included); "conv" = op_types_to_quantize=["Conv"].
needs: onnxruntime, onnx, numpy, opencv-python-headless (a scratch venv)
"""
import sys, time
import cv2
import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)


def letterbox(path, size=640):
    # Ultralytics LetterBox(auto=False): INTER_LINEAR resize, centred, pad 114.
    im = cv2.imread(path)
    h, w = im.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    if (w, h) != (nw, nh):
        im = cv2.resize(im, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return (im[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0).copy()


class Reader(CalibrationDataReader):
    def __init__(self, files):
        self.it = iter([{"images": letterbox(f)} for f in files])

    def get_next(self):
        return next(self.it, None)


def main():
    model, lst, out = sys.argv[1:4]
    method = sys.argv[4] if len(sys.argv) > 4 else "MinMax"
    ops = ["Conv"] if len(sys.argv) > 5 and sys.argv[5] == "conv" else None
    files = [l.strip() for l in open(lst) if l.strip()]
    t0 = time.time()
    quantize_static(model, out, Reader(files), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method), op_types_to_quantize=ops,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    print(f"quantize_static {method} ops={ops or 'all'}: {len(files)} images, {time.time() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
