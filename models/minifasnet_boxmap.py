"""Measures how facegate's detector boxes relate to the boxes MiniFASNet was
trained on (Minivision's RetinaFace, their ``Detection.get_bbox``), the
``box_mappings`` of models/minifasnet.py.

Not part of the build: it needs OpenCV (``pip install
opencv-python-headless``) and the authors' detector files, which are not
vendored (``resources/detection_model/{deploy.prototxt,
Widerface-RetinaFace.caffemodel}`` of minivision-ai/Silent-Face-Anti-Spoofing
commit b6d5f04). Usage::

    ls ../shared/data/faces/lfw__*/* | awk 'NR % 8 == 1' > /tmp/imgs.txt   # every 8th LFW image
    ls ../shared/data/faces/{celeb5,frec}__*/* >> /tmp/imgs.txt
    bin/facegate detect -detector blazeface-short $(cat /tmp/imgs.txt) > /tmp/blazeface-short.jsonl
    python models/minifasnet_boxmap.py --detections /tmp/blazeface-short.jsonl \\
        --prototxt deploy.prototxt --caffemodel Widerface-RetinaFace.caffemodel

For each image the largest facegate box is paired with RetinaFace's most
confident box (IoU >= 0.3). With w, h the facegate box's size, it reports the
medians of (RetinaFace centre - facegate centre) / (w, h) and RetinaFace
width / w, height / h, with their spread. The RetinaFace box is the authors'
[x, y, w, h] in integer pixels and its centre x + w/2, as their crop uses it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np


def retinaface_box(net, img):
    """The authors' get_bbox: resize to ~192x192 area, detect, most confident box."""
    import cv2

    h, w = img.shape[:2]
    ar = w / h
    small = img
    if w * h >= 192 * 192:
        small = cv2.resize(img, (int(192 * math.sqrt(ar)), int(192 / math.sqrt(ar))), interpolation=cv2.INTER_LINEAR)
    net.setInput(cv2.dnn.blobFromImage(small, 1, mean=(104, 117, 123)), "data")
    out = net.forward("detection_out").squeeze()
    if out.ndim == 1:
        out = out[None]
    i = int(np.argmax(out[:, 2]))
    left, top, right, bottom = out[i, 3] * w, out[i, 4] * h, out[i, 5] * w, out[i, 6] * h
    return [int(left), int(top), int(right - left + 1), int(bottom - top + 1)], float(out[i, 2])


def iou(a, b):
    ax0, ay0, ax1, ay1 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx0, by0, bx1, by1 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw, ih = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def main() -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detections", required=True, help="`facegate detect` JSON lines")
    ap.add_argument("--prototxt", required=True)
    ap.add_argument("--caffemodel", required=True)
    ap.add_argument("--min-confidence", type=float, default=0.6, help="the authors' detector_confidence")
    args = ap.parse_args()
    net = cv2.dnn.readNetFromCaffe(args.prototxt, args.caffemodel)
    rows, skipped = [], 0
    with open(args.detections) as f:
        for line in f:
            d = json.loads(line)
            if not d.get("faces"):
                skipped += 1
                continue
            b = max(d["faces"], key=lambda x: (x["box"][2] - x["box"][0]) * (x["box"][3] - x["box"][1]))["box"]
            fb = [b[0], b[1], b[2] - b[0], b[3] - b[1]]
            img = cv2.imread(d["image"])  # EXIF-oriented, as facegate decodes it
            if img is None or img.shape[1] != d["width"] or img.shape[0] != d["height"]:
                skipped += 1
                continue
            rb, conf = retinaface_box(net, img)
            if conf < args.min_confidence or rb[2] <= 0 or rb[3] <= 0 or iou(fb, rb) < 0.3:
                skipped += 1
                continue
            fcx, fcy = fb[0] + fb[2] / 2, fb[1] + fb[3] / 2
            rcx, rcy = rb[0] + rb[2] / 2, rb[1] + rb[3] / 2
            rows.append(((rcx - fcx) / fb[2], (rcy - fcy) / fb[3], rb[2] / fb[2], rb[3] / fb[3]))
    if not rows:
        print("no paired faces", file=sys.stderr)
        return 1
    a = np.array(rows)
    names = ("offset_x", "offset_y", "scale_x", "scale_y")
    med = np.median(a, axis=0)
    q1, q3 = np.percentile(a, 25, axis=0), np.percentile(a, 75, axis=0)
    print(f"{len(a)} faces paired, {skipped} skipped")
    for i, n in enumerate(names):
        print(f"  {n:9s} median {med[i]:+.4f}  IQR [{q1[i]:+.4f}, {q3[i]:+.4f}]  mean {a[:, i].mean():+.4f}")
    print(json.dumps({n: round(float(med[i]), 3) for i, n in enumerate(names)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
