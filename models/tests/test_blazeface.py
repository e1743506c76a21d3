"""Tests of the exported BlazeFace SavedModels (models/blazeface.py).

* the manifest describes the graph and the anchor layout;
* the SavedModel reproduces the ORIGINAL tfjs model run in Node
  (build/blazeface-ref, made by `make test` through mk/blazeface.mk);
* on real photos (../shared/data, test-time only) the reference decoder finds
  the faces with sensible keypoints, and "right_eye" is on the image's left.

Models come from $FACEGATE_MODELS_DIR (default build/models). Missing models,
references or photos skip a test with one line, except under CI=true where
they fail it.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

import blazeface as bf
import common

MODELS = pathlib.Path(os.environ.get("FACEGATE_MODELS_DIR") or common.REPO / "build" / "models")
REF = pathlib.Path(os.environ.get("FACEGATE_BLAZEFACE_REF") or common.REPO / "build" / "blazeface-ref")
NAMES = sorted(bf.VARIANTS)
# The tfjs comparison bound: 1e-4, relative for values beyond +-1. Raw logits
# reach -237, where one float32 ulp is 1.5e-5; tfjs (float64 accumulation in
# JS) and TF (float32) both sit ~2e-4 from a float64 evaluation there.
TOL = 1e-4


def _need(path: pathlib.Path, what: str) -> pathlib.Path:
    if path.exists():
        return path
    msg = f"{what} missing: {path}"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: every test must run)")
    pytest.skip(msg)


_loaded: dict[str, object] = {}


def _model(name: str):
    import tensorflow as tf

    if name not in _loaded:
        d = _need(MODELS / name / "saved_model.pb", f"model {name} (run `make models`)").parent
        _loaded[name] = tf.saved_model.load(str(d))
    return _loaded[name]


def _run(name: str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    out = _model(name).signatures["detect"](images=tf.constant(images, tf.float32))
    return out["boxes"].numpy(), out["scores"].numpy()


def _photo(rel: str) -> pathlib.Path:
    return _need(bf.data_dir() / rel, "shared test photo (set FACEGATE_DATA)")


@pytest.mark.parametrize("name", NAMES)
def test_manifest_describes_graph_and_anchors(name):
    v = bf.VARIANTS[name]
    d = _need(MODELS / name / common.MANIFEST_FILE, f"model {name} (run `make models`)").parent
    m = json.loads((d / common.MANIFEST_FILE).read_text())
    assert m["task"] == "detector" and m["weights"] == "pretrained" and m["license"] == "Apache-2.0"
    assert m["input"] == {"signature": "detect", "tensor": "images", "height": v.size, "width": v.size,
                          "channels": 3, "pixel_format": "RGB", "range": [0, 255]}
    for sig in ("detect", "serving_default"):
        s = m["signatures"][sig]
        assert s["inputs"] == {"images": {"dtype": "float32", "shape": [-1, v.size, v.size, 3]}}
        assert s["outputs"] == {"boxes": {"dtype": "float32", "shape": [-1, v.count, 16]},
                                "scores": {"dtype": "float32", "shape": [-1, v.count, 1]}}
    det = m["detector"]
    assert det["anchors"]["count"] == len(bf.anchors(v)) == v.count
    assert det["keypoints"] == 6 and det["keypoint_names"][:2] == ["right_eye", "left_eye"]
    assert det["score_logits"] is True and det["box_scale"] == v.size
    prov = m["provenance"]
    assert prov["sha256"] == bf.FILES[f"models/{v.tfjs}.bin"]
    assert bf.TARBALL_SHA256 in prov["source"]


@pytest.mark.parametrize("name", NAMES)
def test_weights_sha256_is_the_dequantised_tfjs_weights(name):
    import tfjs_graph

    v = bf.VARIANTS[name]
    d = _need(MODELS / name / common.MANIFEST_FILE, f"model {name} (run `make models`)").parent
    m = json.loads((d / common.MANIFEST_FILE).read_text())
    g = tfjs_graph.load(bf.model_json(v))
    assert m["weights_sha256"] == common.sha256_arrays(g.weight_list())
    # fp16 shards: every float weight is exactly representable in float16.
    floats = [w for w in g.weight_list() if w.dtype == np.float32]
    assert floats and all(np.array_equal(w.astype(np.float16).astype(np.float32), w) for w in floats)


def test_anchor_layout():
    short = bf.anchors(bf.VARIANTS["blazeface-short"])
    assert short.shape == (896, 2)
    # 16x16 grid, 2 per cell, then 8x8 grid, 6 per cell; row-major, x fastest.
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[1], short[0])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    full = bf.anchors(bf.VARIANTS["blazeface-full"])
    assert full.shape == (2304, 2)
    np.testing.assert_allclose(full[[0, 1, 48, -1]], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48],
                                                     [0.5 / 48, 1.5 / 48], [47.5 / 48, 47.5 / 48]])


@pytest.mark.parametrize("name", NAMES)
def test_matches_tfjs_original(name):
    """SavedModel vs the original tfjs model on the tfjs CPU backend (Node)."""
    v = bf.VARIANTS[name]
    d = _need(REF / name / "meta.json", "tfjs reference (run `make test` or `make blazeface-ref`)").parent
    meta, x, ref = bf.read_reference(d)
    assert meta["tfjs"]["backend"] == "cpu" and meta["tfjs"]["tfjs_core"] == "4.22.0"
    assert meta["model_json_sha256"] == bf.FILES[f"models/{v.tfjs}.json"]
    boxes, scores = _run(name, x)
    got = np.concatenate([scores, boxes], axis=-1)
    assert got.shape == ref.shape == (meta["batch"], v.count, 17)
    diff = np.abs(got.astype(np.float64) - ref)
    bound = TOL * np.maximum(1.0, np.abs(ref))
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape)
    print(f"{name}: max abs diff vs tfjs {diff.max():.3g} (|ref| up to {np.abs(ref).max():.1f}); "
          f"max relative (|ref|>=1) {(diff / np.maximum(1, np.abs(ref))).max():.3g}")
    assert np.all(diff <= bound), f"{name}: diff {diff[worst]:.3g} at {worst}, ref {ref[worst]:.4g}"
    # What decoding uses: probabilities and coordinates normalised to the input.
    p_got, p_ref = bf.sigmoid_scores(scores.reshape(-1)), bf.sigmoid_scores(ref[..., 0].reshape(-1))
    p_diff = np.abs(p_got - p_ref).max()
    xy_diff = np.abs(boxes.astype(np.float64) - ref[..., 1:]).max() / v.size
    print(f"{name}: max abs diff of probabilities {p_diff:.3g}, of normalised coordinates {xy_diff:.3g}")
    assert p_diff <= TOL and xy_diff <= TOL
    # Same detections after decoding.
    for i in range(x.shape[0]):
        a = bf.detect_faces(boxes[i], scores[i], v)
        b = bf.detect_faces(ref[i, :, 1:], ref[i, :, :1], v)
        assert len(a) == len(b), meta["inputs"][i]
        for da, db in zip(a, b):
            assert abs(da.score - db.score) <= TOL
            np.testing.assert_allclose(da.box, db.box, atol=TOL)
            np.testing.assert_allclose(da.keypoints, db.keypoints, atol=TOL)


LFW = ["faces/lfw__Aaron_Sorkin/001.jpg", "faces/lfw__Abdullah_Gul/001.jpg",
       "faces/lfw__Abel_Pacheco/001.jpg", "faces/lfw__Abdoulaye_Wade/001.jpg",
       "faces/lfw__Abbas_Kiarostami/001.jpg", "faces/lfw__Aaron_Patterson/001.jpg"]


@pytest.mark.parametrize("name", NAMES)
def test_finds_the_face_in_lfw_photos(name):
    """LFW deep-funneled: 250x250, one face centred, ~110 px wide."""
    v = bf.VARIANTS[name]
    x = np.stack([bf.load_square(_photo(rel), v.size) for rel in LFW])
    boxes, scores = _run(name, x)
    for i, rel in enumerate(LFW):
        dets = bf.detect_faces(boxes[i], scores[i], v)
        assert dets, f"{name}: no face in {rel}"
        best = max(dets, key=lambda d: d.score)
        assert best.score >= 0.6, (rel, best.score)
        x0, y0, x1, y1 = best.box
        cx, cy, w = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
        assert abs(cx - 0.5) < 0.1 and abs(cy - 0.5) < 0.12, (rel, best.box)
        assert 0.25 < w < 0.75, (rel, best.box)
        kp = dict(zip(bf.KEYPOINT_NAMES, best.keypoints))
        # "right" is the subject's right = the image's left on an unmirrored photo.
        assert kp["right_eye"][0] < kp["nose_tip"][0] < kp["left_eye"][0], (rel, kp)
        assert kp["right_ear_tragion"][0] < kp["right_eye"][0], (rel, kp)
        assert kp["left_eye"][0] < kp["left_ear_tragion"][0], (rel, kp)
        eyes_y = (kp["right_eye"][1] + kp["left_eye"][1]) / 2
        assert eyes_y < kp["nose_tip"][1] < kp["mouth_center"][1], (rel, kp)
        for name_, (px, py) in kp.items():
            if "ear" not in name_:
                assert x0 <= px <= x1 and y0 <= py <= y1, (rel, name_, best.box)


def test_mirrored_photo_swaps_sides():
    """Flipping the photo moves "right_eye" to the other side of the nose."""
    v = bf.VARIANTS["blazeface-short"]
    img = bf.load_square(_photo(LFW[0]), v.size)
    boxes, scores = _run(v.name, np.stack([img, img[:, ::-1]]))
    a = max(bf.detect_faces(boxes[0], scores[0], v), key=lambda d: d.score)
    b = max(bf.detect_faces(boxes[1], scores[1], v), key=lambda d: d.score)
    # In the mirror image the subject's right eye appears where the left one was.
    np.testing.assert_allclose(b.keypoints[0, 0], 1 - a.keypoints[1, 0], atol=0.03)
    assert b.keypoints[0, 0] < b.keypoints[1, 0]


@pytest.mark.parametrize("name,photo,faces", [
    ("blazeface-short", "scenes/deepface_couple.jpg", 2),
    ("blazeface-short", "scenes/frec_two_people.jpg", 2),
    ("blazeface-full", "scenes/deepface_couple.jpg", 2),
    ("blazeface-full", "scenes/frec_obama_and_biden.jpg", 2),
    ("blazeface-full", "scenes/faceapi_bbt4.jpg", 6),
])
def test_counts_faces_in_scenes(name, photo, faces):
    v = bf.VARIANTS[name]
    x = bf.load_square(_photo(photo), v.size)[None]
    boxes, scores = _run(name, x)
    dets = bf.detect_faces(boxes[0], scores[0], v)
    assert len(dets) == faces, [round(d.score, 3) for d in dets]
    for a in range(len(dets)):
        for b in range(a + 1, len(dets)):
            assert bf.iou(dets[a].box, dets[b].box) < 0.3


@pytest.mark.parametrize("name", NAMES)
def test_no_face_in_flat_images(name):
    v = bf.VARIANTS[name]
    x = np.stack([np.full((v.size, v.size, 3), c, np.float32) for c in (0, 128, 255)])
    boxes, scores = _run(name, x)
    for i in range(3):
        assert bf.detect_faces(boxes[i], scores[i], v) == []
    assert np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))


def test_batch_rows_are_independent():
    v = bf.VARIANTS["blazeface-short"]
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (3, v.size, v.size, 3)).astype(np.float32)
    boxes, scores = _run(v.name, x)
    b1, s1 = _run(v.name, x[1:2])
    np.testing.assert_allclose(b1[0], boxes[1], atol=1e-4)
    np.testing.assert_allclose(s1[0], scores[1], atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_saved_graph_uses_standard_ops_only(name):
    """No tfjs/Grappler fused ops in the SavedModel: the C API runs it as is."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = _need(MODELS / name / "saved_model.pb", f"model {name} (run `make models`)")
    sm = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    ops = set()
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for f in mg.graph_def.library.function:
            ops.update(n.op for n in f.node_def)
    assert {"Conv2D", "DepthwiseConv2dNative", "BiasAdd"} <= ops
    assert not {o for o in ops if "Fused" in o or o == "Prelu"}, sorted(ops)
