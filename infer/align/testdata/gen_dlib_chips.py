"""Writes the dlib reference chips TestMatchesDlib compares align.Warp with.

Run from the repository root with the dlib reference venv (make deps builds
.venv-dlib, see mk/dlib.mk):

    .venv-dlib/bin/python infer/align/testdata/gen_dlib_chips.py

It draws a synthetic 64x64 RGB pattern (no photos), cuts chips from it with
dlib.extract_image_chip for a few chip_details (rotation, up- and
down-scaling, a chip reaching past the image border) and records, per chip,
the exact affine map dlib used from chip pixel (i, j) to source pixel
(x, y), both in dlib's integer pixel-centre convention. The map is
recovered by cutting the same chip from float images holding each pixel's
x and y coordinate (bilinear interpolation reproduces an affine function
exactly) and fitting it by least squares.

Output: source.ppm, dlib-chip-<k>.ppm and dlib-chips.json.
"""

import json
import pathlib

import dlib
import numpy as np

HERE = pathlib.Path(__file__).parent
W = H = 64
CASES = [  # chip_details rectangle (l, t, r, b), angle (radians), chip size
    ((20.0, 18.0, 44.0, 42.0), 0.3, 40),
    ((4.0, 6.0, 60.0, 62.0), -0.5, 40),
    ((-8.0, -4.0, 68.0, 72.0), 0.1, 40),
]


def pattern() -> np.ndarray:
    """A deterministic colourful pattern with smooth and sharp parts."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 127.5 + 120 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 127.5 + 120 * np.sin((x + 2 * y) / 9.0)
    b = np.where(((x // 8) + (y // 8)) % 2 == 0, 40.0, 215.0)
    return np.clip(np.stack([r, g, b], -1) + 0.5, 0, 255).astype(np.uint8)


def write_ppm(path: pathlib.Path, img: np.ndarray) -> None:
    """Binary PPM (P6), 8-bit."""
    h, w = img.shape[:2]
    path.write_bytes(b"P6\n%d %d\n255\n" % (w, h) + np.ascontiguousarray(img, np.uint8).tobytes())


def main() -> None:
    """Writes the source, the chips and their maps."""
    img = pattern()
    write_ppm(HERE / "source.ppm", img)
    xs = np.tile(np.arange(W, dtype=np.float32), (H, 1))
    ys = np.tile(np.arange(H, dtype=np.float32)[:, None], (1, W))
    out = []
    for k, (rect, angle, size) in enumerate(CASES):
        d = dlib.chip_details(dlib.drectangle(*rect), dlib.chip_dims(size, size), angle)
        write_ppm(HERE / f"dlib-chip-{k}.ppm", dlib.extract_image_chip(img, d))
        cx, cy = dlib.extract_image_chip(xs, d), dlib.extract_image_chip(ys, d)
        jj, ii = np.mgrid[0:size, 0:size]
        inside = (cx > 1) & (cx < W - 2) & (cy > 1) & (cy < H - 2)
        a = np.stack([ii[inside], jj[inside], np.ones(inside.sum())], 1)
        px = np.linalg.lstsq(a, cx[inside], rcond=None)[0]
        py = np.linalg.lstsq(a, cy[inside], rcond=None)[0]
        out.append({"size": size, "rect": rect, "angle": angle,
                    "x": [round(float(v), 9) for v in px], "y": [round(float(v), 9) for v in py]})
    doc = {"dlib": dlib.__version__, "source": "source.ppm",
           "map": "chip pixel (i, j) -> source (x[0]*i + x[1]*j + x[2], y[0]*i + y[1]*j + y[2]), integer pixel centres",
           "chips": out}
    (HERE / "dlib-chips.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
