"""Unit tests of models/tfjs_graph.py on small synthetic tfjs graph models.

Each test writes a model.json + .bin the way the tfjs converter does
(Const values in quantised weight shards, fused ops with base64 attrs) and
checks the interpreted graph against the same computation written directly
with TensorFlow ops on independently dequantised weights.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import tfjs_graph


def _s(v: str) -> dict:
    return {"s": base64.b64encode(v.encode()).decode()}


def _ints(v) -> dict:
    return {"list": {"i": [str(i) for i in v]}}


def _fused_ops(*ops) -> dict:
    return {"list": {"s": [base64.b64encode(o.encode()).decode() for o in ops]}}


class _Builder:
    """Collects nodes and weights and writes a tfjs graph model."""

    def __init__(self):
        self.nodes = []
        self.specs = []
        self.data = b""

    def const(self, name, value, quant=None):
        value = np.asarray(value)
        dtype = "int32" if value.dtype.kind == "i" else "float32"
        spec = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if quant == "float16":
            self.data += value.astype("<f2").tobytes()
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        elif quant in ("uint8", "uint16"):
            lo, hi = float(value.min()), float(value.max())
            levels = 255 if quant == "uint8" else 65535
            scale = (hi - lo) / levels
            q = np.round((value - lo) / scale).astype(quant)
            self.data += q.astype("<" + q.dtype.str[1:]).tobytes()
            spec["quantization"] = {"dtype": quant, "scale": scale, "min": lo, "original_dtype": dtype}
        else:
            self.data += value.astype("<i4" if dtype == "int32" else "<f4").tobytes()
        self.specs.append(spec)
        self.nodes.append({"name": name, "op": "Const", "attr": {
            "dtype": {"type": "DT_INT32" if dtype == "int32" else "DT_FLOAT"},
            "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {}}}}})

    def node(self, name, op, inputs, **attr):
        self.nodes.append({"name": name, "op": op, "input": list(inputs), "attr": attr})

    def write(self, d, output):
        (d / "w.bin").write_bytes(self.data)
        model = {
            "format": "graph-model", "generatedBy": "test", "convertedBy": "test",
            "signature": {"inputs": {"x": {"name": "x:0"}}, "outputs": {"y": {"name": f"{output}:0"}}},
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
            "weightsManifest": [{"paths": ["w.bin"], "weights": self.specs}],
        }
        (d / "model.json").write_text(json.dumps(model))
        return d / "model.json"


def _run(path, x, variables=False):
    import tensorflow as tf

    g = tfjs_graph.load(path)

    class M(tf.Module):
        pass

    m = M()
    fn = tfjs_graph.GraphFunction(g, tfjs_graph.make_constants(g, m, variables))
    out = tf.function(lambda t: fn({"x": t}, [g.outputs["y"]])[g.outputs["y"]])(tf.constant(x))
    return g, out.numpy()


def test_dequantize_matches_tfjs_rules():
    raw8 = np.array([0, 1, 255], np.uint8)
    got = tfjs_graph.dequantize(raw8, {"dtype": "uint8", "scale": 0.5, "min": -1.0}, "float32")
    np.testing.assert_array_equal(got, np.array([-1.0, -0.5, 126.5], np.float32))
    assert got.dtype == np.float32
    raw16 = np.array([0, 3, 65535], np.uint16)
    got = tfjs_graph.dequantize(raw16, {"dtype": "uint16", "scale": 1.0, "min": -2.0}, "int32")
    np.testing.assert_array_equal(got, np.array([-2, 1, 65533], np.int32))
    half = np.array([0.5, -2.25, 1e-3], np.float16)
    got = tfjs_graph.dequantize(half, {"dtype": "float16"}, "float32")
    np.testing.assert_array_equal(got, half.astype(np.float32))
    with pytest.raises(tfjs_graph.UnsupportedOp):
        tfjs_graph.dequantize(raw8, {"dtype": "int4"}, "float32")


@pytest.mark.parametrize("variables", [False, True])
def test_fused_ops_split_into_standard_ops(tmp_path, variables):
    """_FusedConv2D(BiasAdd,Prelu) -> FusedDepthwise(BiasAdd,Relu6) -> MaxPool ->
    ResizeBilinear -> DepthToSpace -> dynamic Reshape -> ConcatV2, against tf.nn."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.5, (3, 3, 3, 8)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    alpha = rng.uniform(0.05, 0.3, 8).astype(np.float32)
    w2 = rng.normal(0, 0.5, (3, 3, 8, 1)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 8).astype(np.float32)

    b = _Builder()
    b.node("x", "Placeholder", [], dtype={"type": "DT_FLOAT"})
    b.const("w1", w1, "uint8")
    b.const("b1", b1, "float16")
    b.const("alpha", alpha)
    b.const("w2", w2, "uint16")
    b.const("b2", b2, "float16")
    b.const("size", np.array([6, 6], np.int32))
    b.const("stack", np.array([0], np.int32))
    b.const("stack_1", np.array([1], np.int32))
    b.const("minus1", np.array(-1, np.int32))
    b.const("eight", np.array(8, np.int32))
    b.const("axis", np.array(1, np.int32))
    b.node("conv", "_FusedConv2D", ["x", "w1", "b1", "alpha"], fused_ops=_fused_ops("BiasAdd", "Prelu"),
           num_args={"i": "2"}, strides=_ints([1, 1, 1, 1]), padding=_s("SAME"),
           data_format=_s("NHWC"), dilations=_ints([1, 1, 1, 1]))
    b.node("dw", "FusedDepthwiseConv2dNative", ["conv", "w2", "b2"], fused_ops=_fused_ops("BiasAdd", "Relu6"),
           num_args={"i": "1"}, strides=_ints([1, 2, 2, 1]), padding=_s("EXPLICIT"),
           explicit_paddings=_ints([0, 0, 1, 1, 1, 1, 0, 0]), data_format=_s("NHWC"),
           dilations=_ints([1, 1, 1, 1]))
    b.node("pool", "MaxPool", ["dw"], ksize=_ints([1, 2, 2, 1]), strides=_ints([1, 2, 2, 1]),
           padding=_s("VALID"), data_format=_s("NHWC"))
    b.node("up", "ResizeBilinear", ["pool", "size"], half_pixel_centers={"b": True}, align_corners={"b": False})
    b.node("d2s", "DepthToSpace", ["up"], block_size={"i": "2"}, data_format=_s("NHWC"))
    b.node("shape", "Shape", ["d2s"], out_type={"type": "DT_INT32"})
    b.node("batch", "StridedSlice", ["shape", "stack", "stack_1", "stack_1"], shrink_axis_mask={"i": "1"})
    b.node("newshape", "Pack", ["batch", "minus1", "eight"], N={"i": "3"}, axis={"i": "0"})
    b.node("flat", "Reshape", ["d2s", "newshape"])
    b.node("both", "ConcatV2", ["flat", "flat", "axis"], N={"i": "2"})
    b.node("y", "Identity", ["both"])
    path = b.write(tmp_path, "y")

    x = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    g, got = _run(path, x, variables)

    # Independent dequantisation and the unfused computation.
    def deq(v, levels):
        lo, hi = float(v.min()), float(v.max())
        scale = (hi - lo) / levels
        return (np.round((v - lo) / scale).astype(np.float32) * np.float32(scale) + np.float32(lo))
    w1q, w2q = deq(w1, 255), deq(w2, 65535)
    b1q, b2q = b1.astype(np.float16).astype(np.float32), b2.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(g.weights["w1"], w1q, rtol=0, atol=1e-6)
    np.testing.assert_allclose(g.weights["w2"], w2q, rtol=0, atol=1e-6)
    t = tf.nn.conv2d(x, w1q, 1, "SAME") + b1q
    t = tf.maximum(t, 0) + alpha * tf.minimum(t, 0)
    t = tf.nn.depthwise_conv2d(tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]]), w2q, [1, 2, 2, 1], "VALID") + b2q
    t = tf.nn.relu6(t)
    t = tf.nn.max_pool2d(t, 2, 2, "VALID")
    t = tf.compat.v1.image.resize_bilinear(t, [6, 6], half_pixel_centers=True)
    t = tf.nn.depth_to_space(t, 2)
    t = tf.reshape(t, [2, -1, 8])
    want = tf.concat([t, t], axis=1).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.abs(want).max() > 0.1  # the check is not vacuous


def test_unsupported_op_is_named(tmp_path):
    b = _Builder()
    b.node("x", "Placeholder", [], dtype={"type": "DT_FLOAT"})
    b.node("y", "Erfinv", ["x"])
    path = b.write(tmp_path, "y")
    g = tfjs_graph.load(path)
    with pytest.raises(tfjs_graph.UnsupportedOp, match="Erfinv"):
        tfjs_graph.GraphFunction(g, {})


def test_short_weight_shard_is_rejected(tmp_path):
    b = _Builder()
    b.node("x", "Placeholder", [], dtype={"type": "DT_FLOAT"})
    b.const("w", np.ones((4, 4), np.float32))
    b.node("y", "Mul", ["x", "w"])
    path = b.write(tmp_path, "y")
    (tmp_path / "w.bin").write_bytes(b.data[:-4])
    with pytest.raises(ValueError, match="shard data ends"):
        tfjs_graph.load(path)
