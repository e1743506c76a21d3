"""SFace in Keras (models/sface.py) against the original int8 ONNX graph run
by onnxruntime.

Needs, from `make deps models test` (mk/sface.mk): the dequantised weights
``build/sface/sface_weights.npz`` (models/onnx_sface.py extract), the
reference ``build/sface-ref/`` (models/onnx_sface.py reference, in
.venv-onnx: LFW faces aligned with the ArcFace template from YuNet's
landmarks, and onnxruntime's embeddings of them) and the exported
``sface-2021dec`` SavedModel. Outside CI a missing input skips with one
line; under CI=true it fails.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib

import numpy as np
import pytest

import common
import onnx_sface
import sface

CI = os.environ.get("CI") == "true"
TOL = 1e-4  # max abs difference on the embedding (the bound)
BUILD = common.REPO / "build"


def need(path: pathlib.Path, how: str) -> pathlib.Path:
    if not path.exists():
        msg = f"{path} missing (run `{how}`)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def reference():
    p = need(pathlib.Path(os.environ.get("FACEGATE_SFACE_REF") or BUILD / "sface-ref") / "reference.json",
             "make sface-ref")
    ref = json.loads(p.read_text())
    chips_file = p.parent / ref["chips_file"]
    assert common.sha256_file(chips_file) == ref["chips_sha256"], "chips.u8 does not match reference.json"
    chips = np.fromfile(chips_file, np.uint8).reshape(-1, sface.SIZE, sface.SIZE, 3)
    emb = np.array(ref["embeddings"], np.float64)
    assert chips.shape[0] == emb.shape[0] == len(ref["images"]) >= 20
    assert emb.shape[1] == sface.DIM
    return ref, chips, emb


@pytest.fixture(scope="module")
def npz():
    return need(BUILD / "sface" / onnx_sface.WEIGHTS_NPZ, "make sface-weights")


@pytest.fixture(scope="module")
def saved():
    import tensorflow as tf

    root = pathlib.Path(os.environ.get("FACEGATE_MODELS_DIR") or BUILD / "models")
    d = need(root / sface.NAME / "saved_model.pb", "make models").parent
    return d, tf.saved_model.load(str(d))


def test_savedmodel_matches_onnxruntime(saved, reference):
    import tensorflow as tf

    _, loaded = saved
    ref, chips, emb = reference
    got = loaded.signatures["embed"](images=tf.constant(chips.astype(np.float32)))["embeddings"].numpy()
    want = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    diff = np.abs(got - want).max()
    print(f"SavedModel embed vs onnxruntime {ref['onnxruntime']} (normalised): {len(chips)} faces, max abs diff {diff:.3g}")
    assert got.shape == want.shape
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert diff <= TOL
    raw = loaded.tower(chips.astype(np.float32), training=False).numpy()
    rdiff = np.abs(raw - emb).max()
    print(f"tower vs onnxruntime fc1 (unnormalised, |x| up to {np.abs(emb).max():.2f}): max abs diff {rdiff:.3g}")
    assert rdiff <= TOL * max(1.0, float(np.abs(emb).max()))


def test_reference_faces_separate(reference):
    # The reference holds two photos of each of 12 people (images 2i, 2i+1):
    # with SFace's usual cosine threshold (~0.36) every same pair matches and
    # no different pair does. Guards against chips that are not faces or
    # mis-aligned ones (which would make the agreement figure meaningless).
    ref, _, emb = reference
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    c = e @ e.T
    n = len(e) // 2 * 2
    same = [c[i, i + 1] for i in range(0, n, 2)]
    diff = [c[i, j] for i in range(n) for j in range(i + 1, n) if i // 2 != j // 2]
    assert min(same) > 0.4, same
    assert max(diff) < 0.4


def test_manifest(saved):
    d, _ = saved
    m = json.loads((d / common.MANIFEST_FILE).read_text())
    assert m["task"] == "embedder" and m["metric"] == "cosine" and m["embedding_dim"] == 128
    assert m["input"] == {"signature": "embed", "tensor": "images", "height": 112, "width": 112,
                          "channels": 3, "pixel_format": "RGB", "range": [0, 255]}
    assert m["alignment"]["size"] == 112
    assert m["alignment"]["point_names"] == sface.ALIGN_POINT_NAMES
    assert m["provenance"]["sha256"] == onnx_sface.SFACE_SHA256 == sface.ONNX_SHA256
    assert onnx_sface.WHEEL_SHA256 == sface.WHEEL_SHA256
    assert m["license"].startswith("Apache-2.0")
    assert set(m["signatures"]) == {"embed", "serving_default"}
    assert m["signatures"]["embed"]["outputs"]["embeddings"]["shape"] == [-1, 128]


def test_no_explicit_paddings(saved):
    # TF 2.18's oneDNN depthwise kernel aborts on EXPLICIT paddings on
    # AVX-512 CPUs: the stride-2 depthwise convolutions must be a zero pad
    # and a VALID convolution.
    from tensorflow.core.protobuf import saved_model_pb2

    d, _ = saved

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((d / "saved_model.pb").read_bytes())
    pads = []
    for mg in sm.meta_graphs:
        nodes = list(mg.graph_def.node)
        for f in mg.graph_def.library.function:
            nodes += list(f.node_def)
        for n in nodes:
            if n.op in ("Conv2D", "DepthwiseConv2dNative"):
                pads.append(n.attr["padding"].s.decode())
    assert pads and "EXPLICIT" not in pads, set(pads)


def test_converter_checks_the_graph(npz):
    arrays, layers, _ = sface.load_npz(npz)
    model = sface.build_keras(arrays, layers)
    # 27 convolutions (conv_1, 13 depthwise, 13 pointwise), 4 explicit pads.
    names = [layer.name for layer in model.layers]
    assert sum(n.startswith("conv_") and not n.endswith(("_prelu", "_pad")) for n in names) == 27
    assert sorted(n for n in names if n.endswith("_pad")) == [
        "conv_13_dw_pad", "conv_3_dw_pad", "conv_5_dw_pad", "conv_7_dw_pad"]
    assert model.output_shape == (None, 128)
    # A graph that differs from the architecture is refused, not converted.
    for mutate, err in [
        (lambda L: L[3]["attrs"].update(epsilon=1e-5), "epsilon"),
        (lambda L: next(x for x in L if x["name"] == "conv_3_dw_conv2d")["attrs"].update(strides=[1, 1]), "strides"),
        (lambda L: L.pop(), "graph ended"),
        (lambda L: L.append(dict(L[-1])), "left over"),
    ]:
        bad = copy.deepcopy(layers)
        mutate(bad)
        with pytest.raises(ValueError, match=err):
            sface.build_keras(arrays, bad)


def test_dequantize_blocked():
    # DequantizeLinear, opset 21: along axis 1 every block of 2 values shares
    # one scale and zero point.
    q = np.array([[1, -2, 3, 4], [-128, 127, 0, 5]], np.int8)
    s = np.array([[0.5, 2.0], [0.25, 1.0]], np.float32)
    z = np.array([[1, 0], [-128, 5]], np.int8)
    want = np.array([[0.0, -1.5, 6.0, 8.0], [0.0, 63.75, -5.0, 0.0]], np.float32)
    got = onnx_sface.dequantize(q, s, z, axis=1, block=2)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    # Per-axis (block 0) and per-tensor.
    np.testing.assert_array_equal(onnx_sface.dequantize(q[:, :1], np.array([2, 3], np.float32), None, 0, 0),
                                  [[2], [-384]])
    np.testing.assert_array_equal(onnx_sface.dequantize(q, np.array([0.5], np.float32), None, 1, 0), q * 0.5)


def test_similarity_and_warp():
    # The alignment of the reference: a known similarity is recovered from
    # points, and warping with it moves a bright pixel where it maps.
    src = np.array(onnx_sface.ARCFACE)
    ang, sc, t = 0.3, 1.7, np.array([12.0, -4.0])
    r = sc * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ r.T + t
    m = onnx_sface.similarity(src, dst)
    np.testing.assert_allclose(m, np.hstack([r, t[:, None]]), atol=1e-9)
    img = np.zeros((60, 80, 3), np.uint8)
    img[20, 30] = 255
    m = np.array([[1.0, 0, 5], [0, 1.0, 7]])
    chip = onnx_sface.warp(img, m, size=64)
    assert chip[27, 35, 0] == 255 and chip.sum() == 3 * 255
