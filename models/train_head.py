"""Fits the Siamese head on many pairs of many people, towers frozen.

The Siamese design ends in ``Dense(1, sigmoid)`` on the distance between the
two towers' embeddings: p(match) = sigmoid(w * d + b). The original
experiment trained the whole network on 5 people (~18 photos each) and saw
0 % on live frames. Here the towers stay frozen (pretrained) and only the
two head parameters are fitted, by maximum likelihood (logistic regression,
Newton's method), on thousands of labelled pairs of thousands of people,
never on the photos of the people a gate enrols.

Input: score files written by ``facegate eval -scores FILE`` (a, b, same,
acquired, euclidean distance per line), one per data set. Pairs where a face
was not found carry no distance and are left out of the fit (they are
counted). Output: the head (and its fit statistics) merged into
``models/calibration/<model>.json``, which the exporter applies to the graph
and the manifest, and a report comparing the head with a plain calibrated
threshold.

    python models/train_head.py --model dlib-resnet-v1 \\
        --scores build/eval/lfw.scores.tsv --scores build/eval/extra.scores.tsv \\
        --report build/eval/head.md
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402


def read_scores(path: str | pathlib.Path):
    """Returns (distances, labels, skipped) from a facegate eval scores file."""
    d, y, skipped = [], [], 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                if line.startswith("#") and "euclidean" not in line:
                    raise ValueError(f"{path}: scores are not euclidean distances: {line}")
                continue
            parts = line.split("\t")
            if len(parts) != 5:
                raise ValueError(f"{path}:{n}: want 5 tab-separated fields, got {len(parts)}")
            same, acquired, score = int(parts[2]), int(parts[3]), float(parts[4])
            if not acquired:
                skipped += 1
                continue
            d.append(score)
            y.append(same)
    return np.asarray(d, dtype=np.float64), np.asarray(y, dtype=np.float64), skipped


def fit_logistic(d: np.ndarray, y: np.ndarray, l2: float = 1e-6, iters: int = 100):
    """Maximum-likelihood p = sigmoid(w*d + b) by Newton's method.

    A tiny L2 penalty keeps the fit finite when the classes separate
    perfectly. Returns (w, b).
    """
    if len(d) == 0 or y.min() == y.max():
        raise ValueError("need both genuine and impostor pairs to fit the head")
    x = np.stack([d, np.ones_like(d)], axis=1)
    theta = np.zeros(2)
    for _ in range(iters):
        z = x @ theta
        p = 1 / (1 + np.exp(-z))
        grad = x.T @ (p - y) + l2 * theta
        h = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(h, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def evaluate_head(w: float, b: float, d: np.ndarray, y: np.ndarray) -> dict:
    """Log loss, Brier score, accuracy at p = 0.5 and a reliability table."""
    p = np.clip(sigmoid(w * d + b), 1e-12, 1 - 1e-12)
    out = {
        "pairs": int(len(d)),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "brier": float(np.mean((p - y) ** 2)),
        "accuracy_at_p05": float(np.mean((p >= 0.5) == (y == 1))),
        "distance_at_p05": float(-b / w) if w != 0 else math.nan,
    }
    bins = np.linspace(0, 1, 11)
    rel = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (p >= lo) & (p < hi if hi < 1 else p <= hi)
        if m.sum():
            rel.append({"bin": f"{lo:.1f}-{hi:.1f}", "pairs": int(m.sum()),
                        "mean_p": float(p[m].mean()), "observed": float(y[m].mean())})
    out["reliability"] = rel
    out["ece"] = float(sum(r["pairs"] * abs(r["mean_p"] - r["observed"]) for r in rel) / len(d))
    return out


def threshold_at_fmr(d: np.ndarray, y: np.ndarray, fmr: float):
    """Largest distance threshold with impostor acceptance <= fmr, and its FNMR."""
    imp = np.sort(d[y == 0])
    gen = d[y == 1]
    if len(imp) < math.ceil(1 / fmr):
        return None
    k = int(math.floor(fmr * len(imp)))  # impostors allowed at or below the threshold
    t = np.nextafter(imp[k], -np.inf) if k < len(imp) else imp[-1]
    return {"fmr": fmr, "threshold": float(t), "fnmr": float(np.mean(gen > t)),
            "measured_fmr": float(np.mean(imp <= t)), "impostors": int(len(imp))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model name, e.g. dlib-resnet-v1")
    ap.add_argument("--scores", action="append", required=True, help="facegate eval -scores file (repeatable)")
    ap.add_argument("--report", help="write a Markdown report here")
    ap.add_argument("--dry-run", action="store_true", help="fit and report, but do not write the calibration")
    args = ap.parse_args(argv)

    parts = [read_scores(p) for p in args.scores]
    d = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    skipped = sum(p[2] for p in parts)
    w, b = fit_logistic(d, y)
    stats = evaluate_head(w, b, d, y)
    names = ", ".join(pathlib.Path(p).name for p in args.scores)
    fitted_on = (f"{stats['pairs']} pairs ({int(y.sum())} genuine, {int(len(y) - y.sum())} impostor) "
                 f"from {names}; {skipped} pairs without a face left out; models/train_head.py on {common.today()}")
    head = {"weight": w, "bias": b, "fitted_on": fitted_on}

    lines = [f"# Siamese head of {args.model}", "",
             f"p(match) = sigmoid({w:.4f} * d + {b:.4f}); p = 0.5 at d = {stats['distance_at_p05']:.4f}", "",
             f"Fitted on {fitted_on}.", "",
             "| figure | value |", "|---|---|",
             f"| log loss | {stats['log_loss']:.4f} |",
             f"| Brier score | {stats['brier']:.4f} |",
             f"| expected calibration error | {stats['ece']:.4f} |",
             f"| accuracy deciding at p = 0.5 | {100 * stats['accuracy_at_p05']:.2f} % |"]
    for fmr in (1e-2, 1e-3):
        t = threshold_at_fmr(d, y, fmr)
        if t:
            lines.append(f"| calibrated threshold at FMR {fmr:g}: d <= {t['threshold']:.4f} (p >= "
                         f"{sigmoid(w * t['threshold'] + b):.4f}) | FNMR {100 * t['fnmr']:.2f} %, "
                         f"measured FMR {t['measured_fmr']:.2e} on {t['impostors']} impostors |")
    lines += ["", "Reliability (pairs grouped by predicted probability):", "",
              "| p bin | pairs | mean p | observed match rate |", "|---|---|---|---|"]
    for r in stats["reliability"]:
        lines.append(f"| {r['bin']} | {r['pairs']} | {r['mean_p']:.3f} | {r['observed']:.3f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        pathlib.Path(args.report).write_text(report)
    if not args.dry_run:
        path = common.CALIBRATION_DIR / f"{args.model}.json"
        cal = json.loads(path.read_text()) if path.exists() else {"model": args.model}
        cal["head"] = head
        cal["head_fit"] = {k: v for k, v in stats.items() if k != "reliability"}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cal, indent=2) + "\n")
        print(f"wrote the head into {path}; `make models` applies it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
