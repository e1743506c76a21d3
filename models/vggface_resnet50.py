"""VGG-Face (VGGFace2) ResNet-50 Siamese model: keras-vggface's RESNET50, exported for facegate.

The backbone is the exact ``keras_vggface.models.RESNET50`` architecture
(keras-vggface 0.6, MIT licence) with the same layer names, so the
``rcmalli_vggface_tf_notop_resnet50.h5`` weights that keras-vggface users
hold load into it by layer name. The exported SavedModel wraps it in the
Siamese design (``common.siamese_module``): two towers sharing weights, a
Euclidean-distance layer on L2-normalised embeddings and a ``Dense(1,
sigmoid)`` head.

The VGGFace2 weights are licensed for non-commercial research only and
cannot be downloaded here; users who hold a licence bring the h5 file
(``--weights PATH.h5``). Without it the exporter writes deterministic random
weights and marks the manifest ``weights: untrained``: such a model has the
real model's shape and FLOPs (benchmarks use it) but must never make a
decision.

Usage (``make models`` runs the first two)::

    python models/vggface_resnet50.py export --out build/models [--weights notop.h5]
    python models/vggface_resnet50.py reference --model build/models/vggface2-resnet50 \\
        --out build/reference/vggface2-resnet50.json
    python models/vggface_resnet50.py stats --model build/models/vggface2-resnet50
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
import time
from typing import Iterable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "vggface2-resnet50"
VERSION = "1"
SIZE = 224
DIM = 2048
BN_EPSILON = 1e-3
# keras_vggface.utils.preprocess_input(version=2): RGB->BGR, then subtract
# these per-channel means (B, G, R), no scaling.
MEAN_BGR = (91.4953, 103.8827, 131.0912)
# (stage, blocks, filters [reduce, 3x3, increase]) as in keras_vggface.models.RESNET50.
STAGES = (
    (2, 3, (64, 64, 256)),
    (3, 4, (128, 128, 512)),
    (4, 6, (256, 256, 1024)),
    (5, 3, (512, 512, 2048)),
)
# Default Siamese head, p = sigmoid(w*d + b) on the Euclidean distance d of
# unit vectors (0..2): p = 0.5 at d = 1.0 (cosine similarity 0.5), p > 0.99
# below d = 0.54 and < 0.01 above d = 1.46. Not calibrated.
HEAD_WEIGHT = -10.0
HEAD_BIAS = 10.0
DEFAULT_SEED = 20181
# keras-vggface 0.6's wheel (PyPI, MIT): the reference implementation the tests
# compare the architecture against. It ships no weights.
KERAS_VGGFACE_WHEEL = "keras_vggface-0.6-py3-none-any.whl"
KERAS_VGGFACE_WHEEL_SHA256 = "22698dadf122650305c419239c84f3cc6eba3c34ebf8d9485c014491ea541f83"

# The VGGFace2 224 crop template (see docs/models/vggface.md). VGGFace2
# models are trained on loose crops: the face box enlarged by 1.3, shorter
# side resized to 256, centre crop 224. Taking the ArcFace 112x112 five-point
# template (insightface) as the landmark geometry of a tight face box, a point
# p of that template lands at 112 + (p + 0.5 - 56) * 224 / (112 * 1.3 * 224/256)
# in the 224 crop. Mouth centre = mean of the two mouth corners. The +0.5
# converts insightface's integer pixel-centre coordinates into the
# continuous ones facegate's manifests use (pixel i covers [i, i+1)).
_ARCFACE_112 = {
    "right_eye": (38.2946, 51.6963),
    "left_eye": (73.5318, 51.5014),
    "nose_tip": (56.0252, 71.7366),
    "mouth_center": ((41.5493 + 70.7299) / 2, (92.3655 + 92.2041) / 2),
}
_CROP_SCALE = SIZE / (112 * 1.3 * SIZE / 256)
ALIGNMENT_POINT_NAMES = ["right_eye", "left_eye", "nose_tip", "mouth_center"]
ALIGNMENT_POINTS = [
    [round(SIZE / 2 + (_ARCFACE_112[k][0] + 0.5 - 56) * _CROP_SCALE, 2),
     round(SIZE / 2 + (_ARCFACE_112[k][1] + 0.5 - 56) * _CROP_SCALE, 2)]
    for k in ALIGNMENT_POINT_NAMES
]

LICENSE_UNTRAINED = (
    "Architecture: MIT (keras-vggface 0.6, Refik Can Malli). Weights: deterministic random "
    "(untrained), no licence restriction, useless for recognition. Real VGGFace2 weights are "
    "licensed for non-commercial research purposes only (VGGFace2 licence); users who hold a "
    "licence bring their own file with --weights.")
LICENSE_PRETRAINED = (
    "Architecture: MIT (keras-vggface 0.6, Refik Can Malli). Weights: VGGFace2 ResNet-50 "
    "(keras-vggface notop h5), licensed for non-commercial research purposes only under the "
    "VGGFace2 licence; supplied by the user, who is responsible for holding that licence.")


class WeightsError(ValueError):
    """An h5 weights file does not fit the architecture; the message names the layer."""


def _keras():
    import tf_keras as keras
    return keras


def conv_names() -> list[str]:
    """Names of the 53 convolutions in keras-vggface's RESNET50, in graph order."""
    names = ["conv1/7x7_s2"]
    for stage, blocks, _ in STAGES:
        for block in range(1, blocks + 1):
            p = f"conv{stage}_{block}"
            names += [f"{p}_1x1_reduce", f"{p}_3x3", f"{p}_1x1_increase"]
            if block == 1:
                names.append(f"{p}_1x1_proj")
    return names


def weighted_layer_names() -> list[str]:
    """Every layer that holds weights: each convolution followed by its ``/bn``."""
    out = []
    for c in conv_names():
        out += [c, c + "/bn"]
    return out


def build_backbone():
    """keras-vggface ``RESNET50(include_top=False, pooling=None)``, layer for layer.

    Input: float32 [N,224,224,3] already preprocessed (BGR, mean subtracted).
    Output: ``avg_pool`` [N,1,1,2048].
    """
    keras = _keras()
    L = keras.layers

    def conv_bn(x, filters, kernel, name, strides=(1, 1), padding="valid", relu=True):
        x = L.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
        x = L.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=name + "/bn")(x)
        return L.Activation("relu")(x) if relu else x

    def block(x, stage, block_no, filters, strides):
        f1, f2, f3 = filters
        p = f"conv{stage}_{block_no}"
        y = conv_bn(x, f1, (1, 1), p + "_1x1_reduce", strides=strides)
        y = conv_bn(y, f2, (3, 3), p + "_3x3", padding="same")
        y = conv_bn(y, f3, (1, 1), p + "_1x1_increase", relu=False)
        if block_no == 1:
            shortcut = conv_bn(x, f3, (1, 1), p + "_1x1_proj", strides=strides, relu=False)
        else:
            shortcut = x
        y = L.add([y, shortcut])
        return L.Activation("relu")(y)

    inp = L.Input(shape=(SIZE, SIZE, 3), name="input_1")
    x = conv_bn(inp, 64, (7, 7), "conv1/7x7_s2", strides=(2, 2), padding="same")
    x = L.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for stage, blocks, filters in STAGES:
        for b in range(1, blocks + 1):
            strides = (2, 2) if (b == 1 and stage != 2) else (1, 1)
            x = block(x, stage, b, filters, strides)
    x = L.AveragePooling2D((7, 7), name="avg_pool")(x)
    return keras.Model(inp, x, name="vggface_resnet50")


@functools.lru_cache(maxsize=None)
def _preprocess_layer_class():
    keras = _keras()
    import tensorflow as tf

    @keras.utils.register_keras_serializable(package="facegate")
    class VGGFace2Preprocess(keras.layers.Layer):
        """keras-vggface ``preprocess_input(version=2)`` inside the graph: RGB->BGR, minus mean."""

        def call(self, x):
            bgr = tf.reverse(x, axis=[-1])
            return bgr - tf.constant(MEAN_BGR, dtype=x.dtype)

    return VGGFace2Preprocess


def build_tower(backbone=None):
    """The embedding tower: RGB 0..255 [N,224,224,3] -> [N,2048] (not yet normalised).

    The tower shares ``backbone``'s layers (and so its weights).
    """
    keras = _keras()
    if backbone is None:
        backbone = build_backbone()
    inp = keras.layers.Input(shape=(SIZE, SIZE, 3), name="rgb")
    x = _preprocess_layer_class()(name="vggface2_preprocess")(inp)
    x = backbone(x)
    x = keras.layers.Flatten(name="embedding")(x)
    return keras.Model(inp, x, name="vggface2_tower")


def backbone_of(tower):
    """The ``vggface_resnet50`` backbone inside a tower."""
    return tower.get_layer("vggface_resnet50")


def _weight_key(weight_name: str) -> str:
    """``conv1/7x7_s2/bn/gamma:0`` -> ``gamma``."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def layer_weights(model, name: str) -> dict:
    """A layer's weights by short key (kernel, gamma, beta, moving_mean, moving_variance)."""
    layer = model.get_layer(name)
    return {_weight_key(w.name): w for w in layer.weights}


def init_random_weights(model, seed: int = DEFAULT_SEED) -> None:
    """Sets deterministic random weights (numpy's frozen RandomState stream).

    He-normal convolutions; BatchNorm statistics chosen so activations stay in
    a sane range (the residual branch's last BN is scaled down, the stem's
    moving variance absorbs the pixel scale). Identical on every machine.
    """
    import numpy as np

    rs = np.random.RandomState(seed)
    for conv in conv_names():
        k = layer_weights(model, conv)["kernel"]
        kh, kw, cin, cout = k.shape
        std = np.sqrt(2.0 / (kh * kw * cin))
        k.assign((rs.standard_normal(k.shape) * std).astype(np.float32))
        bn = layer_weights(model, conv + "/bn")
        c = cout
        residual_end = conv.endswith(("_1x1_increase", "_1x1_proj"))
        lo, hi = (0.2, 0.4) if residual_end else (0.8, 1.2)
        bn["gamma"].assign(rs.uniform(lo, hi, c).astype(np.float32))
        bn["beta"].assign((rs.standard_normal(c) * 0.05).astype(np.float32))
        bn["moving_mean"].assign((rs.standard_normal(c) * 0.05).astype(np.float32))
        var = rs.uniform(0.8, 1.2, c)
        if conv == "conv1/7x7_s2":
            var = var * 60.0 ** 2  # the stem sees raw mean-subtracted pixels
        bn["moving_variance"].assign(var.astype(np.float32))


def weight_arrays(model) -> list:
    """All backbone weights as numpy arrays in a fixed order (layer order, then h5 order)."""
    out = []
    order = ("kernel", "gamma", "beta", "moving_mean", "moving_variance")
    for name in weighted_layer_names():
        w = layer_weights(model, name)
        out += [w[k].numpy() for k in order if k in w]
    return out


def _str(v) -> str:
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def _chunked_attr(group, name: str) -> list:
    """An h5 attribute as Keras writes it: whole, or split into name0, name1, ... when over 64 KiB."""
    if name in group.attrs:
        return list(group.attrs[name])
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out += list(group.attrs[f"{name}{i}"])
        i += 1
    return out


def load_vggface_h5(model, path: os.PathLike | str, allow_classifier: bool = True) -> dict:
    """Loads keras-vggface RESNET50 weights from a Keras-2 h5 file by layer name.

    Layout (``model.save_weights`` of Keras 2, as in
    ``rcmalli_vggface_tf_notop_resnet50.h5``): root attribute ``layer_names``;
    each layer's group has attribute ``weight_names`` (e.g.
    ``conv1/7x7_s2/bn/gamma:0``) naming datasets relative to that group.

    Every weighted layer of the model must be in the file with exactly its
    weights and shapes, and every weighted layer in the file must exist in the
    model (``classifier``, the top of the full model, is skipped when
    ``allow_classifier``). Any mismatch raises :class:`WeightsError` naming the
    layer; nothing is assigned unless the whole file fits.

    Returns ``{"layers": n, "weights": n, "skipped": [...]}``.
    """
    import h5py
    import numpy as np

    path = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{path}: cannot open as HDF5: {e}") from e
    with f:
        g = f["model_weights"] if "model_weights" in f else f  # full-model saves nest the weights
        file_layers = [_str(n) for n in _chunked_attr(g, "layer_names")]
        if not file_layers:
            raise WeightsError(f"{path}: no 'layer_names' attribute: not a Keras h5 weights file")
        expected = weighted_layer_names()
        expected_set = set(expected)
        pending = []  # (variable, array)
        seen = set()
        skipped = []
        for lname in file_layers:
            if lname not in g:
                raise WeightsError(f"{path}: layer {lname!r} is listed in layer_names but has no group")
            grp = g[lname]
            wnames = [_str(n) for n in _chunked_attr(grp, "weight_names")]
            if not wnames:
                continue  # input, activation, add, pooling layers
            if lname not in expected_set:
                if allow_classifier and lname == "classifier":
                    skipped.append(lname)
                    continue
                raise WeightsError(f"{path}: layer {lname!r} holds weights but is not in the VGGFace2 ResNet-50 architecture")
            if lname in seen:
                raise WeightsError(f"{path}: layer {lname!r} appears twice")
            seen.add(lname)
            want = layer_weights(model, lname)
            got = {}
            for wn in wnames:
                key = _weight_key(wn)
                if key not in want:
                    raise WeightsError(f"{path}: layer {lname!r}: unexpected weight {wn!r} (model has {sorted(want)})")
                if key in got:
                    raise WeightsError(f"{path}: layer {lname!r}: weight {key!r} appears twice")
                try:
                    arr = np.asarray(grp[wn])
                except KeyError as e:
                    raise WeightsError(f"{path}: layer {lname!r}: weight {wn!r} listed but missing") from e
                var = want[key]
                if tuple(arr.shape) != tuple(var.shape):
                    raise WeightsError(f"{path}: layer {lname!r}: weight {key!r} has shape {tuple(arr.shape)}, "
                                       f"want {tuple(var.shape)}")
                if not np.all(np.isfinite(arr)):
                    raise WeightsError(f"{path}: layer {lname!r}: weight {key!r} is not finite")
                got[key] = arr
            missing_w = sorted(set(want) - set(got))
            if missing_w:
                raise WeightsError(f"{path}: layer {lname!r}: missing weights {missing_w}")
            pending += [(want[k], got[k]) for k in want]
        missing = [n for n in expected if n not in seen]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise WeightsError(f"{path}: layer {missing[0]!r} is missing from the file{more}")
    for var, arr in pending:
        var.assign(arr.astype(np.float32))
    return {"layers": len(seen), "weights": len(pending), "skipped": skipped}


def write_vggface_h5(model, path: os.PathLike | str, drop: Iterable[str] = (), reshape: dict | None = None) -> None:
    """Writes the backbone's weights in the keras-vggface notop h5 layout.

    Used by the tests (a file in that layout, with weights we know) and to
    hand weights to the reference keras-vggface code. ``drop`` leaves layers
    out and ``reshape`` maps a layer to a replacement shape for its first
    weight: both make deliberately broken files.
    """
    import h5py
    import numpy as np

    reshape = reshape or {}
    with h5py.File(str(path), "w") as f:
        names = [l.name for l in model.layers if l.name not in drop]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for lname in names:
            layer = model.get_layer(lname)
            g = f.create_group(lname) if lname not in f else f[lname]
            wnames = []
            for i, w in enumerate(layer.weights):
                wn = f"{lname}/{_weight_key(w.name)}:0"
                arr = w.numpy()
                if i == 0 and lname in reshape:
                    arr = np.zeros(reshape[lname], dtype=np.float32)
                g.create_dataset(wn, data=arr)
                wnames.append(wn.encode())
            g.attrs["weight_names"] = np.array(wnames, dtype="S") if wnames else np.array([], dtype="S1")


def conv_flops(size: int = SIZE) -> dict:
    """Counts the backbone's convolution multiply-accumulates per face at ``size``.

    Returns {"conv_macs", "conv_flops"} with conv_flops = 2 * conv_macs. BN,
    ReLU, adds and pooling add ~0.1% (TensorFlow's profiler counts
    7,671,843,136 float ops in total at 224, see the tests).
    """
    def out_size(n, k, s, same):
        return -(-n // s) if same else (n - k) // s + 1

    h = out_size(size, 7, 2, True)
    macs = h * h * 7 * 7 * 3 * 64
    h = out_size(h, 3, 2, False)  # max pool 3x3/2, valid padding
    cin = 64
    for stage, blocks, (f1, f2, f3) in STAGES:
        for b in range(1, blocks + 1):
            s = 2 if (b == 1 and stage != 2) else 1
            h = out_size(h, 1, s, True)
            macs += h * h * (cin * f1 + 9 * f1 * f2 + f2 * f3 + (cin * f3 if b == 1 else 0))
            cin = f3
    return {"conv_macs": macs, "conv_flops": 2 * macs}


def manifest(weights: str, weights_sha256: str, source: str, file: str, file_sha256: str, notes: str) -> dict:
    """The facegate.json for this model (signatures are filled in by common.save_model)."""
    return {
        "name": NAME,
        "version": VERSION,
        "task": "siamese",
        "input": {"signature": "embed", "tensor": "images", "height": SIZE, "width": SIZE,
                  "channels": 3, "pixel_format": "RGB", "range": [0, 255]},
        "preprocessing": ["rgb_to_bgr", "subtract_mean_bgr[%s,%s,%s]" % MEAN_BGR],
        "embedding_dim": DIM,
        "metric": "euclidean",
        "alignment": {
            "size": SIZE,
            "padding": 0.0,
            "points": ALIGNMENT_POINTS,
            "point_names": ALIGNMENT_POINT_NAMES,
            "reference": (
                "VGGFace2 loose crop (face box x1.3, shorter side 256, centre crop 224), estimated: "
                "the insightface ArcFace 112x112 five-point template taken as a tight face box, "
                "mapped by 112+(p+0.5-56)*224/(112*1.3*224/256) (continuous coordinates); "
                "mouth_center = mean of mouth corners. "
                "Not measured on VGGFace2; see docs/models/vggface.md."),
        },
        "weights": weights,
        "weights_sha256": weights_sha256,
        "license": LICENSE_PRETRAINED if weights == "pretrained" else LICENSE_UNTRAINED,
        "provenance": {"source": source, "file": file, "sha256": file_sha256,
                       "builder": "models/vggface_resnet50.py", "notes": notes},
    }


def export(out_root: os.PathLike | str, weights_path: str | None = None, seed: int = DEFAULT_SEED) -> pathlib.Path:
    """Builds the model, sets its weights and saves it to ``<out_root>/vggface2-resnet50``."""
    backbone = build_backbone()
    tower = build_tower(backbone)
    head = f"head sigmoid({HEAD_WEIGHT:g}*d + {HEAD_BIAS:g}) on unit-vector distance, not calibrated."
    if weights_path:
        report = load_vggface_h5(backbone, weights_path)
        sha = common.sha256_file(weights_path)
        m = manifest("pretrained", common.sha256_arrays(weight_arrays(backbone)),
                     "user-supplied keras-vggface RESNET50 notop weights (VGGFace2)",
                     os.path.basename(weights_path), sha,
                     f"Loaded by layer name, {report['layers']} layers / {report['weights']} arrays checked; "
                     f"skipped {report['skipped'] or 'nothing'}. {head}")
    else:
        init_random_weights(backbone, seed)
        m = manifest("untrained", common.sha256_arrays(weight_arrays(backbone)),
                     f"deterministic random weights, numpy RandomState(seed={seed})", "", "",
                     "UNTRAINED: same architecture and FLOPs as VGGFace2 ResNet-50 for benchmarks; "
                     f"must not be used for access decisions. {head}")
    module = common.siamese_module(tower, SIZE, SIZE, DIM, HEAD_WEIGHT, HEAD_BIAS)
    sigs = {"embed": module.embed, "verify": module.verify, "serving_default": module.embed}
    return common.save_model(module, pathlib.Path(out_root) / NAME, sigs, m)


def reference_images(n: int, offset: int = 0):
    """Deterministic RGB test images [n,224,224,3] float32 in 0..255.

    pixel(i,y,x,c) = (3y + 5x + 67c + 101i + (y*x mod 13)) mod 256 with
    i = image index + offset. infer/vggface_model_test.go computes the same.
    """
    import numpy as np

    i = (np.arange(n) + offset)[:, None, None, None]
    y = np.arange(SIZE)[None, :, None, None]
    x = np.arange(SIZE)[None, None, :, None]
    c = np.arange(3)[None, None, None, :]
    v = (3 * y + 5 * x + 67 * c + 101 * i + (y * x) % 13) % 256
    return v.astype(np.float32)


def write_reference(model_dir: os.PathLike | str, out: os.PathLike | str) -> dict:
    """Runs the exported SavedModel on reference_images and writes the outputs as JSON for the Go test."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir))
    embed = loaded.signatures["embed"]
    verify = loaded.signatures["verify"]
    e1 = embed(images=tf.constant(reference_images(1)))["embeddings"].numpy()
    e3 = embed(images=tf.constant(reference_images(3, offset=1)))["embeddings"].numpy()
    v33 = verify(a=tf.constant(e3), b=tf.constant(e3))
    v13 = verify(a=tf.constant(e1), b=tf.constant(e3))
    ref = {
        "model": NAME,
        "inputs": "pixel(i,y,x,c) = (3y + 5x + 67c + 101i + (y*x mod 13)) mod 256; "
                  "embed_b1 uses i=0, embed_b3 uses i=1,2,3",
        "embed_b1": e1.astype(float).tolist(),
        "embed_b3": e3.astype(float).tolist(),
        "verify_b3_b3": {k: v.numpy().astype(float).tolist() for k, v in v33.items()},
        "verify_b1_b3": {k: v.numpy().astype(float).tolist() for k, v in v13.items()},
    }
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(ref))
    os.replace(tmp, out)
    return ref


def stats(model_dir: os.PathLike | str) -> dict:
    """Size on disk, Python load time, params and FLOPs of an exported model."""
    import tensorflow as tf

    d = pathlib.Path(model_dir)
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    t0 = time.perf_counter()
    loaded = tf.saved_model.load(str(d))
    load_s = time.perf_counter() - t0
    x = tf.constant(reference_images(1))
    loaded.signatures["embed"](images=x)
    t0 = time.perf_counter()
    loaded.signatures["embed"](images=x)
    fwd1 = time.perf_counter() - t0
    backbone = build_backbone()
    return {"savedmodel_bytes": size, "python_load_s": round(load_s, 3), "embed_b1_s": round(fwd1, 3),
            "params": int(backbone.count_params()), **conv_flops()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="export the SavedModel + manifest")
    e.add_argument("--out", required=True, help="models folder; the model goes to <out>/" + NAME)
    e.add_argument("--weights", help="keras-vggface RESNET50 notop h5 (VGGFace2); untrained without it")
    e.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the untrained weights")
    r = sub.add_parser("reference", help="write Python outputs for the Go test")
    r.add_argument("--model", required=True)
    r.add_argument("--out", required=True)
    s = sub.add_parser("stats", help="print size, load time, params and FLOPs")
    s.add_argument("--model", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "export":
        t0 = time.perf_counter()
        try:
            out = export(a.out, a.weights, a.seed)
        except WeightsError as err:
            print(f"vggface_resnet50: {err}", file=sys.stderr)
            return 1
        print(f"exported {out} in {time.perf_counter() - t0:.1f}s")
    elif a.cmd == "reference":
        write_reference(a.model, a.out)
        print(f"wrote {a.out}")
    else:
        print(json.dumps(stats(a.model), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
