"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) in
Keras, with its full-precision weights read from dlib's own ``.dat`` file,
exported as facegate's ``dlib-resnet-v1`` Siamese SavedModel.

The network is the ``anet_type`` of dlib's examples/dnn_face_recognition_ex.cpp::

    loss_metric<fc_no_bias<128, avg_pool_everything<
      alevel0<alevel1<alevel2<alevel3<alevel4<
      max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    block<N,stride>  = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, x>>>>>
    ares<N>          = relu(block<N,1>(x) + x)
    ares_down<N>     = relu(block<N,2>(x) + avg_pool<2,2,2,2>(x))
    alevel4 = 3 x ares<32>; alevel3 = ares_down<64> + 3 x ares<64>
    alevel2 = ares_down<128> + 2 x ares<128>; alevel1 = ares_down<256> + 2 x ares<256>
    alevel0 = ares_down<256>

29 convolutions, 150x150 RGB in, 128-d out. dlib semantics reproduced here:

* input: ``(pixel - mean) / 256`` per channel, means (R,G,B) =
  (122.782, 117.001, 104.298) read from the file, channel order RGB;
* ``con`` pads ``nr/2`` only when the stride is 1, so the stride-2 7x7 and
  3x3 convolutions and all pools are unpadded ("VALID"); 3x3 stride-1 ones
  are "SAME";
* ``affine`` (frozen batch norm) is ``x*gamma + beta`` per channel; it is
  folded into the preceding convolution's kernel and bias (exact algebra,
  float32 rounding differs by ~1e-7);
* ``add_prev`` adds tensors of different shapes by zero-extending the
  smaller one (channels, and rows/columns at the bottom/right): the
  shortcut of ``ares_down`` has fewer channels, and at 8->3/4 and 4->1/2
  pixels the pooled shortcut is larger than the convolved branch;
* ``fc_no_bias``: ``y = x W`` with W stored (num_inputs, num_outputs).

Run: ``python models/dlib_resnet.py --dat <file> --out build/models`` (the
``make models`` step in mk/dlib.mk).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import common  # noqa: E402
import dlib_dat  # noqa: E402

NAME = "dlib-resnet-v1"
VERSION = "1.0.0"
SIZE = 150
DIM = 128

# The pinned download: the PyPI sdist and the model file inside it.
PACKAGE = "face_recognition_models"
PACKAGE_VERSION = "0.3.0"
SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
DAT_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

# What the parsed file must hold (checked before anything is built).
EXPECTED_PARAMS = 5_614_592  # conv filters+biases, affine gamma+beta, fc weights
EXPECTED_COUNTS = {"con": 29, "affine": 29, "relu": 29, "add_prev": 14, "avg_pool": 5,
                   "max_pool": 1, "fc": 1, "input_rgb_image_sized": 1}

# dlib's classic decision threshold on its unnormalised descriptors and the
# default Siamese head. dlib descriptors have norms ~1.37-1.53 (mean ~1.44 on
# the dlib example chips), so 0.6 unnormalised is ~0.6/1.446 = 0.415 between
# L2-normalised embeddings; the head puts p = 0.5 there (a later step fits it).
DLIB_THRESHOLD = 0.6
DEFAULT_NORM_THRESHOLD = 0.415
HEAD_WEIGHT = -20.0
HEAD_BIAS = -HEAD_WEIGHT * DEFAULT_NORM_THRESHOLD

# Alignment template: where dlib's chips (get_face_chip_details(shape, 150,
# 0.25), HOG detector + 5-point shape predictor) put facegate's own detector
# (BlazeFace short-range) keypoints, in continuous 150-px chip coordinates
# (x, y; pixel i covers [i, i+1)). Measured by bench/dlib_template.py (see its
# docstring and docs/models/dlib.md): each face's BlazeFace keypoints are
# mapped through dlib's exact image->chip transform and averaged. The nose
# tip and the ear tragions are left out: they move with head pose relative to
# dlib's landmarks (nose tip std 8 px in x) and make the similarity fit
# reproduce dlib's transform worse (mean chip-corner displacement: eyes+mouth
# 5.97 px, +nose 7.08, all six 9.49) and LFW accuracy lower (98.43 % with the
# nose, 98.70 % without).
ALIGN_PADDING = 0.25
ALIGN_POINT_NAMES = ["right_eye", "left_eye", "mouth_center"]
ALIGN_POINTS = [(45.94, 46.12), (102.18, 46.77), (73.11, 108.31)]
ALIGN_REFERENCE = (
    "dlib get_face_chip(shape_predictor_5, size=150, padding=0.25) geometry in facegate's terms: "
    "BlazeFace (blazeface-short) keypoints of 399 LFW images (none used by pairs-lfw-folds1-5; "
    "133 of them of 52 people absent from it) mapped through dlib's image->chip transform "
    "(HOG detector + shape_predictor_5, checked against dlib.get_face_chip: 0.49 grey levels mean abs diff) "
    "and averaged, continuous chip pixels; spread (std x, y) right_eye 2.7, 2.3; left_eye 2.9, 2.8; "
    "mouth_center 3.2, 3.7 px; the least-squares similarity from these 3 points misplaces dlib's chip "
    "corners by 5.97 px on average (median 5.55). bench/dlib_template.py")


def load_dat(path: os.PathLike | str, check_hash: bool = True) -> dlib_dat.Net:
    """Reads the pinned .dat (sha256-checked) and validates its structure."""
    if check_hash:
        common.check_sha256(path, DAT_SHA256)
    net = dlib_dat.read_net_file(path)
    counts = {k: net.count(k) for k in EXPECTED_COUNTS}
    if counts != EXPECTED_COUNTS:
        raise dlib_dat.DatError(f"{path}: layer counts {counts}, want {EXPECTED_COUNTS}")
    if net.num_params() != EXPECTED_PARAMS:
        raise dlib_dat.DatError(f"{path}: {net.num_params()} parameters, want {EXPECTED_PARAMS}")
    return net


class _Layers:
    """Hands out the parsed layers in forward order, checking their kinds."""

    def __init__(self, net: dlib_dat.Net):
        self.layers = list(net.layers)
        self.i = 0

    def take(self, kind: str, **want) -> dlib_dat.Layer:
        if self.i >= len(self.layers):
            raise dlib_dat.DatError(f"network ended, wanted {kind}")
        layer = self.layers[self.i]
        if layer.kind != kind:
            raise dlib_dat.DatError(f"layer {self.i}: {layer.kind}, want {kind}")
        for k, v in want.items():
            if layer.attrs.get(k) != v:
                raise dlib_dat.DatError(f"layer {self.i} ({kind}): {k}={layer.attrs.get(k)}, want {v}")
        self.i += 1
        return layer


def _fold(con: dlib_dat.Layer, affine: dlib_dat.Layer) -> tuple[np.ndarray, np.ndarray]:
    """Keras kernel (kh,kw,in,out) and bias of affine(con(x))."""
    w = con.arrays["filters"].astype(np.float64)  # (out, in, kh, kw)
    b = con.arrays["biases"].astype(np.float64)
    g = affine.arrays["gamma"].astype(np.float64)
    beta = affine.arrays["beta"].astype(np.float64)
    if affine.attrs["mode"] != 0 or g.shape != b.shape:
        raise dlib_dat.DatError("affine after con must be per-channel (CONV_MODE)")
    kernel = (w * g[:, None, None, None]).transpose(2, 3, 1, 0)
    bias = b * g + beta
    return kernel.astype(np.float32), bias.astype(np.float32)


def build_keras(net: dlib_dat.Net):
    """The Keras model: float32 [N,150,150,3] RGB 0..255 -> dlib's 128-d descriptor.

    The output is dlib's descriptor itself (not normalised); the Siamese
    wrapper normalises it.
    """
    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import layers as L

    src = _Layers(net)
    inp_layer = src.take("input_rgb_image_sized", nr=SIZE, nc=SIZE)
    mean = np.array([inp_layer.attrs["avg_red"], inp_layer.attrs["avg_green"],
                     inp_layer.attrs["avg_blue"]], dtype=np.float32)

    weights: list[tuple[str, list[np.ndarray]]] = []
    n_conv = [0]

    def conv(x, n: int, stride: int, ksize: int, name_hint: str):
        con = src.take("con", num_filters=n, stride=(stride, stride), nr=ksize, nc=ksize)
        pad = con.attrs["padding"]
        want_pad = (0, 0) if stride != 1 else (ksize // 2, ksize // 2)
        if pad != want_pad:
            raise dlib_dat.DatError(f"con padding {pad}, want {want_pad}")
        aff = src.take("affine")
        kernel, bias = _fold(con, aff)
        n_conv[0] += 1
        name = f"conv{n_conv[0]:02d}_{name_hint}"
        layer = L.Conv2D(con.attrs["num_filters"], ksize, strides=stride,
                         padding="same" if stride == 1 else "valid", name=name)
        y = layer(x)
        weights.append((name, [kernel, bias]))
        return y

    def block(x, n: int, stride: int, hint: str):
        y = conv(x, n, stride, 3, hint + "a")
        src.take("relu")
        y = L.ReLU(name=f"{hint}_relu_a")(y)
        return conv(y, n, 1, 3, hint + "b")

    def ares(x, n: int, hint: str):
        y = block(x, n, 1, hint)
        src.take("add_prev")
        src.take("relu")
        return L.ReLU(name=f"{hint}_relu")(L.Add(name=f"{hint}_add")([y, x]))

    def ares_down(x, n: int, hint: str):
        y = block(x, n, 2, hint)
        src.take("avg_pool", nr=2, nc=2, stride=(2, 2), padding=(0, 0))
        p = L.AveragePooling2D(2, 2, padding="valid", name=f"{hint}_pool")(x)
        src.take("add_prev")
        s = L.Lambda(_add_zero_extended, name=f"{hint}_add")([y, p])
        src.take("relu")
        return L.ReLU(name=f"{hint}_relu")(s)

    images = keras.Input((SIZE, SIZE, 3), dtype=tf.float32, name="images")
    x = L.Lambda(lambda t: (t - mean) / 256.0, name="dlib_input")(images)
    x = conv(x, 32, 2, 7, "stem")
    src.take("relu")
    x = L.ReLU(name="stem_relu")(x)
    src.take("max_pool", nr=3, nc=3, stride=(2, 2), padding=(0, 0))
    x = L.MaxPooling2D(3, 2, padding="valid", name="stem_pool")(x)
    for i in range(3):
        x = ares(x, 32, f"l4_{i}")
    for level, n, reps in (("l3", 64, 3), ("l2", 128, 2), ("l1", 256, 2)):
        x = ares_down(x, n, f"{level}_down")
        for i in range(reps):
            x = ares(x, n, f"{level}_{i}")
    x = ares_down(x, 256, "l0_down")
    src.take("avg_pool", nr=0, nc=0)
    x = L.GlobalAveragePooling2D(name="avg_pool_everything")(x)
    fc = src.take("fc", num_inputs=256, num_outputs=DIM, bias=False)
    dense = L.Dense(DIM, use_bias=False, name="fc_no_bias")
    out = dense(x)
    weights.append(("fc_no_bias", [fc.arrays["weights"]]))
    if src.i != len(src.layers):
        raise dlib_dat.DatError(f"{len(src.layers) - src.i} layers left over")
    if n_conv[0] != 29:
        raise dlib_dat.DatError(f"{n_conv[0]} convolutions, want 29")

    model = keras.Model(images, out, name="dlib_resnet_v1")
    for name, ws in weights:
        model.get_layer(name).set_weights(ws)
    return model


def _add_zero_extended(tensors):
    """dlib's add_prev: a + b where the smaller is zero-extended (channels,
    bottom rows, right columns) to the larger's shape."""
    import tensorflow as tf

    a, b = tensors
    sa, sb = a.shape, b.shape
    h, w, c = (max(sa[i], sb[i]) for i in (1, 2, 3))

    def extend(t, s):
        pads = [[0, 0], [0, h - s[1]], [0, w - s[2]], [0, c - s[3]]]
        return t if all(p[1] == 0 for p in pads) else tf.pad(t, pads)

    return extend(a, sa) + extend(b, sb)


def manifest(net_sha256: str, weights_sha256: str) -> dict:
    """The facegate.json content (signatures are filled in by save_model)."""
    return {
        "name": NAME,
        "version": VERSION,
        "task": "siamese",
        "input": {"signature": "embed", "tensor": "images", "height": SIZE, "width": SIZE,
                  "channels": 3, "pixel_format": "RGB", "range": [0, 255]},
        "preprocessing": ["subtract_mean[122.782,117.001,104.298]", "scale[1/256]"],
        "embedding_dim": DIM,
        "metric": "euclidean",
        "head": {"fitted_on": "default (not fitted): p=0.5 at d=0.415, dlib's 0.6 threshold "
                              "divided by the mean dlib descriptor norm 1.446"},
        "alignment": {"size": SIZE, "padding": ALIGN_PADDING,
                      "points": [list(map(float, p)) for p in ALIGN_POINTS],
                      "point_names": ALIGN_POINT_NAMES, "reference": ALIGN_REFERENCE},
        "weights": "pretrained",
        "weights_sha256": weights_sha256,
        "license": "CC0-1.0 (dlib model by Davis King, public domain/CC0 1.0; "
                   "face_recognition_models LICENSE is CC0 1.0, its setup.py says MIT)",
        "provenance": {
            "source": f"PyPI {PACKAGE}=={PACKAGE_VERSION} (sdist sha256 {SDIST_SHA256})",
            "file": DAT_MEMBER.split("/", 1)[1],
            "sha256": net_sha256,
            "builder": "models/dlib_resnet.py",
            "notes": (
                "dlib_face_recognition_resnet_model_v1 (dlib anet_type, 29 conv, 5,614,592 params) "
                "read from dlib's .dat by models/dlib_dat.py; affine layers folded into the convs. "
                "embed returns dlib's descriptor L2-normalised; dlib's own descriptors have norm "
                f"~1.44 and dlib's threshold {DLIB_THRESHOLD} (unnormalised) is ~{DEFAULT_NORM_THRESHOLD} "
                f"normalised. Default head p=sigmoid({HEAD_WEIGHT}*d+{HEAD_BIAS:g}) "
                "(p=0.5 at d=0.415), not fitted."),
        },
    }


def export(dat: os.PathLike | str, out_root: os.PathLike | str) -> pathlib.Path:
    """Builds the model from the .dat and saves ``<out_root>/dlib-resnet-v1``."""
    net = load_dat(dat)
    model = build_keras(net)
    module = common.siamese_module(model, SIZE, SIZE, DIM, HEAD_WEIGHT, HEAD_BIAS)
    wsha = common.sha256_arrays(model.get_weights() + [np.array([[HEAD_WEIGHT]], np.float32),
                                                        np.array([HEAD_BIAS], np.float32)])
    out = pathlib.Path(out_root) / NAME
    sigs = {"embed": module.embed, "verify": module.verify, "serving_default": module.embed}
    common.save_model(module, out, sigs, manifest(common.sha256_file(dat), wsha))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Export dlib's face ResNet as facegate's dlib-resnet-v1.")
    ap.add_argument("--dat", required=True, help="dlib_face_recognition_resnet_model_v1.dat (pinned sha256)")
    ap.add_argument("--out", required=True, help="models output folder (build/models)")
    args = ap.parse_args()
    out = export(args.dat, args.out)
    print(f"exported {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
