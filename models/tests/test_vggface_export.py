"""VGGFace2 ResNet-50: the exported SavedModel (``make models``) and its manifest.

Uses the model in ``$FACEGATE_MODELS_DIR/vggface2-resnet50`` rather than
exporting again (an export costs ~30-60 s of CPU). Outside CI a missing
model skips with one line; under CI=true it fails.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import common  # noqa: E402
import vggface_resnet50 as vgg  # noqa: E402

CI = os.environ.get("CI") == "true"


def model_dir() -> pathlib.Path:
    root = pathlib.Path(os.environ.get("FACEGATE_MODELS_DIR") or common.REPO / "build" / "models")
    d = root / vgg.NAME
    if not (d / "saved_model.pb").exists():
        msg = f"model {vgg.NAME} not exported in {root} (run `make models`)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="module")
def manifest():
    return json.loads((model_dir() / common.MANIFEST_FILE).read_text())


@pytest.fixture(scope="module")
def loaded():
    import tensorflow as tf

    return tf.saved_model.load(str(model_dir()))


@pytest.fixture(scope="module")
def embeddings(loaded):
    """embed() of three reference images, computed once."""
    import tensorflow as tf

    return loaded.signatures["embed"](images=tf.constant(vgg.reference_images(3)))["embeddings"].numpy()


def _verify(loaded, a, b):
    import tensorflow as tf

    out = loaded.signatures["verify"](a=tf.constant(a), b=tf.constant(b))
    return out["probability"].numpy(), out["distance"].numpy()


def test_manifest(manifest):
    if manifest["weights"] == "pretrained":
        pytest.skip("exported with user-supplied weights; the untrained checks do not apply")
    assert manifest["name"] == "vggface2-resnet50" and manifest["task"] == "siamese"
    assert manifest["weights"] == "untrained"
    assert manifest["input"] == {"signature": "embed", "tensor": "images", "height": 224, "width": 224,
                                 "channels": 3, "pixel_format": "RGB", "range": [0, 255]}
    assert manifest["preprocessing"] == ["rgb_to_bgr", "subtract_mean_bgr[91.4953,103.8827,131.0912]"]
    assert manifest["embedding_dim"] == 2048 and manifest["metric"] == "euclidean"
    al = manifest["alignment"]
    assert al["size"] == 224 and al["point_names"] == ["right_eye", "left_eye", "nose_tip", "mouth_center"]
    (rx, ry), (lx, ly), (nx, ny), (mx, my) = al["points"]
    assert rx < nx < lx and abs(ry - ly) < 1 and ry < ny < my  # subject's right eye on image left
    assert "non-commercial" in manifest["license"] and "MIT" in manifest["license"]
    assert "UNTRAINED" in manifest["provenance"]["notes"]
    # weights_sha256 pins exactly the deterministic weights of the default seed.
    b = vgg.build_backbone()
    vgg.init_random_weights(b)
    assert manifest["weights_sha256"] == common.sha256_arrays(vgg.weight_arrays(b))


def test_signatures(manifest, loaded):
    assert set(manifest["signatures"]) == {"embed", "verify", "serving_default"}
    assert manifest["signatures"]["embed"] == {
        "inputs": {"images": {"dtype": "float32", "shape": [-1, 224, 224, 3]}},
        "outputs": {"embeddings": {"dtype": "float32", "shape": [-1, 2048]}}}
    assert manifest["signatures"]["serving_default"] == manifest["signatures"]["embed"]
    v = manifest["signatures"]["verify"]
    assert v["inputs"] == {"a": {"dtype": "float32", "shape": [-1, 2048]},
                           "b": {"dtype": "float32", "shape": [-1, 2048]}}
    assert v["outputs"] == {"probability": {"dtype": "float32", "shape": [-1, -1]},
                            "distance": {"dtype": "float32", "shape": [-1, -1]}}
    assert set(loaded.signatures) == {"embed", "verify", "serving_default"}


def test_embed_matches_keras_and_is_normalised(manifest, embeddings):
    assert embeddings.shape == (3, 2048) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    if manifest["weights"] != "untrained":
        return
    tower = vgg.build_tower()
    vgg.init_random_weights(vgg.backbone_of(tower))
    want = tower(vgg.reference_images(3), training=False).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(embeddings, want, atol=1e-5)


def test_serving_default_is_embed(loaded, embeddings):
    import tensorflow as tf

    out = loaded.signatures["serving_default"](images=tf.constant(vgg.reference_images(1)))
    np.testing.assert_allclose(out["embeddings"].numpy(), embeddings[:1], atol=1e-6)


def test_verify_is_n_by_m_and_symmetric(loaded, embeddings):
    rs = np.random.RandomState(3)
    a = rs.standard_normal((2, 2048)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.concatenate([embeddings, a[:1]])
    p, d = _verify(loaded, a, b)
    assert p.shape == (2, 4) and d.shape == (2, 4)
    want = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    np.testing.assert_allclose(d, want, atol=1e-4)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(vgg.HEAD_WEIGHT * want + vgg.HEAD_BIAS))), atol=1e-4)
    p2, d2 = _verify(loaded, b, a)
    np.testing.assert_allclose(d2, d.T, atol=1e-6)
    np.testing.assert_allclose(p2, p.T, atol=1e-6)
    assert d[0, 3] < 1e-3 and p[0, 3] > p[1, 3]  # a[0] vs itself: distance 0, the most likely match


def test_two_towers_share_weights(loaded, embeddings):
    # The same images through both towers: distance 0, probability sigmoid(bias).
    import tensorflow as tf

    again = loaded.signatures["embed"](images=tf.constant(vgg.reference_images(3)))["embeddings"].numpy()
    p, d = _verify(loaded, embeddings, again)
    np.testing.assert_allclose(np.diag(d), 0.0, atol=2e-3)
    np.testing.assert_allclose(np.diag(p), 1 / (1 + np.exp(-vgg.HEAD_BIAS)), atol=1e-3)
    # Batch composition does not change a face's embedding.
    one = loaded.signatures["embed"](images=tf.constant(vgg.reference_images(1, offset=2)))["embeddings"].numpy()
    np.testing.assert_allclose(one[0], embeddings[2], atol=1e-5)
