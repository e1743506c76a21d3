"""dlib's face ResNet in Keras (models/dlib_resnet.py) against dlib itself.

Needs, from `make deps models test`: the pinned .dat ($FACEGATE_DLIB_DAT),
dlib's own descriptors of the shared dlib chips ($FACEGATE_DLIB_REFERENCE,
written by bench/dlib_reference.py in .venv-dlib) and the exported
``dlib-resnet-v1`` SavedModel. Outside CI a missing input skips with one
line; under CI=true it fails.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

import common
import dlib_dat
import dlib_resnet

CI = os.environ.get("CI") == "true"
TOL = 1e-3  # max abs difference to dlib's descriptors (the bound)


def need(path: pathlib.Path, how: str) -> pathlib.Path:
    if not path.exists():
        msg = f"{path} missing (run `{how}`)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def dat_path() -> pathlib.Path:
    return need(pathlib.Path(os.environ.get("FACEGATE_DLIB_DAT")
                             or common.cache_dir() / "dlib" / "dlib_face_recognition_resnet_model_v1.dat"),
                "make deps")


@pytest.fixture(scope="module")
def reference():
    p = need(pathlib.Path(os.environ.get("FACEGATE_DLIB_REFERENCE")
                          or common.REPO / "build" / "dlib-reference" / "reference.json"),
             "make dlib-reference")
    ref = json.loads(p.read_text())
    chips_file = p.parent / ref["chips_file"]
    assert common.sha256_file(chips_file) == ref["chips_sha256"], "chips.u8 does not match reference.json"
    chips = np.fromfile(chips_file, np.uint8).reshape(-1, 150, 150, 3)
    desc = np.array(ref["descriptors"], np.float64)
    assert chips.shape[0] == desc.shape[0] == len(ref["names"]) >= 20
    assert ref["model_sha256"] == dlib_resnet.DAT_SHA256
    return ref, chips, desc


@pytest.fixture(scope="module")
def keras_model():
    return dlib_resnet.build_keras(dlib_resnet.load_dat(dat_path()))


def model_dir() -> pathlib.Path:
    root = pathlib.Path(os.environ.get("FACEGATE_MODELS_DIR") or common.REPO / "build" / "models")
    return need(root / dlib_resnet.NAME / "saved_model.pb", "make models").parent


def test_keras_matches_dlib(keras_model, reference):
    ref, chips, desc = reference
    got = keras_model(chips.astype(np.float32), training=False).numpy()
    assert got.shape == (len(chips), 128)
    diff = np.abs(got - desc).max()
    print(f"Keras vs dlib {ref['dlib_version']}: {len(chips)} chips, max abs diff {diff:.3g}")
    assert diff < TOL


def test_keras_param_count(keras_model):
    # dlib's 5,614,592 minus the affine layers' gamma and beta (one pair per
    # conv channel: 7 convs of 32, 8 of 64, 6 of 128, 8 of 256), which are
    # folded into the convolutions' kernels and biases.
    affine = 2 * (7 * 32 + 8 * 64 + 6 * 128 + 8 * 256)
    assert keras_model.count_params() == 5_614_592 - affine == 5_607_488


def test_add_zero_extended_is_dlib_add_prev():
    import tensorflow as tf

    a = tf.reshape(tf.range(1 * 3 * 3 * 2, dtype=tf.float32), (1, 3, 3, 2))  # conv branch
    b = tf.ones((1, 4, 4, 1))                                               # pooled shortcut
    s = dlib_resnet._add_zero_extended([a, b]).numpy()
    assert s.shape == (1, 4, 4, 2)
    want = np.zeros((1, 4, 4, 2), np.float32)
    want[:, :3, :3, :] += a.numpy()
    want[:, :, :, :1] += 1
    np.testing.assert_array_equal(s, want)


def test_fold_matches_con_then_affine():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    g = rng.normal(size=5).astype(np.float32)
    beta = rng.normal(size=5).astype(np.float32)
    con = dlib_dat.Layer("con", "con_4", {}, {"filters": w, "biases": b})
    aff = dlib_dat.Layer("affine", "affine_", {"mode": 0}, {"gamma": g, "beta": beta})
    kernel, bias = dlib_resnet._fold(con, aff)
    x = rng.normal(size=(2, 9, 9, 3)).astype(np.float32)
    plain = tf.nn.conv2d(x, w.transpose(2, 3, 1, 0), 1, "SAME") + b
    want = plain * g + beta
    got = tf.nn.conv2d(x, kernel, 1, "SAME") + bias
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def saved():
    import tensorflow as tf

    d = model_dir()
    return d, json.loads((d / common.MANIFEST_FILE).read_text()), tf.saved_model.load(str(d))


def test_manifest(saved):
    _, m, _ = saved
    assert m["name"] == "dlib-resnet-v1" and m["task"] == "siamese"
    assert m["input"] == {"signature": "embed", "tensor": "images", "height": 150, "width": 150,
                          "channels": 3, "pixel_format": "RGB", "range": [0, 255]}
    assert m["embedding_dim"] == 128 and m["metric"] == "euclidean"
    assert m["preprocessing"] == ["subtract_mean[122.782,117.001,104.298]", "scale[1/256]"]
    al = m["alignment"]
    assert al["size"] == 150 and al["padding"] == 0.25
    assert al["point_names"] == ["right_eye", "left_eye", "mouth_center"]
    pts = np.array(al["points"])
    # Subject's right eye is on the image's left; eyes level, the mouth
    # below their midpoint.
    assert pts[0, 0] < pts[1, 0] and abs(pts[0, 1] - pts[1, 1]) < 2
    assert abs(pts[2, 0] - pts[:2, 0].mean()) < 3 and pts[1, 1] + 40 < pts[2, 1] < 150
    assert m["weights"] == "pretrained" and len(m["weights_sha256"]) == 64
    assert m["provenance"]["sha256"] == dlib_resnet.DAT_SHA256
    assert "face_recognition_models==0.3.0" in m["provenance"]["source"]
    half = m["head"]["bias"] / -m["head"]["weight"]
    assert m["head"]["weight"] < 0
    if m["head"]["fitted_on"].startswith("default"):
        assert half == pytest.approx(0.415, abs=1e-6)
    else:  # fitted by models/train_head.py (models/calibration/)
        assert 0.3 < half < 0.6
    assert set(m["signatures"]) == {"embed", "verify", "serving_default"}
    assert m["signatures"]["embed"]["outputs"]["embeddings"]["shape"] == [-1, 128]


def test_manifest_weights_sha256(saved, keras_model):
    _, m, _ = saved
    w = keras_model.get_weights() + [np.array([[dlib_resnet.HEAD_WEIGHT]], np.float32),
                                     np.array([dlib_resnet.HEAD_BIAS], np.float32)]
    assert common.sha256_arrays(w) == m["weights_sha256"]


def test_savedmodel_matches_dlib(saved, reference):
    _, _, loaded = saved
    ref, chips, desc = reference
    emb = loaded.signatures["embed"](images=chips.astype(np.float32))["embeddings"].numpy()
    want = desc / np.linalg.norm(desc, axis=1, keepdims=True)
    diff = np.abs(emb - want).max()
    print(f"SavedModel embed vs normalised dlib: max abs diff {diff:.3g}")
    assert diff < TOL
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_savedmodel_verify_separates_people(saved, reference):
    """The default head on the 5 people of dlib's example chips: dlib's
    descriptors separate them perfectly at dlib's threshold, and the head,
    placed at the equivalent normalised distance, must too."""
    _, m, loaded = saved
    ref, chips, desc = reference
    emb = loaded.signatures["embed"](images=chips.astype(np.float32))["embeddings"]
    out = loaded.signatures["verify"](a=emb, b=emb)
    d, p = out["distance"].numpy(), out["probability"].numpy()
    e = emb.numpy()
    want_d = np.linalg.norm(e[:, None, :] - e[None, :, :], axis=-1)
    np.testing.assert_allclose(d, want_d, atol=2e-3)
    h = m["head"]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(h["weight"] * d + h["bias"]))), atol=1e-5)
    person = np.array([n.split("/")[0] for n in ref["names"]])
    same = person[:, None] == person[None, :]
    off = ~np.eye(len(person), dtype=bool)
    genuine, impostor = p[same & off], p[~same]
    assert (genuine > 0.5).mean() >= 0.99 and (impostor < 0.5).mean() >= 0.99
    # dlib's own rule on its unnormalised descriptors agrees.
    du = np.linalg.norm(desc[:, None, :] - desc[None, :, :], axis=-1)
    assert ((du < dlib_resnet.DLIB_THRESHOLD) == (d < dlib_resnet.DEFAULT_NORM_THRESHOLD))[off].mean() >= 0.99
