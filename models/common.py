"""Shared pieces of facegate's model exporters.

Every exporter writes a TensorFlow SavedModel plus ``facegate.json`` (the
manifest that ``infer/manifest`` reads and validates against the graph) into
``<out>/<name>/``. See docs/manifest.md for the contract with the Go side.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable

MANIFEST_FILE = "facegate.json"
SCHEMA_VERSION = 1

REPO = pathlib.Path(__file__).resolve().parent.parent


def cache_dir() -> pathlib.Path:
    """Where downloaded packages are cached (outside the repo, survives clones)."""
    d = os.environ.get("FACEGATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "facegate")
    p = pathlib.Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def sha256_file(path: os.PathLike | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_arrays(arrays) -> str:
    """sha256 over a list of numpy arrays (dtype, shape and bytes, in order).

    Used as ``weights_sha256`` so the manifest pins the exact weights exported.
    """
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_sha256(path: os.PathLike | str, want: str) -> None:
    got = sha256_file(path)
    if got != want:
        raise RuntimeError(f"{path}: sha256 {got}, want {want} (pinned); refusing to use it")


def tensor_spec(dtype: str, shape) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [(-1 if d is None else int(d)) for d in shape]}


def signature_specs(loaded_or_module, names) -> dict[str, Any]:
    """Reads the given signatures back from a saved model directory.

    ``loaded_or_module`` is the path of a SavedModel. The manifest's
    signature section is built from what TensorFlow actually saved, so it can
    never drift from the graph.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(loaded_or_module))
    out = {}
    for name in names:
        fn = loaded.signatures[name]
        inputs = {}
        for k, spec in fn.structured_input_signature[1].items():
            inputs[k] = tensor_spec(spec.dtype.name, spec.shape.as_list())
        outputs = {}
        for k, spec in fn.structured_outputs.items():
            outputs[k] = tensor_spec(spec.dtype.name, spec.shape.as_list())
        out[name] = {"inputs": inputs, "outputs": outputs}
    return out


def write_manifest(model_dir: os.PathLike | str, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest)
    manifest.setdefault("schema", SCHEMA_VERSION)
    manifest.setdefault("tags", ["serve"])
    path = pathlib.Path(model_dir) / MANIFEST_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def save_model(module, out_dir: os.PathLike | str, signatures: dict[str, Callable],
               manifest: dict[str, Any]) -> pathlib.Path:
    """Saves ``module`` with ``signatures`` and its manifest atomically.

    The model is written to a temporary folder beside ``out_dir`` and renamed
    into place, so an interrupted export never leaves a half-written model.
    """
    import tensorflow as tf

    out = pathlib.Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        manifest = dict(manifest)
        cal = load_calibration(manifest["name"])
        if cal.get("head") and hasattr(module, "head_w"):
            # The fitted head goes into the graph's verify signature and the
            # manifest alike.
            module.head_w.assign([[cal["head"]["weight"]]])
            module.head_b.assign([cal["head"]["bias"]])
            manifest["head"] = {"fitted_on": cal["head"].get("fitted_on", "")}
        if cal.get("thresholds"):
            manifest["thresholds"] = [t for t in cal["thresholds"] if t["score"] != "probability"]
            if hasattr(module, "head_w"):
                # The head is monotonic in the distance: each calibrated
                # distance threshold is also a probability threshold, taken
                # through the head that is exported (fitted or default).
                w, b = float(module.head_w.numpy()[0, 0]), float(module.head_b.numpy()[0])
                for t in list(manifest["thresholds"]):
                    if t["score"] == "euclidean":
                        pt = dict(t, score="probability", value=1 / (1 + math.exp(-(w * t["value"] + b))))
                        manifest["thresholds"].append(pt)
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        manifest["signatures"] = signature_specs(tmp, list(signatures))
        if hasattr(module, "head_w") and hasattr(module, "head_b"):
            # The Siamese head p = sigmoid(w*d + b), so Go can score without
            # a graph call; the verify signature computes the same.
            manifest.setdefault("head", {})
            manifest["head"].update({"weight": float(module.head_w.numpy()[0, 0]),
                                     "bias": float(module.head_b.numpy()[0])})
            manifest["head"].setdefault("fitted_on", "default (not fitted)")
        write_manifest(tmp, manifest)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the daemon's user must read it
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


CALIBRATION_DIR = REPO / "models" / "calibration"


def load_calibration(name: str) -> dict[str, Any]:
    """The committed calibration of model ``name``, or {}.

    ``models/calibration/<name>.json`` holds the thresholds that
    ``facegate eval -calibrate -thresholds-out`` measured and the head
    ``models/train_head.py`` fitted, so a fresh ``make models`` reproduces
    them.
    """
    path = CALIBRATION_DIR / f"{name}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def today() -> str:
    return _dt.date.today().isoformat()


def siamese_module(tower, height: int, width: int, dim: int,
                   head_weight: float, head_bias: float):
    """Wraps an embedding tower in the Siamese design.

    Two towers that share weights (the same ``tower`` applied to both
    inputs), a Euclidean-distance layer on the L2-normalised embeddings and a
    ``Dense(1, sigmoid)`` head: p(match) = sigmoid(w * d + b).

    Signatures:
      embed(images: float32[N,H,W,3] RGB 0..255) -> embeddings float32[N,D], L2-normalised
      verify(a: float32[N,D], b: float32[M,D]) -> probability[N,M], distance[N,M]
      serving_default = embed

    ``verify`` takes embeddings rather than images so 1:N matching runs the
    towers once per face, not once per pair; running the tower on two images
    and calling verify is the original two-tower network.
    """
    import tensorflow as tf

    class Siamese(tf.Module):
        def __init__(self):
            super().__init__(name="siamese")
            self.tower = tower
            self.head_w = tf.Variable([[head_weight]], dtype=tf.float32, name="head/kernel")
            self.head_b = tf.Variable([head_bias], dtype=tf.float32, name="head/bias")

        @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32, name="images")])
        def embed(self, images):
            e = self.tower(images, training=False)
            e = tf.math.l2_normalize(tf.cast(e, tf.float32), axis=-1)
            return {"embeddings": e}

        @tf.function(input_signature=[
            tf.TensorSpec([None, dim], tf.float32, name="a"),
            tf.TensorSpec([None, dim], tf.float32, name="b")])
        def verify(self, a, b):
            # ||a-b||^2 = |a|^2 + |b|^2 - 2 a.b, clamped against rounding.
            aa = tf.reduce_sum(a * a, axis=1, keepdims=True)
            bb = tf.reduce_sum(b * b, axis=1, keepdims=True)
            d2 = aa + tf.transpose(bb) - 2.0 * tf.matmul(a, b, transpose_b=True)
            d = tf.sqrt(tf.maximum(d2, 0.0))
            p = tf.sigmoid(d * self.head_w[0, 0] + self.head_b[0])
            return {"probability": p, "distance": d}

    return Siamese()
