"""models/dlib_dat.py: dlib's serialization primitives, a synthetic network
and the real dlib_face_recognition_resnet_model_v1.dat.

The real-file tests use the .dat that `make deps` extracts into
``$FACEGATE_CACHE/dlib`` (``$FACEGATE_DLIB_DAT``); outside CI a missing file
skips with one line, under CI=true it fails.
"""

from __future__ import annotations

import math
import os
import pathlib
import struct

import numpy as np
import pytest

import common
import dlib_dat
import dlib_resnet

CI = os.environ.get("CI") == "true"


# --- a minimal dlib serializer, the inverse of what the reader expects ---

def enc_int(v: int) -> bytes:
    mag = abs(v)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def enc_float(mantissa: int, exponent: int) -> bytes:
    return enc_int(mantissa) + enc_int(exponent)


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def enc_tensor(a: np.ndarray) -> bytes:
    a = np.asarray(a, np.float32)
    shape = a.shape + (1,) * (4 - a.ndim)
    return enc_int(2) + b"".join(enc_int(d) for d in shape) + a.astype("<f4").tobytes()


def enc_alias(shape) -> bytes:
    return enc_int(1) + b"".join(enc_int(d) for d in shape)


EMPTY = enc_tensor(np.zeros((0, 0, 0, 0)))
STATE = b"110" + EMPTY * 3
ONE = enc_float(16, -4)
ZERO = enc_float(0, 0)


def con_bytes(w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> bytes:
    nf, k, nr, nc = w.shape
    params = np.concatenate([w.reshape(-1), b]).reshape(-1, 1, 1, 1)
    return (enc_str("con_4") + enc_tensor(params) + enc_int(nf) + enc_int(nr) + enc_int(nc)
            + enc_int(stride) * 2 + enc_int(pad) * 2 + enc_alias(w.shape) + enc_alias((1, nf, 1, 1))
            + ONE * 3 + ZERO)


def tiny_net(w, b, fcw, trailing=b"") -> bytes:
    """loss_metric<fc_no_bias<tag1<con<input_rgb_image_sized<150>>>>>."""
    head = (enc_int(1) + enc_str("loss_metric_2") + enc_float(10737418, -28) + enc_float(10066330, -24)
            + enc_int(2) + enc_int(1) + enc_int(3))
    inp = (enc_str("input_rgb_image_sized") + enc_float(16093282, -17) + enc_float(15335555, -17)
           + enc_float(13670547, -17) + enc_int(150) + enc_int(150))
    con = con_bytes(w, b, 2, 0) + STATE + enc_int(1)
    nin, nout = fcw.shape
    fc = (enc_str("fc_2") + enc_int(nout) + enc_int(nin) + enc_tensor(fcw.reshape(nin, nout, 1, 1))
          + enc_alias((nin, nout, 1, 1)) + enc_alias((1, nout, 1, 1)) + enc_int(1) + ONE * 3 + ZERO
          + STATE)
    return head + inp + con + fc + trailing


def test_integers():
    for v in (0, 1, 2, 17, 150, 255, 256, 4736, 2**40, -1, -17, -(2**31)):
        assert dlib_dat.Reader(enc_int(v)).int() == v
    # Bytes as they appear in dlib's files.
    assert dlib_dat.Reader(b"\x01\x02").int() == 2
    assert dlib_dat.Reader(b"\x02\x80\x12").int() == 4736
    assert dlib_dat.Reader(b"\x81\x11").int() == -17


def test_floats():
    # dlib's loss_metric distance threshold as stored in the model file.
    r = dlib_dat.Reader(b"\x03\x9a\x99\x99\x81\x18")
    assert r.float() == pytest.approx(0.6, abs=1e-7)
    assert dlib_dat.Reader(enc_float(16, -4)).float() == 1.0
    assert dlib_dat.Reader(enc_float(-3, 1)).float() == -6.0
    assert dlib_dat.Reader(enc_float(0, 32000)).float() == math.inf
    assert math.isnan(dlib_dat.Reader(enc_float(0, 32002)).float())


def test_strings_bools_tensors():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) - 7.5
    r = dlib_dat.Reader(enc_str("affine_") + b"10" + enc_tensor(a) + enc_alias((1, 32, 1, 1)))
    assert r.str() == "affine_"
    assert r.bool() is True and r.bool() is False
    got = r.tensor()
    assert got.dtype == np.float32 and got.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(got, a)
    assert r.alias_tensor() == (1, 32, 1, 1)
    assert r.pos == len(r.data)


@pytest.mark.parametrize("data, message", [
    (b"\x02\x01", "unexpected end"),      # 2-byte integer, 1 byte there
    (b"\x30\x01", "bad integer header"),  # bits the format never sets
    (b"x", "bad bool"),
])
def test_primitive_errors(data, message):
    r = dlib_dat.Reader(data)
    with pytest.raises(dlib_dat.DatError, match=message):
        r.bool() if data == b"x" else r.int()


def test_tensor_version_checked():
    with pytest.raises(dlib_dat.DatError, match="version 1, want 2"):
        dlib_dat.Reader(enc_int(1) + enc_int(0) * 4).tensor()


def test_synthetic_network():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 7, 7)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    fcw = rng.normal(size=(4, 5)).astype(np.float32)
    net = dlib_dat.read_net(tiny_net(w, b, fcw))
    assert net.loss["distance_threshold"] == pytest.approx(0.6, abs=1e-7)
    assert net.loss["margin"] == pytest.approx(0.04, abs=1e-7)
    assert net.wrapper_versions == [2, 1, 3]
    assert [layer.kind for layer in net.layers] == ["input_rgb_image_sized", "con", "fc"]
    inp, con, fc = net.layers
    assert inp.attrs["avg_red"] == pytest.approx(122.782, abs=1e-4)
    assert inp.attrs["avg_green"] == pytest.approx(117.001, abs=1e-4)
    assert inp.attrs["avg_blue"] == pytest.approx(104.298, abs=1e-4)
    assert con.attrs["stride"] == (2, 2) and con.attrs["padding"] == (0, 0)
    np.testing.assert_array_equal(con.arrays["filters"], w)
    np.testing.assert_array_equal(con.arrays["biases"], b)
    assert fc.attrs["bias"] is False
    np.testing.assert_array_equal(fc.arrays["weights"], fcw)
    assert net.num_params() == w.size + b.size + fcw.size


def test_synthetic_network_rejects_damage():
    w, b, fcw = np.zeros((2, 3, 7, 7)), np.zeros(2), np.zeros((2, 3))
    good = tiny_net(w, b, fcw)
    with pytest.raises(dlib_dat.DatError, match="trailing"):
        dlib_dat.read_net(good + b"\x00")
    with pytest.raises(dlib_dat.DatError, match="unexpected end"):
        dlib_dat.read_net(good[:-40])
    bad = good.replace(b"fc_2", b"fc_9")
    with pytest.raises(dlib_dat.DatError, match="unsupported layer type 'fc_9'"):
        dlib_dat.read_net(bad)
    with pytest.raises(dlib_dat.DatError, match="unsupported loss"):
        dlib_dat.read_net(good.replace(b"loss_metric_2", b"loss_mmod_2xx"))


# --- the real file ---

def dat_path() -> pathlib.Path:
    p = pathlib.Path(os.environ.get("FACEGATE_DLIB_DAT")
                     or common.cache_dir() / "dlib" / "dlib_face_recognition_resnet_model_v1.dat")
    if not p.exists():
        msg = f"{p} missing (run `make deps`)"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture(scope="module")
def real_net():
    return dlib_resnet.load_dat(dat_path())


def test_real_file_structure(real_net):
    net = real_net
    assert net.num_params() == 5_614_592
    assert {k: net.count(k) for k in dlib_resnet.EXPECTED_COUNTS} == dlib_resnet.EXPECTED_COUNTS
    # 107 add_layer wrappers + the one over the input; 22 tag/skip layers
    # (10 residual blocks x tag1, 4 down blocks x tag1+tag2+skip1).
    assert net.wrapper_versions.count(2) == 107
    assert net.wrapper_versions.count(1) == 22
    assert net.wrapper_versions[-1] == 3
    assert net.loss["distance_threshold"] == pytest.approx(0.6, abs=1e-6)
    inp = net.layers[0]
    assert (inp.attrs["nr"], inp.attrs["nc"]) == (150, 150)
    assert [inp.attrs[k] for k in ("avg_red", "avg_green", "avg_blue")] == pytest.approx(
        [122.782, 117.001, 104.298], abs=1e-4)


def test_real_file_conv_shapes(real_net):
    convs = [layer for layer in real_net.layers if layer.kind == "con"]
    assert convs[0].arrays["filters"].shape == (32, 3, 7, 7)
    assert convs[0].attrs["stride"] == (2, 2) and convs[0].attrs["padding"] == (0, 0)
    widths = [c.attrs["num_filters"] for c in convs]
    assert widths == [32] * 7 + [64] * 8 + [128] * 6 + [256] * 8
    strided = [i for i, c in enumerate(convs) if c.attrs["stride"] == (2, 2)]
    assert strided == [0, 7, 15, 21, 27]  # stem + the 4 down blocks' first conv
    for c in convs[1:]:
        assert c.arrays["filters"].shape[2:] == (3, 3)
        want = (0, 0) if c.attrs["stride"] == (2, 2) else (1, 1)
        assert c.attrs["padding"] == want
    fc = real_net.layers[-1]
    assert fc.kind == "fc" and fc.arrays["weights"].shape == (256, 128)
    for layer in real_net.layers:
        for a in layer.arrays.values():
            assert np.isfinite(a).all()


def test_real_file_hash_pinned(tmp_path):
    p = dat_path()
    bad = tmp_path / "tampered.dat"
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="sha256"):
        dlib_resnet.load_dat(bad)
    # Parsing ignores the hash: one flipped float bit still parses, so the
    # sha256 check is what pins the weights.
    assert dlib_resnet.load_dat(bad, check_hash=False).num_params() == 5_614_592
    assert struct.calcsize("<f") == 4
