#!/usr/bin/env python3
"""Scores a `yoloc eval --save-json` COCO results file with pycocotools (test only).

Builds a COCO-format ground truth from YOLO labels (class cx cy w h, normalized),
loads the results with COCO.loadRes, runs COCOeval('bbox'), prints the
pycocotools mAP50-95 and mAP50, and exits non-zero when anything is wrong: the
file is not a results list, it names images or categories the ground truth lacks,
or (with --yoloc-json) pycocotools' mAP50-95 or mAP50 differs from the figure
`yoloc eval --json` printed for the same predictions by more than --tol.

    check_coco_json.py preds.json --images DIR [--labels DIR] [--nc 80] [--yoloc-json eval.json [--tol 0.005]]

Why a tolerance at all: yoloc follows Ultralytics' protocol (AP from the interpolated
precision envelope, mean over the classes present, up to 300 detections per image),
pycocotools COCO's (precision read at 101 recall points, 100 detections per image,
crowd and area rules). On coco128 with yolov8n_coco.onnx the two differ by 0.0010
(mAP50-95) and 0.0021 (mAP50), x86-64 and aarch64 alike; --tol 0.005 leaves room
for that and nothing more (a wrong box scale or class map moves mAP by far more).

Image ids are the digits of the file names (as yoloc writes them); with 80 classes
the category ids are COCO's 1..90 (coco80_to_coco91), unless --no-coco91.
"""
import argparse
import json
import os
import re
import struct
import sys

COCO80_TO_91 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31,
                32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
                58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87,
                88, 89, 90]
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def image_size(path):
    """(width, height) as yoloc sees the image (EXIF orientation applied when a decoder is available)."""
    try:
        import cv2  # applies EXIF orientation like yoloc's decoder
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is not None:
            return img.shape[1], img.shape[0]
    except ImportError:
        pass
    try:
        from PIL import Image, ImageOps
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return im.size
    except ImportError:
        pass
    return header_size(path)


def header_size(path):
    """Width and height from a PNG or JPEG header (no EXIF handling)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    if data[:2] != b"\xff\xd8":
        raise ValueError(f"{path}: not a JPEG or PNG")
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + seg
    raise ValueError(f"{path}: no JPEG frame header")


def image_id(path):
    digits = re.sub(r"\D", "", os.path.splitext(os.path.basename(path))[0])
    if not digits:
        raise ValueError(f"{path}: no digits in the file name for a COCO image id")
    return int(digits)


def label_dir_for(images_dir):
    p = os.path.abspath(images_dir)
    k = p.rfind(os.sep + "images")
    if k < 0:
        raise ValueError(f"{images_dir}: no /images/ in the path; give --labels")
    return p[:k] + os.sep + "labels" + p[k + len(os.sep + "images"):]


def build_ground_truth(images_dir, labels_dir, nc, coco91):
    images, annotations = [], []
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(images_dir) for f in fs
                   if f.lower().endswith(IMAGE_EXTS))
    if not files:
        raise ValueError(f"{images_dir}: no images")
    ann_id = 1
    for path in files:
        iid = image_id(path)
        w, h = image_size(path)
        images.append({"id": iid, "file_name": os.path.basename(path), "width": w, "height": h})
        rel = os.path.relpath(path, images_dir)
        lab = os.path.join(labels_dir, os.path.splitext(rel)[0] + ".txt")
        if not os.path.exists(lab):
            continue
        seen = set()
        for line in open(lab):
            parts = line.split()
            if len(parts) != 5:
                continue
            try:
                c, cx, cy, bw, bh = (float(v) for v in parts)
            except ValueError:
                continue
            if c != int(c) or not 0 <= c < nc or not all(0 <= v <= 1 for v in (cx, cy, bw, bh)):
                continue  # yoloc skips these lines too
            key = (int(c), cx, cy, bw, bh)
            if key in seen:
                continue  # duplicates are dropped (as Ultralytics and yoloc do)
            seen.add(key)
            x1, y1 = max(0.0, (cx - bw / 2) * w), max(0.0, (cy - bh / 2) * h)
            x2, y2 = min(float(w), (cx + bw / 2) * w), min(float(h), (cy + bh / 2) * h)
            annotations.append({"id": ann_id, "image_id": iid, "category_id": COCO80_TO_91[int(c)] if coco91 else int(c),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
            ann_id += 1
    cats = [{"id": COCO80_TO_91[i] if coco91 else i, "name": str(i)} for i in range(nc)]
    return {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": cats}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preds", help="COCO results JSON written by `yoloc eval --save-json`")
    ap.add_argument("--images", required=True, help="image folder of the evaluated split")
    ap.add_argument("--labels", help="YOLO label folder (default: /images/ -> /labels/)")
    ap.add_argument("--nc", type=int, default=80, help="number of classes")
    ap.add_argument("--no-coco91", action="store_true", help="category ids are class indices")
    ap.add_argument("--yoloc-json", help="`yoloc eval --json` output for the same predictions: compare its mAP")
    ap.add_argument("--tol", type=float, default=0.005,
                    help="largest |pycocotools - yoloc| for mAP50-95 and mAP50 (default 0.005: the protocols differ)")
    args = ap.parse_args()

    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        print("FAIL: pycocotools is not installed for this Python (pip install pycocotools)", file=sys.stderr)
        return 1

    coco91 = args.nc == 80 and not args.no_coco91
    gt = build_ground_truth(args.images, args.labels or label_dir_for(args.images), args.nc, coco91)
    with open(args.preds) as f:
        preds = json.load(f)
    if not isinstance(preds, list) or not preds:
        print(f"FAIL: {args.preds} is not a non-empty list of results", file=sys.stderr)
        return 1
    keys = {"image_id", "category_id", "bbox", "score"}
    bad = [p for p in preds if not keys <= set(p) or len(p["bbox"]) != 4]
    if bad:
        print(f"FAIL: {len(bad)} results lack {sorted(keys)} or a 4-number bbox, e.g. {bad[0]}", file=sys.stderr)
        return 1
    ids = {im["id"] for im in gt["images"]}
    cats = {c["id"] for c in gt["categories"]}
    unknown_img = {p["image_id"] for p in preds} - ids
    unknown_cat = {p["category_id"] for p in preds} - cats
    if unknown_img or unknown_cat:
        print(f"FAIL: unknown image ids {sorted(unknown_img)[:5]} / category ids {sorted(unknown_cat)[:5]}",
              file=sys.stderr)
        return 1

    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    coco_dt = coco_gt.loadRes(preds)
    ev = COCOeval(coco_gt, coco_dt, "bbox")
    ev.params.imgIds = sorted(ids)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    map5095, map50 = float(ev.stats[0]), float(ev.stats[1])
    print(f"pycocotools: images {len(ids)} annotations {len(gt['annotations'])} results {len(preds)} "
          f"mAP50-95 {map5095:.4f} mAP50 {map50:.4f}")
    if args.yoloc_json:
        with open(args.yoloc_json) as f:
            own = json.load(f)
        failed = False
        for key, theirs in (("mAP50_95", map5095), ("mAP50", map50)):
            mine = float(own[key])
            ok = abs(theirs - mine) <= args.tol
            print(f"{key}: yoloc {mine:.4f}, pycocotools {theirs:.4f}, difference {theirs - mine:+.4f} "
                  f"({'within' if ok else 'OUTSIDE'} --tol {args.tol})")
            failed = failed or not ok
        if failed:
            print("FAIL: pycocotools disagrees with yoloc's own figure for the same predictions", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
