"""The ``face_recognition`` peer (dlib) on a pairs file, scored and timed.

Runs in the separate peer venv ``.venv-peer/`` (see bench/peer-requirements.txt
and mk/peer.mk), never in the main one. For every unique image of the pairs
file it does what a user of face_recognition does, with the library's
defaults unless told otherwise:

* decode: ``face_recognition.load_image_file(path)`` (PIL, RGB uint8);
* detect: ``face_recognition.face_locations(img, number_of_times_to_upsample=1,
  model="hog")`` (dlib's HOG frontal face detector);
* pick the primary face as facegate's ``infer.Primary`` does: among the faces
  whose box contains the image centre the largest, else the largest of all;
* encode: ``face_recognition.face_encodings(img, [box], num_jitters=1,
  model="small")``: 5-point landmarks (face_recognition's default; its
  docstring wrongly says "large"), dlib's aligned 150x150 chip and the
  ResNet's 128-d descriptor;
* match, per pair: ``face_recognition.face_distance`` (euclidean, the
  descriptors are not normalised).

Each stage is timed per image with ``time.perf_counter`` (wall) and
``time.thread_time`` (CPU of this thread, which a loaded machine disturbs far
less), in one thread, images one at a time, as a user would run it.

Outputs:

* ``--scores``: facegate's scores format, so ``facegate eval -scores-in``
  evaluates the peer with the same protocol code as facegate itself: the
  header ``# a<TAB>b<TAB>same<TAB>acquired<TAB>euclidean``, one line per pair
  in input order (``a, b, same 0/1, acquired 0/1, distance %.6f``; distance 0
  when either image had no face) and one ``#fta<TAB>image`` line per image
  in which no face was found (or which did not decode).
* ``--timing``: JSON with versions, settings, machine load, and per-stage
  statistics (mean, p50, p95, min, max in milliseconds) over the images with
  a face ("per face") and over all images.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings

# face_recognition_models imports pkg_resources, which warns that it is
# deprecated; the warning is noise here.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

import numpy as np  # noqa: E402


def parse_pairs(path: str) -> list[tuple[str, str, bool]]:
    """Reads a pairs file as facegate's eval.ParsePairs does.

    One pair per line, ``a<TAB>b<TAB>same`` with same 1 or 0; blank lines and
    lines starting with '#' are skipped; spaces around fields are ignored.
    Raises ValueError with the line number on a malformed line.
    """
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            fields = [x.strip() for x in raw.rstrip("\r\n").split("\t")]
            if len(fields) != 3 or fields[2] not in ("0", "1"):
                raise ValueError(f"{path}:{n}: want a<TAB>b<TAB>same(0/1), got {raw!r}")
            a, b = fields[0], fields[1]
            for p in (a, b):
                if not p or p.startswith("/") or ".." in p.split("/"):
                    raise ValueError(f"{path}:{n}: image path {p!r} must be relative, without '..'")
            pairs.append((a, b, fields[2] == "1"))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def unique_images(pairs: list[tuple[str, str, bool]]) -> list[str]:
    """The images of pairs, each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for a, b, _ in pairs:
        seen.setdefault(a, None)
        seen.setdefault(b, None)
    return list(seen)


def primary(boxes: list[tuple[int, int, int, int]], w: int, h: int):
    """The primary face of face_recognition boxes (top, right, bottom, left).

    Same rule as facegate's infer.Primary: a box containing the image centre
    beats one that does not; among equals the larger area wins; the first
    wins ties. None when there are no boxes.
    """
    cx, cy = w / 2, h / 2
    best, best_centred, best_area = None, False, -1.0
    for box in boxes:
        top, right, bottom, left = box
        centred = left <= cx <= right and top <= cy <= bottom
        area = float(max(right - left, 0) * max(bottom - top, 0))
        if best is None or (centred and not best_centred) or (centred == best_centred and area > best_area):
            best, best_centred, best_area = box, centred, area
    return best


def stats_ms(values: list[float]) -> dict:
    """mean, p50, p95, min, max of seconds, in milliseconds (n = 0: only n)."""
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64) * 1e3
    return {
        "n": int(a.size),
        "mean": round(float(a.mean()), 3),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "min": round(float(a.min()), 3),
        "max": round(float(a.max()), 3),
    }


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, when the OS has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", required=True, help="pairs file: a<TAB>b<TAB>same(1/0), paths relative to --root")
    ap.add_argument("--root", required=True, help="folder the image paths are relative to")
    ap.add_argument("--scores", required=True, help="write the scores file (facegate's format) here")
    ap.add_argument("--timing", required=True, help="write the timing JSON here")
    ap.add_argument("--model", choices=("small", "large"), default="small",
                    help="landmark model for face_encodings: small = 5-point (the library's default), large = 68-point")
    ap.add_argument("--upsample", type=int, default=1, help="face_locations number_of_times_to_upsample (default 1, the library's)")
    ap.add_argument("--detector", choices=("hog", "cnn"), default="hog", help="face_locations model (default hog, the library's)")
    ap.add_argument("--jitters", type=int, default=1, help="face_encodings num_jitters (default 1, the library's)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N pairs (0: all)")
    ap.add_argument("--require-correct", action="store_true",
                    help="exit 1 unless every pair was acquired and is right at face_recognition's tolerance 0.6 (the smoke test)")
    ap.add_argument("--progress", type=int, default=250, help="print progress every N images to stderr (0: never)")
    args = ap.parse_args()

    pairs = parse_pairs(args.pairs)
    if args.limit > 0:
        pairs = pairs[: args.limit]
    images = unique_images(pairs)

    t_import = time.perf_counter()
    import dlib
    import face_recognition
    import PIL
    t_import = time.perf_counter() - t_import

    encodings: dict[str, np.ndarray] = {}
    failed: list[str] = []
    stage_names = ("decode", "detect", "encode", "total")
    wall = {k: [] for k in stage_names}
    cpu = {k: [] for k in stage_names}
    wall_all = {k: [] for k in ("decode", "detect", "total")}
    cpu_all = {k: [] for k in ("decode", "detect", "total")}
    multi = 0
    load_start = loadavg()
    run_wall = time.perf_counter()
    run_cpu = time.process_time()
    for i, name in enumerate(images, 1):
        path = os.path.join(args.root, name)
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            img = face_recognition.load_image_file(path)
        except (OSError, ValueError, PIL.UnidentifiedImageError) as e:
            print(f"peer: {name}: decode failed: {e}", file=sys.stderr)
            failed.append(name)
            continue
        w1, c1 = time.perf_counter(), time.thread_time()
        boxes = face_recognition.face_locations(img, number_of_times_to_upsample=args.upsample, model=args.detector)
        w2, c2 = time.perf_counter(), time.thread_time()
        box = primary(boxes, img.shape[1], img.shape[0])
        if len(boxes) > 1:
            multi += 1
        for d, k, v in ((wall_all, "decode", w1 - w0), (wall_all, "detect", w2 - w1), (cpu_all, "decode", c1 - c0), (cpu_all, "detect", c2 - c1)):
            d[k].append(v)
        if box is None:
            failed.append(name)
            wall_all["total"].append(w2 - w0)
            cpu_all["total"].append(c2 - c0)
            continue
        enc = face_recognition.face_encodings(img, [box], num_jitters=args.jitters, model=args.model)
        w3, c3 = time.perf_counter(), time.thread_time()
        if len(enc) != 1 or enc[0].shape != (128,) or not np.all(np.isfinite(enc[0])):
            raise SystemExit(f"peer: {name}: face_encodings gave {len(enc)} encodings, want one finite 128-d vector")
        encodings[name] = enc[0]
        wall_all["total"].append(w3 - w0)
        cpu_all["total"].append(c3 - c0)
        for d, t in ((wall, (w0, w1, w2, w3)), (cpu, (c0, c1, c2, c3))):
            d["decode"].append(t[1] - t[0])
            d["detect"].append(t[2] - t[1])
            d["encode"].append(t[3] - t[2])
            d["total"].append(t[3] - t[0])
        if args.progress > 0 and i % args.progress == 0:
            el = time.perf_counter() - run_wall
            print(f"peer: {i}/{len(images)} images, {el:.0f} s, {1e3 * el / i:.0f} ms/image, "
                  f"eta {el / i * (len(images) - i):.0f} s, load {loadavg()}", file=sys.stderr, flush=True)
    run_wall = time.perf_counter() - run_wall
    run_cpu = time.process_time() - run_cpu
    load_end = loadavg()

    # Match: face_distance for every pair whose two images gave a face.
    match_wall = []
    rows = []
    for a, b, same in pairs:
        ea, eb = encodings.get(a), encodings.get(b)
        if ea is None or eb is None:
            rows.append((a, b, same, False, 0.0))
            continue
        t0 = time.perf_counter()
        d = float(face_recognition.face_distance([ea], eb)[0])
        match_wall.append(time.perf_counter() - t0)
        if not math.isfinite(d):
            raise SystemExit(f"peer: pair {a} {b}: distance {d}")
        rows.append((a, b, same, True, d))

    os.makedirs(os.path.dirname(os.path.abspath(args.scores)) or ".", exist_ok=True)
    tmp = args.scores + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("# a\tb\tsame\tacquired\teuclidean\n")
        for a, b, same, acq, d in rows:
            f.write(f"{a}\t{b}\t{int(same)}\t{int(acq)}\t{d:.6f}\n")
        for name in failed:
            f.write(f"#fta\t{name}\n")
    os.replace(tmp, args.scores)

    acquired = [r for r in rows if r[3]]
    tol = 0.6  # face_recognition.compare_faces' default tolerance
    correct = sum(1 for r in acquired if (r[4] <= tol) == r[2])
    same_d = [r[4] for r in acquired if r[2]]
    diff_d = [r[4] for r in acquired if not r[2]]
    timing = {
        "system": "face_recognition",
        "versions": {
            "face_recognition": _dist_version("face_recognition"),
            "face_recognition_models": _dist_version("face_recognition_models"),
            "dlib": dlib.__version__,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "python": platform.python_version(),
        },
        "dlib_build": {"blas": bool(dlib.DLIB_USE_BLAS), "lapack": bool(dlib.DLIB_USE_LAPACK), "cuda": bool(dlib.DLIB_USE_CUDA)},
        "settings": {
            "detector": args.detector, "upsample": args.upsample, "landmarks": args.model,
            "num_jitters": args.jitters, "primary_face": "contains the image centre, else largest (infer.Primary)",
            "threads": 1,
        },
        "pairs_file": os.path.abspath(args.pairs),
        "root": os.path.abspath(args.root),
        "pairs": len(pairs),
        "images": len(images),
        "faces": len(encodings),
        "fta": len(failed),
        "images_with_several_faces": multi,
        "import_s": round(t_import, 3),
        "run_wall_s": round(run_wall, 3),
        "run_cpu_s": round(run_cpu, 3),
        "wall_ms_per_image": round(1e3 * run_wall / max(len(images), 1), 3),
        "cpu_ms_per_image": round(1e3 * run_cpu / max(len(images), 1), 3),
        "machine": {"cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": load_end,
                    "platform": platform.platform(), "processor": _cpu_model()},
        "per_face_wall_ms": {k: stats_ms(v) for k, v in wall.items()},
        "per_face_cpu_ms": {k: stats_ms(v) for k, v in cpu.items()},
        "per_image_wall_ms": {k: stats_ms(v) for k, v in wall_all.items()},
        "per_image_cpu_ms": {k: stats_ms(v) for k, v in cpu_all.items()},
        "match_wall_ms": stats_ms(match_wall),
        "tolerance_0_6": {"acquired_pairs": len(acquired), "correct": correct,
                          "mean_same_distance": round(float(np.mean(same_d)), 4) if same_d else None,
                          "mean_different_distance": round(float(np.mean(diff_d)), 4) if diff_d else None},
    }
    tmp = args.timing + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(timing, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.timing)

    pf = timing["per_face_wall_ms"]["total"]
    print(f"peer face_recognition: {len(pairs)} pairs, {len(images)} images, {len(failed)} without a face; "
          f"{timing['wall_ms_per_image']:.1f} ms/image wall ({timing['cpu_ms_per_image']:.1f} CPU), "
          f"per face mean {pf.get('mean', float('nan')):.1f} ms p50 {pf.get('p50', float('nan')):.1f} p95 {pf.get('p95', float('nan')):.1f}; "
          f"at tolerance 0.6: {correct}/{len(acquired)} acquired pairs right; load {load_start} -> {load_end}")
    if args.require_correct and (failed or correct != len(pairs)):
        print(f"peer: --require-correct: {len(failed)} images without a face, {correct}/{len(pairs)} pairs right "
              f"at tolerance {tol}", file=sys.stderr)
        return 1
    return 0


def _dist_version(name: str) -> str | None:
    """The installed distribution's version (face_recognition's __version__ says 1.2.3 in 1.3.0)."""
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
