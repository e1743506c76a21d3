"""dlib's own face descriptors for aligned chips: the reference facegate's
Keras/TensorFlow port of dlib's ResNet (models/dlib_resnet.py) is checked
against.

Runs in the separate reference venv ``.venv-dlib/`` (dlib-bin + numpy, see
bench/dlib-requirements.txt), never in the main one. For every 150x150 chip
it decodes the image with dlib (``dlib.load_rgb_image``) and computes
``dlib.face_recognition_model_v1(dat).compute_face_descriptor(chip)``, the
aligned-chip overload that runs the network on the chip as is.

Outputs, in ``--out``:

* ``chips.u8``: the decoded chips dlib saw, uint8 RGB, shape (N,150,150,3),
  row-major. The tests feed exactly these pixels to Keras and Go, so JPEG
  decoder differences never enter the comparison.
* ``reference.json``: dlib version, model file and its sha256, chip list,
  the sha256 of chips.u8 and the 128-d descriptors (dlib's, unnormalised).

Exit status 0 with one "SKIP" line when the chips are missing outside CI;
with CI=true missing inputs are an error.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import time

import numpy as np

CHIP = 150


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_chips(faces_dir: str, pattern: str, limit: int) -> list[str]:
    """Chip files under faces_dir/pattern/, sorted, at most limit."""
    files = sorted(glob.glob(os.path.join(faces_dir, pattern, "*.jpg")) +
                   glob.glob(os.path.join(faces_dir, pattern, "*.png")))
    return files[:limit] if limit > 0 else files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dat", required=True, help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--faces", required=True, help="folder holding dlib__<person>/ chip folders")
    ap.add_argument("--pattern", default="dlib__*", help="glob of the person folders")
    ap.add_argument("--limit", type=int, default=0, help="at most this many chips (0: all)")
    ap.add_argument("--out", required=True, help="output folder")
    args = ap.parse_args()

    import dlib

    in_ci = os.environ.get("CI") == "true"
    chips = find_chips(args.faces, args.pattern, args.limit) if os.path.isdir(args.faces) else []
    if not chips:
        msg = f"no chips under {args.faces}/{args.pattern}"
        if in_ci:
            print(f"dlib_reference: {msg} (CI=true: the shared data must be there)", file=sys.stderr)
            return 1
        print(f"SKIP dlib reference: {msg}")
        return 0

    net = dlib.face_recognition_model_v1(args.dat)
    images, descriptors, names = [], [], []
    t0 = time.perf_counter()
    for path in chips:
        img = dlib.load_rgb_image(path)
        if img.shape != (CHIP, CHIP, 3) or img.dtype != np.uint8:
            raise SystemExit(f"{path}: {img.shape} {img.dtype}, want ({CHIP},{CHIP},3) uint8 aligned chip")
        d = np.array(net.compute_face_descriptor(img), dtype=np.float64)
        images.append(img)
        descriptors.append(d)
        names.append(os.path.relpath(path, args.faces))
    secs = time.perf_counter() - t0

    os.makedirs(args.out, exist_ok=True)
    chips_path = os.path.join(args.out, "chips.u8")
    tmp = chips_path + ".tmp"
    np.ascontiguousarray(np.stack(images), dtype=np.uint8).tofile(tmp)
    os.replace(tmp, chips_path)
    ref = {
        "dlib_version": dlib.__version__,
        "model_file": os.path.basename(args.dat),
        "model_sha256": sha256_file(args.dat),
        "chip_size": CHIP,
        "chips_file": "chips.u8",
        "chips_sha256": sha256_file(chips_path),
        "chips_layout": "uint8 RGB, shape [N,150,150,3], row-major",
        "names": names,
        "descriptors": [[float(x) for x in d] for d in descriptors],
        "seconds_per_chip": secs / len(chips),
    }
    out = os.path.join(args.out, "reference.json")
    with open(out + ".tmp", "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)
    norms = np.linalg.norm(np.stack(descriptors), axis=1)
    print(f"dlib {dlib.__version__}: {len(chips)} descriptors -> {out} "
          f"({1000 * secs / len(chips):.1f} ms/chip; norms {norms.min():.3f}..{norms.max():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
