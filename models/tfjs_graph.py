"""Converts a TensorFlow.js graph model (``model.json`` + ``.bin`` shards) to TF ops.

A tfjs graph model is a GraphDef in JSON form (``modelTopology``) whose Const
nodes carry no values: the values live in the binary weight shards listed by
``weightsManifest``, possibly quantised (float16, uint8 or uint16). The graph
may also use the fused ops Grappler and the tfjs converter produce
(``_FusedConv2D``, ``FusedDepthwiseConv2dNative``, ``_FusedMatMul`` with
``fused_ops`` such as ``BiasAdd``/``Relu``/``Prelu``), which the TF C API that
facegate runs cannot load from a SavedModel.

This module

* reads the model and dequantises its weights exactly as tfjs does
  (:func:`load`), and
* interprets the graph with standard TensorFlow ops (:class:`GraphFunction`):
  every fused op is split into its parts (Conv2D + BiasAdd + activation,
  DepthwiseConv2dNative + BiasAdd + activation, Prelu as
  ``max(x,0) + alpha*min(x,0)``), so a ``tf.function`` calling it traces a
  graph of standard ops only that saves as an ordinary SavedModel.

Only NHWC graphs are supported, and only the ops listed in ``_OPS``; anything
else raises :class:`UnsupportedOp` naming the node, so a new model fails at
export rather than producing wrong numbers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
from typing import Any, Callable

import numpy as np

# tfjs dtype names -> numpy dtypes of the stored (possibly quantised) bytes.
_STORED_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
}

_DT = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_BOOL": "bool", "DT_INT64": "int64"}


class UnsupportedOp(ValueError):
    """The graph uses an op or attribute this converter does not implement."""


@dataclasses.dataclass
class Node:
    """One GraphDef node in tfjs JSON form."""

    name: str
    op: str
    inputs: list[str]
    attr: dict[str, Any]

    def s(self, key: str, default: str | None = None) -> str:
        """A string attribute (base64 in the JSON)."""
        a = self.attr.get(key)
        if a is None or "s" not in a:
            if default is None:
                raise UnsupportedOp(f"node {self.name} ({self.op}): missing string attr {key!r}")
            return default
        return base64.b64decode(a["s"]).decode()

    def ints(self, key: str, default: list[int] | None = None) -> list[int]:
        """A list-of-int attribute."""
        a = self.attr.get(key)
        if a is None:
            if default is None:
                raise UnsupportedOp(f"node {self.name} ({self.op}): missing int-list attr {key!r}")
            return list(default)
        return [int(v) for v in a.get("list", {}).get("i", [])]

    def strs(self, key: str) -> list[str]:
        """A list-of-string attribute (base64 in the JSON)."""
        a = self.attr.get(key, {})
        return [base64.b64decode(v).decode() for v in a.get("list", {}).get("s", [])]

    def i(self, key: str, default: int | None = None) -> int:
        """An int attribute."""
        a = self.attr.get(key)
        if a is None or "i" not in a:
            if default is None:
                raise UnsupportedOp(f"node {self.name} ({self.op}): missing int attr {key!r}")
            return default
        return int(a["i"])

    def f(self, key: str, default: float | None = None) -> float:
        """A float attribute."""
        a = self.attr.get(key)
        if a is None or "f" not in a:
            if default is None:
                raise UnsupportedOp(f"node {self.name} ({self.op}): missing float attr {key!r}")
            return default
        return float(a["f"])

    def b(self, key: str, default: bool = False) -> bool:
        """A bool attribute."""
        a = self.attr.get(key)
        if a is None or "b" not in a:
            return default
        return bool(a["b"])


@dataclasses.dataclass
class TfjsGraph:
    """A parsed tfjs graph model with its dequantised weights."""

    nodes: list[Node]
    weights: dict[str, np.ndarray]  # Const node name -> value (float32 after dequantisation)
    inputs: dict[str, str]          # signature key -> node name
    outputs: dict[str, str]         # signature key -> node name
    meta: dict[str, Any]            # format, generatedBy, convertedBy, signature

    def weight_list(self) -> list[np.ndarray]:
        """Weights in weightsManifest order (what ``weights_sha256`` is taken over)."""
        return list(self.weights.values())


def _tensor_name(ref: str) -> tuple[str, int]:
    """Splits a GraphDef input reference ``name:idx`` (or ``^ctrl``)."""
    if ref.startswith("^"):
        return ref[1:], -1
    name, _, idx = ref.partition(":")
    return name, int(idx) if idx else 0


def dequantize(raw: np.ndarray, quant: dict[str, Any] | None, dtype: str) -> np.ndarray:
    """Turns stored values into the weight's real dtype, the way tfjs-core does.

    ``float16`` quantisation is a plain widening; ``uint8``/``uint16`` use
    ``v * scale + min`` in float32 (``original_dtype`` float32) or rounded to
    int32 for int weights.
    """
    if quant is None:
        return raw
    qd = quant["dtype"]
    if qd == "float16":
        return raw.astype(np.float32)
    if qd in ("uint8", "uint16"):
        scale = np.float32(quant["scale"])
        vmin = np.float32(quant["min"])
        v = raw.astype(np.float32) * scale + vmin
        if dtype == "int32":
            return np.round(v).astype(np.int32)
        return v.astype(np.float32)
    raise UnsupportedOp(f"weight quantisation dtype {qd!r} is not supported")


def read_weights(manifest: list[dict[str, Any]], base: pathlib.Path) -> dict[str, np.ndarray]:
    """Reads every weight group's shards and slices out its weights in order."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join((base / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            n = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            stored = quant["dtype"] if quant else w["dtype"]
            if stored not in _STORED_DTYPES:
                raise UnsupportedOp(f"weight {w['name']}: dtype {stored!r} is not supported")
            sdt = np.dtype(_STORED_DTYPES[stored]).newbyteorder("<")
            size = n * sdt.itemsize
            if off + size > len(buf):
                raise ValueError(f"weight {w['name']}: shard data ends at byte {len(buf)}, "
                                 f"need {off + size}")
            raw = np.frombuffer(buf, dtype=sdt, count=n, offset=off).reshape(shape)
            off += size
            # np.array, not ascontiguousarray: the latter turns scalars into shape [1].
            out[w["name"]] = np.array(dequantize(raw, quant, w["dtype"]), order="C", copy=True)
        if off != len(buf):
            raise ValueError(f"weight group {group['paths']}: {len(buf) - off} unread bytes")
    return out


def load(model_json: str | pathlib.Path) -> TfjsGraph:
    """Parses a tfjs graph model and reads its weights from the shards beside it."""
    path = pathlib.Path(model_json)
    m = json.loads(path.read_text())
    if m.get("format") != "graph-model":
        raise UnsupportedOp(f"{path}: format {m.get('format')!r}, want 'graph-model'")
    topo = m["modelTopology"]
    if topo.get("library", {}).get("function"):
        raise UnsupportedOp(f"{path}: graph functions (control flow) are not supported")
    nodes = [Node(n["name"], n["op"], list(n.get("input", [])), n.get("attr", {}))
             for n in topo["node"]]
    weights = read_weights(m["weightsManifest"], path.parent)
    sig = m.get("signature", {})
    inputs = {k: _tensor_name(v["name"])[0] for k, v in sig.get("inputs", {}).items()}
    outputs = {k: _tensor_name(v["name"])[0] for k, v in sig.get("outputs", {}).items()}
    if not inputs:
        inputs = {n.name: n.name for n in nodes if n.op == "Placeholder"}
    meta = {k: m.get(k) for k in ("format", "generatedBy", "convertedBy", "signature")}
    for n in nodes:
        if n.op == "Const" and n.name not in weights:
            raise ValueError(f"{path}: Const {n.name} has no value in the weights manifest")
    return TfjsGraph(nodes, weights, inputs, outputs, meta)


def _prelu(tf, x, alpha):
    """PReLU with standard ops: max(x,0) + alpha*min(x,0)."""
    return tf.nn.relu(x) + alpha * tf.minimum(x, 0.0)


def _activation(tf, name: str, node: Node, x, extra):
    """Applies one ``fused_ops`` activation (after BiasAdd)."""
    if name == "Relu":
        return tf.nn.relu(x)
    if name == "Relu6":
        return tf.nn.relu6(x)
    if name == "Elu":
        return tf.nn.elu(x)
    if name == "Selu":
        return tf.nn.selu(x)
    if name == "Sigmoid":
        return tf.sigmoid(x)
    if name == "Tanh":
        return tf.tanh(x)
    if name == "LeakyRelu":
        return tf.nn.leaky_relu(x, alpha=node.f("leakyrelu_alpha", 0.2))
    if name == "Prelu":
        if not extra:
            raise UnsupportedOp(f"node {node.name}: Prelu without an alpha input")
        return _prelu(tf, x, extra.pop(0))
    raise UnsupportedOp(f"node {node.name} ({node.op}): fused activation {name!r}")


def _padding(node: Node) -> tuple[str, list[int]]:
    pad = node.s("padding")
    explicit = node.ints("explicit_paddings", []) if pad == "EXPLICIT" else []
    return pad, explicit


def _check_nhwc(node: Node) -> None:
    fmt = node.s("data_format", "NHWC")
    if fmt != "NHWC":
        raise UnsupportedOp(f"node {node.name} ({node.op}): data_format {fmt}, only NHWC")


def _fused(tf, node: Node, args, conv):
    """Splits a fused conv/matmul into conv + BiasAdd + activation."""
    ops = node.strs("fused_ops")
    num_args = node.i("num_args", 0)
    x = conv(args[0], args[1])
    extra = list(args[2:])
    if len(extra) < num_args:
        raise UnsupportedOp(f"node {node.name}: {len(extra)} extra inputs, num_args {num_args}")
    if not ops:
        return x
    first, rest = ops[0], ops[1:]
    if first == "BiasAdd":
        x = tf.nn.bias_add(x, extra.pop(0))
    elif first in ("FusedBatchNorm", "FusedBatchNormV3"):
        raise UnsupportedOp(f"node {node.name}: fused batch norm is not supported")
    else:
        rest = ops  # activation only, no bias
    for act in rest:
        x = _activation(tf, act, node, x, extra)
    return x


def _pad_explicit(tf, node: Node, x, pad: str, explicit: list[int]):
    """EXPLICIT padding as a zero Pad before a VALID convolution (the same
    values). TF 2.18's oneDNN depthwise kernel aborts the whole process on
    explicit paddings on some x86 CPUs (seen on an AVX-512 Xeon:
    "tensor_format.h:428 Check failed ... Invalid index from the dimension:
    1, 0, H"), so exported models never carry them."""
    if pad != "EXPLICIT":
        return x, pad
    if len(explicit) != 8:
        raise UnsupportedOp(f"node {node.name}: explicit_paddings {explicit}, want 8 values")
    return tf.pad(x, [explicit[i:i + 2] for i in range(0, 8, 2)]), "VALID"


def _conv2d(tf, node: Node):
    _check_nhwc(node)
    pad, explicit = _padding(node)

    def conv(x, w):
        x, p = _pad_explicit(tf, node, x, pad, explicit)
        return tf.raw_ops.Conv2D(input=x, filter=w, strides=node.ints("strides"), padding=p,
                                 data_format="NHWC", dilations=node.ints("dilations", [1, 1, 1, 1]))
    return conv


def _depthwise(tf, node: Node):
    _check_nhwc(node)
    pad, explicit = _padding(node)

    def conv(x, w):
        x, p = _pad_explicit(tf, node, x, pad, explicit)
        return tf.raw_ops.DepthwiseConv2dNative(
            input=x, filter=w, strides=node.ints("strides"), padding=p,
            data_format="NHWC", dilations=node.ints("dilations", [1, 1, 1, 1]))
    return conv


def _matmul(tf, node: Node):
    def mm(a, b):
        return tf.linalg.matmul(a, b, transpose_a=node.b("transpose_a"),
                                transpose_b=node.b("transpose_b"))
    return mm


def _pool(tf, node: Node, kind: str):
    _check_nhwc(node)
    pad = node.s("padding")
    if pad not in ("SAME", "VALID"):
        raise UnsupportedOp(f"node {node.name}: pooling padding {pad}")
    fn = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    return lambda a: fn(a[0], ksize=node.ints("ksize"), strides=node.ints("strides"), padding=pad)


def _strided_slice(tf, node: Node, a):
    return tf.strided_slice(a[0], a[1], a[2], a[3],
                            begin_mask=node.i("begin_mask", 0), end_mask=node.i("end_mask", 0),
                            ellipsis_mask=node.i("ellipsis_mask", 0),
                            new_axis_mask=node.i("new_axis_mask", 0),
                            shrink_axis_mask=node.i("shrink_axis_mask", 0))


def _resize(tf, node: Node, a, method: str):
    if method == "bilinear":
        return tf.raw_ops.ResizeBilinear(images=a[0], size=a[1],
                                         align_corners=node.b("align_corners"),
                                         half_pixel_centers=node.b("half_pixel_centers"))
    return tf.raw_ops.ResizeNearestNeighbor(images=a[0], size=a[1],
                                            align_corners=node.b("align_corners"),
                                            half_pixel_centers=node.b("half_pixel_centers"))


def _ops(tf) -> dict[str, Callable[[Node, list], Any]]:
    """The op table: node + evaluated inputs -> output tensor."""
    return {
        "Identity": lambda n, a: tf.identity(a[0]),
        "Conv2D": lambda n, a: _conv2d(tf, n)(a[0], a[1]),
        "DepthwiseConv2dNative": lambda n, a: _depthwise(tf, n)(a[0], a[1]),
        "_FusedConv2D": lambda n, a: _fused(tf, n, a, _conv2d(tf, n)),
        "FusedDepthwiseConv2dNative": lambda n, a: _fused(tf, n, a, _depthwise(tf, n)),
        "_FusedMatMul": lambda n, a: _fused(tf, n, a, _matmul(tf, n)),
        "MatMul": lambda n, a: _matmul(tf, n)(a[0], a[1]),
        "BiasAdd": lambda n, a: tf.nn.bias_add(a[0], a[1]),
        "Add": lambda n, a: tf.add(a[0], a[1]),
        "AddV2": lambda n, a: tf.add(a[0], a[1]),
        "Sub": lambda n, a: tf.subtract(a[0], a[1]),
        "Mul": lambda n, a: tf.multiply(a[0], a[1]),
        "RealDiv": lambda n, a: tf.divide(a[0], a[1]),
        "Maximum": lambda n, a: tf.maximum(a[0], a[1]),
        "Minimum": lambda n, a: tf.minimum(a[0], a[1]),
        "Relu": lambda n, a: tf.nn.relu(a[0]),
        "Relu6": lambda n, a: tf.nn.relu6(a[0]),
        "Elu": lambda n, a: tf.nn.elu(a[0]),
        "Sigmoid": lambda n, a: tf.sigmoid(a[0]),
        "Tanh": lambda n, a: tf.tanh(a[0]),
        "LeakyRelu": lambda n, a: tf.nn.leaky_relu(a[0], alpha=n.f("alpha", 0.2)),
        "Prelu": lambda n, a: _prelu(tf, a[0], a[1]),
        "Pad": lambda n, a: tf.pad(a[0], a[1]),
        "PadV2": lambda n, a: tf.pad(a[0], a[1], constant_values=a[2]),
        "MaxPool": lambda n, a: _pool(tf, n, "max")(a),
        "AvgPool": lambda n, a: _pool(tf, n, "avg")(a),
        "ConcatV2": lambda n, a: tf.concat(a[:-1], axis=a[-1]),
        "Reshape": lambda n, a: tf.reshape(a[0], a[1]),
        "Shape": lambda n, a: tf.shape(a[0], out_type=tf.int32),
        "StridedSlice": lambda n, a: _strided_slice(tf, n, a),
        "Pack": lambda n, a: tf.stack(a, axis=n.i("axis", 0)),
        "Squeeze": lambda n, a: tf.squeeze(a[0], axis=n.ints("squeeze_dims", []) or None),
        "ExpandDims": lambda n, a: tf.expand_dims(a[0], a[1]),
        "Transpose": lambda n, a: tf.transpose(a[0], a[1]),
        "DepthToSpace": lambda n, a: (_check_nhwc(n), tf.nn.depth_to_space(a[0], n.i("block_size")))[1],
        "SpaceToDepth": lambda n, a: (_check_nhwc(n), tf.nn.space_to_depth(a[0], n.i("block_size")))[1],
        "ResizeBilinear": lambda n, a: _resize(tf, n, a, "bilinear"),
        "ResizeNearestNeighbor": lambda n, a: _resize(tf, n, a, "nearest"),
    }


class GraphFunction:
    """Evaluates a :class:`TfjsGraph` with standard TF ops.

    ``constants`` maps Const node names to tensors (typically ``tf.Variable``
    objects owned by a ``tf.Module`` so a SavedModel stores them under
    ``variables/``); call it inside a ``tf.function`` with the graph's inputs
    to get the requested outputs.
    """

    def __init__(self, graph: TfjsGraph, constants: dict[str, Any]):
        import tensorflow as tf

        self._tf = tf
        self._graph = graph
        self._constants = constants
        self._nodes = {n.name: n for n in graph.nodes}
        self._ops = _ops(tf)
        unsupported = sorted({n.op for n in graph.nodes
                              if n.op not in self._ops and n.op not in ("Const", "Placeholder")})
        if unsupported:
            raise UnsupportedOp(f"unsupported ops: {', '.join(unsupported)}")

    def __call__(self, feeds: dict[str, Any], outputs: list[str]) -> dict[str, Any]:
        """Evaluates ``outputs`` (node names) given ``feeds`` (Placeholder name -> tensor)."""
        tf = self._tf
        values: dict[str, Any] = {}

        def value(name: str):
            # Iterative post-order walk (graphs are deep; avoid Python recursion limits).
            stack = [name]
            while stack:
                cur = stack[-1]
                if cur in values:
                    stack.pop()
                    continue
                node = self._nodes.get(cur)
                if node is None:
                    raise ValueError(f"graph has no node {cur!r}")
                if node.op == "Placeholder":
                    if cur not in feeds:
                        raise ValueError(f"input {cur!r} was not fed")
                    values[cur] = feeds[cur]
                    stack.pop()
                    continue
                if node.op == "Const":
                    values[cur] = self._constants[cur]
                    stack.pop()
                    continue
                deps = []
                for ref in node.inputs:
                    dep, idx = _tensor_name(ref)
                    if idx > 0:
                        raise UnsupportedOp(f"node {cur}: multi-output input {ref!r}")
                    if idx == 0 and dep not in values:
                        deps.append(dep)
                if deps:
                    stack.extend(deps)
                    continue
                args = [values[_tensor_name(r)[0]] for r in node.inputs if not r.startswith("^")]
                with tf.name_scope(_scope(cur)):
                    values[cur] = self._ops[node.op](node, args)
                stack.pop()
            return values[name]

        return {o: value(o) for o in outputs}


def _scope(name: str) -> str:
    """A valid name scope from a node name (keeps the graph readable)."""
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name.split("/")[-1])
    return (keep or "node").lstrip("._-") or "node"


def make_constants(graph: TfjsGraph, module, variables: bool = False) -> dict[str, Any]:
    """Tensors for the graph's Const nodes.

    By default every weight becomes a constant baked into the traced graph:
    the detector's weights are frozen, and constants load about twice as
    fast through the C API as restoring hundreds of variables (measured on
    blazeface-full: ~0.5-0.8 s against ~1.2-1.6 s) and fold into the graph.
    With ``variables=True`` float weights become non-trainable
    ``tf.Variable`` objects tracked by ``module`` (saved under
    ``variables/``), for graphs meant to be fine-tuned.
    """
    import tensorflow as tf

    consts: dict[str, Any] = {}
    module.tfjs_weights = []
    for name, arr in graph.weights.items():
        if variables and arr.dtype == np.float32:
            v = tf.Variable(arr, trainable=False, name=_scope(name))
            module.tfjs_weights.append(v)
            consts[name] = v
        else:
            consts[name] = tf.constant(arr)
    return consts
