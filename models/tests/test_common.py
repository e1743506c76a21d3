"""Tests of models/common.py: hashes, manifest writing, the Siamese wrapper."""

import json

import numpy as np
import pytest

import common


def test_sha256_arrays_sees_dtype_shape_and_bytes():
    a = np.arange(6, dtype="float32")
    base = common.sha256_arrays([a])
    assert len(base) == 64
    assert common.sha256_arrays([a.copy()]) == base
    assert common.sha256_arrays([a.reshape(2, 3)]) != base
    assert common.sha256_arrays([a.astype("float64")]) != base
    b = a.copy()
    b[3] += 1e-6
    assert common.sha256_arrays([b]) != base


def test_check_sha256(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"facegate")
    common.check_sha256(p, common.sha256_file(p))
    with pytest.raises(RuntimeError, match="refusing"):
        common.check_sha256(p, "0" * 64)


def test_siamese_verify_is_the_pairwise_distance_head():
    import tensorflow as tf

    tower = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(4, use_bias=False)])
    tower.build((None, 2, 2, 3))
    mod = common.siamese_module(tower, 2, 2, 4, head_weight=-5.0, head_bias=2.5)
    rng = np.random.default_rng(0)
    imgs = rng.uniform(0, 255, (3, 2, 2, 3)).astype("float32")
    e = mod.embed(tf.constant(imgs))["embeddings"].numpy()
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-6)
    out = mod.verify(tf.constant(e), tf.constant(e[:2]))
    d = out["distance"].numpy()
    assert d.shape == (3, 2)
    want = np.linalg.norm(e[:, None, :] - e[None, :2, :], axis=-1)
    np.testing.assert_allclose(d, want, atol=1e-3)
    np.testing.assert_allclose(np.diag(d[:2]), 0.0, atol=1e-3)
    p = out["probability"].numpy()
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(-5.0 * d + 2.5))), rtol=1e-5)


def test_save_model_writes_manifest_from_the_graph(tmp_path):
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def f(self, x):
            return {"y": x * 2.0}

    m = M()
    out = common.save_model(m, tmp_path / "m", {"serving_default": m.f},
                            {"name": "m", "version": "1", "task": "test", "weights": "untrained",
                             "weights_sha256": "", "license": "x", "input": {}, "preprocessing": [],
                             "provenance": {}})
    man = json.loads((out / common.MANIFEST_FILE).read_text())
    assert man["schema"] == common.SCHEMA_VERSION and man["tags"] == ["serve"]
    assert man["signatures"]["serving_default"] == {
        "inputs": {"x": {"dtype": "float32", "shape": [-1, 3]}},
        "outputs": {"y": {"dtype": "float32", "shape": [-1, 3]}},
    }
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "temporary folders left behind"
