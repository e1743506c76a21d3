"""Exports ``test-tiny``: a small but real SavedModel for the infer/ tests.

It is a Keras conv net (conv, batch norm, depthwise conv, pooling, dense,
L2 normalisation) with deterministic weights, exported with three
signatures:

  serving_default(images: float32[N,16,16,3]) -> embeddings[N,8], logits[N,3]
  pair(a: float32[N,8], b: float32[N,8])       -> distance[N,1]
  fixed(images: float32[2,16,16,3])            -> logits[2,3]   (fixed batch)

Beside the model it writes ``reference.json``: inputs and the outputs Python
computed for them, which the Go test must reproduce to 1e-5.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "test-tiny"
SIZE = 16
DIM = 8
CLASSES = 3


def build(seed: int = 1234):
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3), name="images")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="conv1/bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    emb = keras.layers.Dense(DIM, name="embed")(x)
    logits = keras.layers.Dense(CLASSES, name="logits")(emb)
    model = keras.Model(inp, [emb, logits])
    # Non-trivial batch-norm statistics so inference mode matters.
    bn = model.get_layer("conv1/bn")
    rng = np.random.default_rng(seed)
    bn.set_weights([
        rng.uniform(0.5, 1.5, 8).astype("float32"),
        rng.normal(0, 0.1, 8).astype("float32"),
        rng.normal(0, 0.2, 8).astype("float32"),
        rng.uniform(0.5, 2.0, 8).astype("float32"),
    ])

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="images")])
        def serve(self, images):
            e, l = self.model(images, training=False)
            return {"embeddings": tf.math.l2_normalize(e, axis=-1), "logits": l}

        @tf.function(input_signature=[tf.TensorSpec([None, DIM], tf.float32, name="a"),
                                      tf.TensorSpec([None, DIM], tf.float32, name="b")])
        def pair(self, a, b):
            return {"distance": tf.norm(a - b, axis=-1, keepdims=True)}

        @tf.function(input_signature=[tf.TensorSpec([2, SIZE, SIZE, 3], tf.float32, name="images")])
        def fixed(self, images):
            _, l = self.model(images, training=False)
            return {"logits": l}

    return Tiny(), model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="models output folder; the model goes to OUT/test-tiny")
    args = ap.parse_args(argv)

    import numpy as np

    module, model = build()
    weights = model.get_weights()
    manifest = {
        "name": NAME,
        "version": "1.0.0",
        "task": "test",
        "input": {"signature": "serving_default", "tensor": "images", "height": SIZE, "width": SIZE,
                  "channels": 3, "pixel_format": "RGB", "range": [0, 255]},
        "preprocessing": ["scale[1/127.5,-1]"],
        "weights": "untrained",
        "weights_sha256": common.sha256_arrays(weights),
        "license": "Apache-2.0 (facegate test fixture, random weights)",
        "provenance": {"source": "generated", "file": "", "sha256": "",
                       "builder": "models/test_model.py", "notes": "deterministic seed 1234"},
    }
    out = common.save_model(module, pathlib.Path(args.out) / NAME,
                            {"serving_default": module.serve, "pair": module.pair, "fixed": module.fixed},
                            manifest)

    # Reference outputs computed from the saved model, as Go will run it.
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    rng = np.random.default_rng(7)
    images = rng.uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")
    serve = loaded.signatures["serving_default"](images=tf.constant(images))
    a = serve["embeddings"].numpy()
    b = np.roll(a, 1, axis=0)
    pair = loaded.signatures["pair"](a=tf.constant(a), b=tf.constant(b))
    ref = {
        "images": {"shape": list(images.shape), "data": images.ravel().tolist()},
        "embeddings": {"shape": list(a.shape), "data": a.ravel().tolist()},
        "logits": {"shape": list(serve["logits"].shape), "data": serve["logits"].numpy().ravel().tolist()},
        "pair_b": {"shape": list(b.shape), "data": b.ravel().tolist()},
        "distance": {"shape": list(pair["distance"].shape), "data": pair["distance"].numpy().ravel().tolist()},
    }
    (out / "reference.json").write_text(json.dumps(ref))
    print(f"exported {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
