"""VGGFace2 ResNet-50: architecture, preprocessing and the keras-vggface h5 loader.

These tests build the Keras model in memory (no export). The reference
comparison runs the original keras-vggface 0.6 code (from the pinned wheel
``make deps`` caches; never installed) on tf_keras with the same weights.
"""

from __future__ import annotations

import os
import pathlib
import sys
import types
import zipfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import common  # noqa: E402
import vggface_resnet50 as vgg  # noqa: E402

CI = os.environ.get("CI") == "true"


def need(path: pathlib.Path, what: str) -> pathlib.Path:
    """Skips (fails under CI=true) when a build output is missing."""
    if not path.exists():
        msg = f"{what} missing: {path} (run `make deps models`)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def backbone():
    """The backbone with the exporter's deterministic untrained weights."""
    m = vgg.build_backbone()
    vgg.init_random_weights(m)
    return m


@pytest.fixture(scope="module")
def h5_file(backbone, tmp_path_factory):
    """An h5 in the keras-vggface notop layout holding ``backbone``'s weights."""
    p = tmp_path_factory.mktemp("vggface") / "notop.h5"
    vgg.write_vggface_h5(backbone, p)
    return p


def test_layer_names_and_count(backbone):
    convs = [l for l in backbone.layers if l.__class__.__name__ == "Conv2D"]
    bns = [l for l in backbone.layers if l.__class__.__name__ == "BatchNormalization"]
    assert len(convs) == 53 and len(bns) == 53
    assert [l.name for l in convs] == vgg.conv_names()
    assert [l.name for l in bns] == [c + "/bn" for c in vgg.conv_names()]
    assert len(backbone.layers) == 174  # same as keras-vggface RESNET50(include_top=False)
    for name in ["conv2_1_1x1_proj", "conv3_4_1x1_increase", "conv4_6_3x3", "conv5_3_1x1_reduce"]:
        assert backbone.get_layer(name) is not None
    for c in convs:
        assert c.use_bias is False, c.name
    for b in bns:
        assert b.epsilon == pytest.approx(1e-3), b.name
    stem = backbone.get_layer("conv1/7x7_s2")
    assert (stem.filters, stem.kernel_size, stem.strides, stem.padding) == (64, (7, 7), (2, 2), "same")
    pool = [l for l in backbone.layers if l.__class__.__name__ == "MaxPooling2D"]
    assert len(pool) == 1 and pool[0].pool_size == (3, 3) and pool[0].strides == (2, 2)
    # Stage 2's first block keeps the resolution; the other first blocks halve it.
    for stage, stride in [(2, 1), (3, 2), (4, 2), (5, 2)]:
        for n in ("_1x1_reduce", "_1x1_proj"):
            assert backbone.get_layer(f"conv{stage}_1{n}").strides == (stride, stride)
    for stage, blocks, (f1, f2, f3) in vgg.STAGES:
        for b in range(1, blocks + 1):
            p = f"conv{stage}_{b}"
            assert backbone.get_layer(p + "_1x1_reduce").filters == f1
            assert backbone.get_layer(p + "_3x3").kernel_size == (3, 3)
            assert backbone.get_layer(p + "_3x3").filters == f2
            assert backbone.get_layer(p + "_1x1_increase").filters == f3
    assert backbone.get_layer("conv5_3_1x1_increase").output_shape == (None, 7, 7, 2048)
    assert backbone.get_layer("avg_pool").output_shape == (None, 1, 1, 2048)
    assert backbone.output_shape == (None, 1, 1, 2048)


def test_param_count(backbone):
    # keras-vggface RESNET50 notop: ResNet-50 without conv biases.
    assert backbone.count_params() == 23_561_152
    trainable = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    assert trainable == 23_508_032  # the rest are BN moving statistics


def test_flops_match_tensorflow_profiler(backbone):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: backbone(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, 224, 224, 3], tf.float32))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    total = tf.compat.v1.profiler.profile(graph=convert_variables_to_constants_v2(fn).graph,
                                          options=opts).total_float_ops
    f = vgg.conv_flops()
    assert f["conv_macs"] == 3_832_283_136
    assert f["conv_flops"] <= total <= f["conv_flops"] * 1.002, (total, f)


def test_deterministic_untrained_weights(backbone):
    again = vgg.build_backbone()
    vgg.init_random_weights(again)
    assert common.sha256_arrays(vgg.weight_arrays(again)) == common.sha256_arrays(vgg.weight_arrays(backbone))
    other = vgg.build_backbone()
    vgg.init_random_weights(other, seed=vgg.DEFAULT_SEED + 1)
    assert common.sha256_arrays(vgg.weight_arrays(other)) != common.sha256_arrays(vgg.weight_arrays(backbone))


def test_preprocessing_is_in_the_graph(backbone):
    tower = vgg.build_tower(backbone)
    rgb = vgg.reference_images(2)
    manual = rgb[..., ::-1] - np.array([91.4953, 103.8827, 131.0912], np.float32)
    want = backbone(manual, training=False).numpy().reshape(2, -1)
    got = tower(rgb, training=False).numpy()
    assert got.shape == (2, 2048)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # And it is not a no-op: feeding RGB straight into the backbone differs.
    raw = backbone(rgb, training=False).numpy().reshape(2, -1)
    assert np.abs(raw - want).max() > 1e-3 * np.abs(want).max()


def test_h5_loader_maps_every_layer(backbone, h5_file):
    fresh = vgg.build_backbone()
    vgg.init_random_weights(fresh, seed=7)
    report = vgg.load_vggface_h5(fresh, h5_file)
    assert report == {"layers": 106, "weights": 53 + 53 * 4, "skipped": []}
    for a, b in zip(vgg.weight_arrays(fresh), vgg.weight_arrays(backbone)):
        np.testing.assert_array_equal(a, b)
    # The file is a genuine Keras h5: tf_keras's own by-name loader reads it the same way.
    keras_loaded = vgg.build_backbone()
    keras_loaded.load_weights(str(h5_file), by_name=True)
    for a, b in zip(vgg.weight_arrays(keras_loaded), vgg.weight_arrays(backbone)):
        np.testing.assert_array_equal(a, b)


def _assert_untouched(model, before):
    for a, b in zip(vgg.weight_arrays(model), before):
        np.testing.assert_array_equal(a, b)


def test_h5_loader_fails_on_missing_layer_with_its_name(backbone, tmp_path):
    p = tmp_path / "missing.h5"
    vgg.write_vggface_h5(backbone, p, drop=["conv4_3_3x3/bn"])
    target = vgg.build_backbone()
    before = vgg.weight_arrays(target)
    with pytest.raises(vgg.WeightsError, match=r"layer 'conv4_3_3x3/bn' is missing"):
        vgg.load_vggface_h5(target, p)
    _assert_untouched(target, before)  # nothing assigned from a file that does not fit


def test_h5_loader_fails_on_misshaped_layer_with_its_name(backbone, tmp_path):
    p = tmp_path / "misshaped.h5"
    vgg.write_vggface_h5(backbone, p, reshape={"conv3_2_1x1_reduce": (1, 1, 512, 64)})
    target = vgg.build_backbone()
    before = vgg.weight_arrays(target)
    with pytest.raises(vgg.WeightsError, match=r"layer 'conv3_2_1x1_reduce': weight 'kernel' has shape "
                                               r"\(1, 1, 512, 64\), want \(1, 1, 512, 128\)"):
        vgg.load_vggface_h5(target, p)
    _assert_untouched(target, before)


def test_h5_loader_rejects_foreign_layers_and_skips_classifier(backbone, tmp_path):
    import h5py

    p = tmp_path / "extra.h5"
    vgg.write_vggface_h5(backbone, p)
    with h5py.File(p, "a") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        for extra, shape in [("classifier", (2048, 8631)), ("fc_extra", (4, 4))]:
            g = f.create_group(extra)
            g.create_dataset(f"{extra}/kernel:0", data=np.zeros(shape, np.float32))
            g.attrs["weight_names"] = np.array([f"{extra}/kernel:0".encode()])
        f.attrs["layer_names"] = np.array([n.encode() for n in names + ["classifier"]])
    target = vgg.build_backbone()
    assert vgg.load_vggface_h5(target, p)["skipped"] == ["classifier"]
    with h5py.File(p, "a") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names + ["fc_extra"]])
    with pytest.raises(vgg.WeightsError, match=r"layer 'fc_extra' holds weights but is not in"):
        vgg.load_vggface_h5(target, p)


def test_h5_loader_rejects_non_keras_files(tmp_path):
    import h5py

    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(vgg.WeightsError, match="layer_names"):
        vgg.load_vggface_h5(vgg.build_backbone(), p)
    q = tmp_path / "text.h5"
    q.write_text("not hdf5")
    with pytest.raises(vgg.WeightsError, match="cannot open"):
        vgg.load_vggface_h5(vgg.build_backbone(), q)


# ---- reference: the original keras-vggface 0.6 code ------------------------------------------

_REF_HEADER = '''
import warnings
from tf_keras.layers import Flatten, Dense, Input, GlobalAveragePooling2D, \\
    GlobalMaxPooling2D, Activation, Conv2D, MaxPooling2D, BatchNormalization, \\
    AveragePooling2D, Reshape, Permute, multiply
from tf_keras import backend as K
from tf_keras import layers
from tf_keras.models import Model
from tf_keras.utils import get_source_inputs


def _obtain_input_shape(input_shape, default_size, min_size, data_format, require_flatten, weights=None):
    return input_shape or (default_size, default_size, 3)


def get_file(*a, **k):
    raise RuntimeError("facegate: keras-vggface must not download anything")
'''


def _keras_vggface_reference():
    """keras_vggface.models and .utils from the pinned wheel, run on tf_keras.

    Only the import lines are replaced (Keras 2.2 paths -> tf_keras); the
    model code is executed as published. Nothing is installed.
    """
    wheel = need(common.cache_dir() / "pypi" / vgg.KERAS_VGGFACE_WHEEL, "keras-vggface 0.6 wheel")
    common.check_sha256(wheel, vgg.KERAS_VGGFACE_WHEEL_SHA256)
    with zipfile.ZipFile(wheel) as z:
        models_src = z.read("keras_vggface/models.py").decode()
        utils_src = z.read("keras_vggface/utils.py").decode()
    utils = types.ModuleType("keras_vggface_utils_ref")
    body = utils_src[utils_src.index("V1_LABELS_PATH"):]
    exec(compile(_REF_HEADER + "import numpy as np\n" + body, "keras_vggface/utils.py", "exec"), utils.__dict__)
    models = types.ModuleType("keras_vggface_models_ref")
    models.utils = utils
    body = models_src[models_src.index("def VGG16("):]
    assert "import " not in body.split("def RESNET50(")[1].split("def senet")[0].lower()
    exec(compile(_REF_HEADER + body, "keras_vggface/models.py", "exec"), models.__dict__)
    return models, utils


def test_matches_keras_vggface_reference(backbone, h5_file):
    models, utils = _keras_vggface_reference()
    ref = models.RESNET50(include_top=False, weights=None, input_shape=(224, 224, 3))
    ours = [(l.name, [tuple(w.shape) for w in l.weights]) for l in backbone.layers if l.weights]
    theirs = [(l.name, [tuple(w.shape) for w in l.weights]) for l in ref.layers if l.weights]
    assert ours == theirs
    assert len(ref.layers) == len(backbone.layers)
    assert ref.count_params() == backbone.count_params()
    for a, b in zip(ref.layers, backbone.layers):
        assert a.__class__ is b.__class__
        ca, cb = a.get_config(), b.get_config()
        for c in (ca, cb):
            c.pop("name", None)
        assert ca == cb, (a.name, b.name)

    ref.load_weights(str(h5_file), by_name=True)
    rgb = vgg.reference_images(2)
    want = ref(utils.preprocess_input(rgb, version=2), training=False).numpy().reshape(2, -1)
    got = vgg.build_tower(backbone)(rgb, training=False).numpy()
    scale = np.abs(want).max()
    err = np.abs(got - want).max() / scale
    print(f"keras-vggface reference agreement: max |diff| / max |ref| = {err:.3g}")
    assert err < 1e-5


def test_export_with_weights_marks_pretrained(backbone, h5_file, tmp_path, monkeypatch):
    """--weights: the manifest pins the loaded weights and the file (save itself is stubbed: ~40 s)."""
    saved = {}

    def fake_save(module, out_dir, signatures, manifest):
        saved.update(module=module, out_dir=out_dir, signatures=signatures, manifest=manifest)
        return out_dir

    monkeypatch.setattr(common, "save_model", fake_save)
    vgg.export(tmp_path, str(h5_file))
    m = saved["manifest"]
    assert m["weights"] == "pretrained"
    assert m["weights_sha256"] == common.sha256_arrays(vgg.weight_arrays(backbone))
    assert m["provenance"]["sha256"] == common.sha256_file(h5_file)
    assert m["provenance"]["file"] == "notop.h5"
    assert "non-commercial" in m["license"]
    assert "106 layers / 265 arrays" in m["provenance"]["notes"]
    assert set(saved["signatures"]) == {"embed", "verify", "serving_default"}
    assert saved["out_dir"] == tmp_path / vgg.NAME
    assert float(saved["module"].head_w.numpy()[0, 0]) == vgg.HEAD_WEIGHT


def test_cli_refuses_bad_weights_naming_the_layer(backbone, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    vgg.write_vggface_h5(backbone, bad, drop=["conv5_3_1x1_increase"])
    out = tmp_path / "models"
    assert vgg.main(["export", "--out", str(out), "--weights", str(bad)]) == 1
    assert "layer 'conv5_3_1x1_increase' is missing" in capsys.readouterr().err
    assert not (out / vgg.NAME).exists()
