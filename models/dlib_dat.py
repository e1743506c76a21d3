"""Reader for dlib's serialized DNN files (``*.dat``), in pure Python/numpy.

dlib (http://dlib.net) saves a network with ``serialize(file) << net``. The
format is dlib's own binary serialization (dlib/serialize.h, dlib/dnn/*.h):

* integers: one header byte whose low nibble is the number of value bytes that
  follow and whose bit 0x80 marks a negative number, then the absolute value
  little-endian (so 2 is ``01 02``, 0 is ``01 00``, -17 is ``81 11``);
* float/double: two integers, an int64 mantissa and an int16 exponent, value =
  mantissa * 2**exponent (exponents 32000/32001/32002 encode +inf/-inf/nan);
* bool: the character ``'1'`` or ``'0'``;
* std::string: its length as an integer, then the bytes;
* ``tensor``: version 2, then num_samples, k, nr, nc (integers), then the
  values as raw little-endian IEEE float32, in (num_samples, k, nr, nc)
  row-major order;
* ``alias_tensor``: version 1, then num_samples, k, nr, nc.

A network ``add_loss_layer<LOSS, add_layer<L1, add_layer<L2, ... input>>>``
serializes as: loss version, the loss layer's details, then recursively each
subnetwork: ``add_layer`` writes its version (2; 3 for the layer sitting on
the input layer) and then its subnetwork *before* its own details, so the
file holds every wrapper's version top-down first, then the input layer,
then each layer's details bottom-up (input side first), each followed by
three bools and three (normally empty) tensors of training state (the layer
on the input also stores the sample expansion factor, 1). Tag and
skip layers (``tagN``/``skipN``) write only their version (1).

:func:`read_net` returns the loss details, the wrapper versions and the list
of computational layers in forward order with their parameters as numpy
arrays. Only the layer types dlib's face-recognition ResNet uses are
supported; anything else raises :class:`DatError` rather than guessing.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np


class DatError(ValueError):
    """The bytes are not a dlib network this reader understands."""


_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class Reader:
    """Reads dlib's serialization primitives from a bytes buffer."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data = memoryview(data)
        self.pos = pos

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise DatError(f"unexpected end of data at byte {self.pos} (need {n} more)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self) -> int:
        """An integer: size/sign byte, then the magnitude little-endian."""
        head = self._take(1)[0]
        size = head & 0x0F
        if head & 0x70 or size > 8:
            raise DatError(f"bad integer header 0x{head:02x} at byte {self.pos - 1}")
        v = int.from_bytes(self._take(size), "little")
        return -v if head & 0x80 else v

    def float(self) -> float:
        """A float or double stored as (mantissa, exponent) integers."""
        mantissa = self.int()
        exponent = self.int()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        c = bytes(self._take(1))
        if c not in (b"0", b"1"):
            raise DatError(f"bad bool {c!r} at byte {self.pos - 1}")
        return c == b"1"

    def str(self) -> str:
        n = self.int()
        if n > 1 << 20:
            raise DatError(f"implausible string length {n} at byte {self.pos}")
        return bytes(self._take(n)).decode("latin-1")

    def expect_version(self, want: int, what: str) -> None:
        got = self.int()
        if got != want:
            raise DatError(f"{what}: version {got}, want {want} (at byte {self.pos})")

    def tensor(self) -> np.ndarray:
        """A dlib tensor as float32 array shaped (num_samples, k, nr, nc)."""
        self.expect_version(2, "tensor")
        shape = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in shape):
            raise DatError(f"negative tensor shape {shape}")
        n = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * n)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        self.expect_version(1, "alias_tensor")
        return tuple(self.int() for _ in range(4))


@dataclasses.dataclass
class Layer:
    """One computational layer, as dlib stored it.

    ``kind`` is dlib's layer name without its version suffix (``con``,
    ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``,
    ``input_rgb_image_sized``); ``attrs`` the hyper-parameters; ``arrays`` the
    learned parameters (float32).
    """

    kind: str
    tag: str
    attrs: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def num_params(self) -> int:
        return int(sum(a.size for a in self.arrays.values()))


@dataclasses.dataclass
class Net:
    """A parsed dlib network: loss details, wrapper versions, layers input-first."""

    loss: dict[str, Any]
    wrapper_versions: list[int]
    layers: list[Layer]

    def num_params(self) -> int:
        return sum(layer.num_params() for layer in self.layers)

    def count(self, kind: str) -> int:
        return sum(1 for layer in self.layers if layer.kind == kind)


def _split(params: np.ndarray, *shapes) -> list[np.ndarray]:
    flat = params.reshape(-1)
    total = sum(int(np.prod(s)) for s in shapes)
    if total != flat.size:
        raise DatError(f"params hold {flat.size} values, layer needs {total} for {shapes}")
    out, off = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[off:off + n].reshape(s).copy())
        off += n
    return out


def _read_input(r: Reader, tag: str) -> Layer:
    if tag != "input_rgb_image_sized":
        raise DatError(f"unsupported input layer {tag!r}")
    means = [r.float() for _ in range(3)]
    nr, nc = r.int(), r.int()
    return Layer("input_rgb_image_sized", tag,
                 {"avg_red": means[0], "avg_green": means[1], "avg_blue": means[2],
                  "nr": nr, "nc": nc}, {})


def _read_details(r: Reader) -> Layer:
    tag = r.str()
    if tag == "con_4":
        params = r.tensor()
        num_filters, nr, nc = r.int(), r.int(), r.int()
        stride_y, stride_x, pad_y, pad_x = r.int(), r.int(), r.int(), r.int()
        fshape, bshape = r.alias_tensor(), r.alias_tensor()
        mults = [r.float() for _ in range(4)]
        if fshape[0] != num_filters or fshape[2:] != (nr, nc) or bshape != (1, num_filters, 1, 1):
            raise DatError(f"con_4: inconsistent shapes filters {fshape} biases {bshape}")
        w, b = _split(params, fshape, (num_filters,))
        return Layer("con", tag, {"num_filters": num_filters, "nr": nr, "nc": nc,
                                  "stride": (stride_y, stride_x), "padding": (pad_y, pad_x),
                                  "multipliers": mults},
                     {"filters": w, "biases": b})
    if tag == "affine_":
        params = r.tensor()
        gshape, bshape = r.alias_tensor(), r.alias_tensor()
        mode = r.int()
        g, b = _split(params, gshape, bshape)
        return Layer("affine", tag, {"mode": mode},
                     {"gamma": g.reshape(-1), "beta": b.reshape(-1)})
    if tag == "relu_":
        return Layer("relu", tag, {}, {})
    if tag in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        return Layer(tag[:-2], tag, {"nr": nr, "nc": nc, "stride": (sy, sx),
                                     "padding": (py, px)}, {})
    if tag == "add_prev_":
        return Layer("add_prev", tag, {}, {})
    if tag == "fc_2":
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor()
        wshape, bshape = r.alias_tensor(), r.alias_tensor()
        bias_mode = r.int()
        mults = [r.float() for _ in range(4)]
        has_bias = bias_mode == 0
        if wshape != (num_inputs, num_outputs, 1, 1):
            raise DatError(f"fc_2: weights shape {wshape}, want ({num_inputs},{num_outputs},1,1)")
        if has_bias:
            w, b = _split(params, (num_inputs, num_outputs), (num_outputs,))
            arrays = {"weights": w, "biases": b}
        else:
            (w,) = _split(params, (num_inputs, num_outputs))
            arrays = {"weights": w}
        return Layer("fc", tag, {"num_outputs": num_outputs, "num_inputs": num_inputs,
                                 "bias": has_bias, "multipliers": mults}, arrays)
    raise DatError(f"unsupported layer type {tag!r} at byte {r.pos}")


def _read_training_state(r: Reader) -> None:
    """The three bools and three tensors every add_layer stores after its details."""
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()


def read_net(data: bytes) -> Net:
    """Parses a dlib ``loss_metric`` network (e.g. the face-recognition ResNet)."""
    r = Reader(data)
    r.expect_version(1, "add_loss_layer")
    loss_tag = r.str()
    if loss_tag != "loss_metric_2":
        raise DatError(f"unsupported loss layer {loss_tag!r}")
    loss = {"kind": "loss_metric", "margin": r.float(), "distance_threshold": r.float()}

    # Wrapper versions, top-down: 2 = add_layer, 1 = tag/skip, 3 = the
    # add_layer over the input layer (which ends the list).
    versions = []
    while True:
        v = r.int()
        versions.append(v)
        if v == 3:
            break
        if v not in (1, 2):
            raise DatError(f"unexpected layer wrapper version {v} at byte {r.pos}")
        if len(versions) > 10000:
            raise DatError("no input layer found")

    layers = [_read_input(r, r.str())]
    n_layers = versions.count(2) + 1
    for i in range(n_layers):
        layers.append(_read_details(r))
        _read_training_state(r)
        if i == 0:
            # Version 3 (the add_layer over the input) also stores the input
            # layer's sample expansion factor: 1 image -> 1 sample.
            factor = r.int()
            if factor != 1:
                raise DatError(f"sample expansion factor {factor}, want 1")
    if r.pos != len(r.data):
        raise DatError(f"{len(r.data) - r.pos} trailing bytes after the network")
    return Net(loss, versions, layers)


def read_net_file(path: os.PathLike | str) -> Net:
    """Reads and parses a dlib network file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return read_net(data)
    except DatError as e:
        raise DatError(f"{path}: {e}") from e
