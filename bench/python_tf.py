"""Python TensorFlow side of `facegate bench -python`.

Loads one SavedModel with ``tf.saved_model.load`` and runs one of its
signatures (the one its manifest names: ``embed`` for the embedders,
``detect`` for the detector, ``classify`` for the PAD models; every output
is fetched) on inputs that facegate writes to a file, so Go (the TF C API
through graft) and Python (TF's own Python API) run the same graph on the same
bytes with the same thread counts, in the same run.

It is a small server driven by facegate over stdin/stdout, one JSON object a
line, so that facegate can interleave Go and Python measurements (A/B/A/B)
and the machine's noise falls on both equally:

* on start it configures threading (``tf.config.threading``) and devices
  before any op runs, loads the model and prints
  ``{"ready": true, "tf": ..., "devices": [...], "load_ms": ...}``;
* ``{"cmd": "run", "input": PATH, "shape": [N, H, W, C], "iters": K,
  "warmup": W}`` reads N*H*W*C float32 values (native byte order) from PATH
  (cached per path), runs the signature W times untimed and K times timed
  and answers ``{"ms": [...], "cpu_ms": ..., "outputs": {...}}``; each timed
  call includes what facegate's RunFloat32 includes: making the input
  tensor from host memory, the run, and copying every output back to host
  memory (``.numpy()``). ``outputs`` holds the first row of each output, for
  facegate to check both sides computed the same thing;
* ``{"cmd": "quit"}`` (or end of input) exits.

Standalone use (no facegate): ``python bench/python_tf.py --model DIR
--signature embed --input images --batch 1,4 --iters 5`` prints per-batch
timings, handy on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def configure(intra: int, inter: int, gpu: bool):
    """Imports TensorFlow and applies thread and device settings before any op runs."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    gpus = tf.config.list_physical_devices("GPU")
    if gpu:
        if not gpus:
            raise SystemExit("python_tf: --gpu given but TensorFlow sees no GPU")
        tf.config.set_visible_devices(gpus[:1], "GPU")
        tf.config.experimental.set_memory_growth(gpus[0], True)
    elif gpus:
        tf.config.set_visible_devices([], "GPU")
    return tf


class Runner:
    """One loaded signature and the inputs read so far."""

    def __init__(self, tf, model_dir: str, signature: str, input_key: str):
        self.tf = tf
        t0 = time.perf_counter()
        self.model = tf.saved_model.load(model_dir)
        self.load_ms = 1e3 * (time.perf_counter() - t0)
        if signature not in self.model.signatures:
            raise SystemExit(f"python_tf: {model_dir} has no signature {signature!r} "
                             f"(has {sorted(self.model.signatures.keys())})")
        self.fn = self.model.signatures[signature]
        self.input_key = input_key
        self.cache: dict[str, "object"] = {}

    def _input(self, path: str, shape: list[int]):
        import numpy as np

        key = f"{path}:{shape}"
        if key not in self.cache:
            n = 1
            for d in shape:
                n *= d
            data = np.fromfile(path, dtype=np.float32, count=n)
            if data.size != n:
                raise ValueError(f"{path}: {data.size} float32 values, want {n} for shape {shape}")
            self.cache[key] = data.reshape(shape)
        return self.cache[key]

    def call(self, x):
        """One timed unit: input tensor from host memory, run, outputs to host memory."""
        out = self.fn(**{self.input_key: self.tf.constant(x)})
        return {k: v.numpy() for k, v in out.items()}

    def run(self, path: str, shape: list[int], iters: int, warmup: int) -> dict:
        """Runs warmup untimed and iters timed calls; returns per-call ms and process CPU ms."""
        x = self._input(path, shape)
        for _ in range(warmup):
            self.call(x)
        ms = []
        out = None
        c0 = time.process_time()
        for _ in range(iters):
            t0 = time.perf_counter()
            out = self.call(x)
            ms.append(1e3 * (time.perf_counter() - t0))
        cpu_ms = 1e3 * (time.process_time() - c0)
        if out is None:
            out = self.call(x)
        first = {k: v.reshape(v.shape[0], -1)[0].astype(float).tolist() if v.ndim > 0 and v.shape[0] > 0 else []
                 for k, v in out.items()}
        return {"ms": ms, "cpu_ms": cpu_ms, "outputs": first}


def serve(runner: Runner, tf, args) -> int:
    """The stdin/stdout protocol facegate drives."""
    devices = [d.name for d in tf.config.list_logical_devices()]
    reply({"ready": True, "tf": tf.__version__, "devices": devices, "load_ms": runner.load_ms,
           "intra": tf.config.threading.get_intra_op_parallelism_threads(),
           "inter": tf.config.threading.get_inter_op_parallelism_threads(),
           "python": sys.version.split()[0]})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "quit":
                break
            if cmd != "run":
                raise ValueError(f"unknown command {cmd!r}")
            reply(runner.run(req["input"], [int(d) for d in req["shape"]], int(req["iters"]), int(req.get("warmup", 0))))
        except Exception as e:  # reported to facegate, which fails the bench
            reply({"error": f"{type(e).__name__}: {e}"})
    return 0


def reply(obj: dict) -> None:
    """Writes one JSON line to stdout and flushes it."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def standalone(runner: Runner, args) -> int:
    """Times the signature on random inputs for each batch size and prints a table."""
    import tempfile

    import numpy as np

    rng = np.random.default_rng(1)
    for b in [int(x) for x in args.batch.split(",")]:
        shape = [b] + [int(d) for d in args.shape.split(",")]
        with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
            (rng.random(shape, dtype=np.float32) * 255).tofile(f)
        try:
            r = runner.run(f.name, shape, args.iters, args.warmup)
        finally:
            os.unlink(f.name)
        ms = sorted(r["ms"])
        p50 = ms[len(ms) // 2]
        print(f"batch {b:3d}: p50 {p50:9.3f} ms/batch, {1e3 * b / p50:9.1f} items/s, cpu {r['cpu_ms'] / len(ms):9.3f} ms/batch")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="SavedModel folder")
    ap.add_argument("--signature", required=True, help="signature to run, e.g. embed")
    ap.add_argument("--input", required=True, help="the signature's input key, e.g. images")
    ap.add_argument("--intra", type=int, default=0, help="intra-op threads (0: TensorFlow's default)")
    ap.add_argument("--inter", type=int, default=0, help="inter-op threads (0: TensorFlow's default)")
    ap.add_argument("--gpu", action="store_true", help="run on the first GPU with memory growth (else GPUs are hidden)")
    ap.add_argument("--batch", default="", help="standalone mode: batch sizes, e.g. 1,4,16")
    ap.add_argument("--shape", default="", help="standalone mode: one item's shape, e.g. 150,150,3")
    ap.add_argument("--iters", type=int, default=10, help="standalone mode: timed calls per batch size")
    ap.add_argument("--warmup", type=int, default=2, help="standalone mode: untimed calls per batch size")
    args = ap.parse_args()
    tf = configure(args.intra, args.inter, args.gpu)
    runner = Runner(tf, args.model, args.signature, args.input)
    if args.batch:
        if not args.shape:
            ap.error("--batch needs --shape")
        return standalone(runner, args)
    return serve(runner, tf, args)


if __name__ == "__main__":
    sys.exit(main())
