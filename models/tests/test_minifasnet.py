"""MiniFASNet in Keras (models/minifasnet.py) against an independent float64
numpy forward pass of the authors' state dicts, the authors' published
results on their three samples, and the exported SavedModels.

The weights and samples are vendored (models/third_party/minifasnet/), so
everything but the SavedModel checks runs from the checkout alone; those
need ``make models`` (skipped outside CI, failed under CI=true).
"""

from __future__ import annotations

import collections
import io
import json
import os
import pathlib
import pickle
import struct
import sys
import types

import numpy as np
import pytest

import common
import minifasnet as mf
import torch_pickle

CI = os.environ.get("CI") == "true"
LOGIT_TOL = 1e-5  # Keras float32 vs numpy float64, max abs difference of the logits


# ------------------------------------------------ float64 reference network
# Written from the PyTorch module definitions (NCHW, BatchNorm and PReLU as
# separate steps, nothing folded), sharing no code with the Keras builder.


def ref_conv(x, w, stride, pad, groups):
    """torch.nn.functional.conv2d without bias, x (N,C,H,W) float64."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    if groups == 1:
        return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    assert groups == c == o and cg == 1
    return np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)


def ref_bn(x, sd, p, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g, b, m, v = (sd[f"{p}.{k}"].astype(np.float64).reshape(shape)
                  for k in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / np.sqrt(v + eps) * g + b


def ref_conv_block(x, sd, p, stride, pad, dw, act=True):
    w = sd[p + ".conv.weight"].astype(np.float64)
    y = ref_bn(ref_conv(x, w, stride, pad, x.shape[1] if dw else 1), sd, p + ".bn")
    if act:
        a = sd[p + ".prelu.weight"].astype(np.float64).reshape(1, -1, 1, 1)
        y = np.where(y > 0, y, a * y)
    return y


def ref_depth_wise(x, sd, p, stride, residual):
    y = ref_conv_block(x, sd, p + ".conv", 1, 0, False)
    y = ref_conv_block(y, sd, p + ".conv_dw", stride, 1, True)
    y = ref_conv_block(y, sd, p + ".project", 1, 0, False, act=False)
    if p + ".se_module.fc1.weight" in sd:
        q = p + ".se_module"
        s = y.mean(axis=(2, 3), keepdims=True)
        s = ref_bn(ref_conv(s, sd[q + ".fc1.weight"].astype(np.float64), 1, 0, 1), sd, q + ".bn1")
        s = np.maximum(s, 0)
        s = ref_bn(ref_conv(s, sd[q + ".fc2.weight"].astype(np.float64), 1, 0, 1), sd, q + ".bn2")
        y = y * (1 / (1 + np.exp(-s)))
    return x + y if residual else y


def ref_forward(sd, bgr_nhwc):
    """Logits (N,3) float64 for images (N,80,80,3) BGR 0..255."""
    x = np.asarray(bgr_nhwc, np.float64).transpose(0, 3, 1, 2)
    x = ref_conv_block(x, sd, "conv1", 2, 1, False)
    x = ref_conv_block(x, sd, "conv2_dw", 1, 1, True)
    for down, res in (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5")):
        x = ref_depth_wise(x, sd, down, 2, False)
        i = 0
        while f"{res}.model.{i}.conv.conv.weight" in sd:
            x = ref_depth_wise(x, sd, f"{res}.model.{i}", 1, True)
            i += 1
    x = ref_conv_block(x, sd, "conv_6_sep", 1, 0, False)
    x = ref_conv_block(x, sd, "conv_6_dw", 1, 0, True, act=False)
    x = x.reshape(x.shape[0], -1)
    x = x @ sd["linear.weight"].astype(np.float64).T
    x = ref_bn(x, sd, "bn")
    return x @ sd["prob.weight"].astype(np.float64).T


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def state_dicts():
    return {n: mf.load_state_dict(v) for n, v in mf.VARIANTS.items()}


@pytest.fixture(scope="module")
def keras_models(state_dicts):
    return {n: mf.build_keras(mf.VARIANTS[n], sd) for n, sd in state_dicts.items()}


@pytest.fixture(scope="module")
def samples():
    out = {}
    for name, (sha, _, _) in mf.SAMPLES.items():
        p = mf.THIRD_PARTY / "samples" / name
        common.check_sha256(p, sha)
        out[name] = mf.read_bgr(p)
    return out


def sample_crops(samples):
    """Every (sample, variant) crop by the authors' rule, and a few off-centre
    and tighter ones, as float32 [n,80,80,3]."""
    crops = []
    for name, img in samples.items():
        x, y, w, h = mf.RETINAFACE_BOXES[name]
        for v in mf.VARIANTS.values():
            crops.append(mf.crop(img, (x, y, w, h), v.scale))
            crops.append(mf.crop(img, (x + 0.2 * w, y - 0.1 * h, 0.7 * w, 0.7 * h), v.scale))
    return np.stack(crops).astype(np.float32)


# --------------------------------------------------------------------- tests


def test_vendored_files_match_their_checksums():
    for v in mf.VARIANTS.values():
        assert common.sha256_file(mf.weights_path(v)) == v.sha256
    for name, (sha, _, _) in mf.SAMPLES.items():
        assert common.sha256_file(mf.THIRD_PARTY / "samples" / name) == sha
    assert "Apache License" in (mf.THIRD_PARTY / "LICENSE").read_text()
    assert "Minivision" in (common.REPO / "NOTICE").read_text()


def test_state_dict_structure(state_dicts):
    v2, v1se = state_dicts["minifasnet-v2"], state_dicts["minifasnet-v1se"]
    # Widths differ between the two prunings (keep lists "1.8M_" and "1.8M").
    assert v2["conv_4.model.0.conv.conv.weight"].shape == (231, 128, 1, 1)
    assert v1se["conv_4.model.0.conv.conv.weight"].shape == (154, 128, 1, 1)
    assert not any("se_module" in k for k in v2)
    se = sorted({k.split(".se_module")[0] for k in v1se if "se_module" in k})
    assert se == ["conv_3.model.3", "conv_4.model.5", "conv_5.model.1"]
    for n, sd in state_dicts.items():
        stages = mf.check_structure(mf.VARIANTS[n], sd)
        assert sum(isinstance(s, mf.Bottleneck) for s in stages) == 3 + 4 + 6 + 2
        assert all(a.dtype == np.float32 for a in sd.values())


def test_check_structure_rejects_extra_and_missing_keys(state_dicts):
    sd = dict(state_dicts["minifasnet-v2"])
    sd["conv_7.conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match="unused"):
        mf.check_structure(mf.VARIANTS["minifasnet-v2"], sd)
    sd = dict(state_dicts["minifasnet-v2"])
    del sd["conv_3.model.2.project.bn.running_var"]
    with pytest.raises(ValueError, match="missing"):
        mf.check_structure(mf.VARIANTS["minifasnet-v2"], sd)
    with pytest.raises(ValueError, match="SE blocks"):
        mf.check_structure(mf.VARIANTS["minifasnet-v1se"], state_dicts["minifasnet-v2"])


def test_keras_agrees_with_float64_reference(state_dicts, keras_models, samples):
    rng = np.random.default_rng(7)
    x = np.concatenate([sample_crops(samples),
                        rng.uniform(0, 255, (4, 80, 80, 3)).astype(np.float32),
                        np.zeros((1, 80, 80, 3), np.float32)])
    for n, model in keras_models.items():
        got = model(x, training=False).numpy()
        want = ref_forward(state_dicts[n], x)
        diff = np.abs(got - want).max()
        print(f"{n}: {len(x)} inputs, logits max abs diff Keras float32 vs numpy float64 {diff:.2e}, "
              f"|logit| max {np.abs(want).max():.2f}")
        assert diff < LOGIT_TOL
        # Not a vacuous agreement: the crops are classified differently.
        assert len({int(i) for i in want.argmax(axis=1)}) >= 2


def test_published_results_on_the_authors_samples(keras_models, samples):
    """F1 fake 0.73, F2 fake 0.82, T1 real 0.99 (the authors' README; their
    test.py prints the mean of the two models' softmax at the argmax)."""
    for name, (_, label, score) in mf.SAMPLES.items():
        img = samples[name]
        p = np.zeros(3)
        for n, v in mf.VARIANTS.items():
            c = mf.crop(img, mf.RETINAFACE_BOXES[name], v.scale)[None].astype(np.float32)
            p += mf.softmax(keras_models[n](c, training=False).numpy()[0])
        p /= 2
        got = "real" if p.argmax() == mf.REAL_CLASS else "attack"
        print(f"{name}: {got} {p.max():.4f} (published {label} {score})")
        assert got == label
        assert round(float(p.max()), 2) == score


def test_crop_box_follows_the_authors_rule():
    # Fits: enlarged about the centre, truncated.
    assert mf.crop_box(640, 480, (300, 200, 40, 50), 2.7) == (266, 157, 374, 292)
    # Scale capped by the frame: (h-1)/bh = 479/200 < 2.7, so the box is 2.395x.
    x0, y0, x1, y1 = mf.crop_box(640, 480, (300, 200, 100, 200), 2.7)
    assert (y0, y1) == (0, 479) and x1 - x0 in (238, 239, 240)
    # Shifted right, not padded, at the left edge; shifted up at the bottom.
    assert mf.crop_box(640, 480, (0, 440, 40, 50), 2.0) == (0, 379, 80, 479)
    with pytest.raises(ValueError):
        mf.crop_box(640, 480, (0, 0, 0, 10), 2.0)


def test_resize_linear_matches_opencv_values():
    # Identity.
    img = np.arange(80 * 80 * 3, dtype=np.uint32).reshape(80, 80, 3).astype(np.uint8)
    np.testing.assert_array_equal(mf.resize_linear(img, 80, 80), img)
    # 2x shrink samples between pixel pairs: (a+b)/2 rounded the OpenCV way.
    row = np.array([[[0], [10], [20], [31]]], np.uint8).repeat(2, axis=0).repeat(3, axis=2)
    got = mf.resize_linear(row, 2, 1)[0, :, 0]
    assert list(got) == [5, 26]  # (0+10)/2, (20+31)/2 = 25.5 -> 26 (fixed point rounds half up)
    # Enlarging a 1x2 image clamps at the edges and interpolates between.
    two = np.array([[[0, 0, 0], [200, 200, 200]]], np.uint8)
    got = mf.resize_linear(two, 4, 1)[0, :, 0]
    assert list(got) == [0, 50, 150, 200]


# ------------------------------------------------------- the legacy reader


def _legacy_bytes(obj_builder, storages):
    """A legacy torch.save file: obj_builder(pickler_cls) makes the object
    pickle; storages maps key -> (numpy array) in that order."""
    buf = io.BytesIO()
    for x in (torch_pickle.MAGIC, torch_pickle.PROTOCOL,
              {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}):
        pickle.dump(x, buf, protocol=2)
    buf.write(obj_builder())
    pickle.dump(list(storages), buf, protocol=2)
    for a in storages.values():
        buf.write(struct.pack("<q", a.size))
        buf.write(a.tobytes())
    return buf.getvalue()


@pytest.fixture
def fake_torch(monkeypatch):
    """Importable stand-ins for the globals a state dict pickle names, so the
    test can write one with pickle itself (torch is not installed)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*a):  # pragma: no cover - never called, only named
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class FloatStorage:
        pass

    class LongStorage:
        pass

    for c in (FloatStorage, LongStorage):
        c.__module__, c.__qualname__ = "torch", c.__name__
        setattr(torch, c.__name__, c)
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


def test_torch_pickle_reads_strided_tensors(tmp_path, fake_torch):
    torch, utils = fake_torch

    class St:
        def __init__(self, key, cls, n):
            self.key, self.cls, self.n = key, cls, n

    class T:
        def __init__(self, st, off, size, stride):
            self.args = (st, off, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return utils._rebuild_tensor_v2, self.args

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, St):
                return ("storage", obj.cls, obj.key, "cpu", obj.n, None)
            return None

    data = np.arange(12, dtype=np.float32)
    ints = np.array([7], np.int64)
    a, b = St("0", torch.FloatStorage, 12), St("1", torch.LongStorage, 1)
    sd = collections.OrderedDict([
        ("module.w", T(a, 0, (3, 4), (4, 1))),
        ("module.wt", T(a, 0, (4, 3), (1, 4))),  # a transposed view
        ("module.tail", T(a, 8, (2, 2), (2, 1))),
        ("n", T(b, 0, (), ())),
    ])

    def build():
        out = io.BytesIO()
        P(out, protocol=2).dump(sd)
        return out.getvalue()

    path = tmp_path / "sd.pth"
    path.write_bytes(_legacy_bytes(build, {"0": data, "1": ints}))
    got = torch_pickle.load_state_dict(path)
    assert list(got) == ["module.w", "module.wt", "module.tail", "n"]
    np.testing.assert_array_equal(got["module.w"], data.reshape(3, 4))
    np.testing.assert_array_equal(got["module.wt"], data.reshape(3, 4).T)
    np.testing.assert_array_equal(got["module.tail"], [[8, 9], [10, 11]])
    assert got["n"] == 7 and got["n"].dtype == np.int64

    # Truncated storage bytes and trailing garbage are errors.
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(torch_pickle.TorchPickleError, match="truncated"):
        torch_pickle.load_state_dict(path)
    path.write_bytes(raw + b"x")
    with pytest.raises(torch_pickle.TorchPickleError, match="trailing"):
        torch_pickle.load_state_dict(path)


def test_torch_pickle_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, ("true",)

    def build():
        return pickle.dumps({"x": Evil()}, protocol=2)

    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_bytes(build, {}))
    with pytest.raises(torch_pickle.TorchPickleError, match="refusing"):
        torch_pickle.load_state_dict(path)
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(torch_pickle.TorchPickleError, match="magic"):
        torch_pickle.load_state_dict(path)


# ------------------------------------------------------- exported models


def model_dir(name: str) -> pathlib.Path:
    root = pathlib.Path(os.environ.get("FACEGATE_MODELS_DIR") or common.REPO / "build" / "models")
    p = root / name / "saved_model.pb"
    if not p.exists():
        msg = f"{p} missing (run `make models`)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return p.parent


@pytest.mark.parametrize("name", sorted(mf.VARIANTS))
def test_saved_model_matches_keras_and_manifest(name, keras_models, samples):
    import tensorflow as tf

    d = model_dir(name)
    man = json.loads((d / common.MANIFEST_FILE).read_text())
    v = mf.VARIANTS[name]
    assert man["task"] == "pad" and man["name"] == name
    assert man["input"]["pixel_format"] == "BGR" and man["input"]["range"] == [0, 255]
    assert man["pad"]["crop_scale"] == v.scale and man["pad"]["real_class"] == 1
    assert man["provenance"]["sha256"] == v.sha256
    assert man["weights_sha256"] == common.sha256_arrays(keras_models[name].get_weights())
    assert set(man["signatures"]["classify"]["outputs"]) == {"logits", "probabilities"}
    loaded = tf.saved_model.load(str(d))
    x = sample_crops(samples)
    out = loaded.signatures["classify"](images=tf.constant(x))
    want = keras_models[name](x, training=False).numpy()
    np.testing.assert_allclose(out["logits"].numpy(), want, atol=1e-6)
    np.testing.assert_allclose(out["probabilities"].numpy(), mf.softmax(want), atol=1e-6)
