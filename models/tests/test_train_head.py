"""Tests of models/train_head.py: the logistic fit, thresholds, score files."""

import numpy as np
import pytest

import train_head


def test_fit_recovers_known_head():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 1.5, 20000)
    w, b = -12.0, 6.0
    y = (rng.uniform(size=d.size) < 1 / (1 + np.exp(-(w * d + b)))).astype(float)
    fw, fb = train_head.fit_logistic(d, y)
    assert abs(fw - w) < 0.6 and abs(fb - b) < 0.3
    st = train_head.evaluate_head(fw, fb, d, y)
    assert abs(st["distance_at_p05"] - 0.5) < 0.02
    assert st["ece"] < 0.02


def test_fit_stays_finite_when_separable():
    d = np.array([0.1, 0.2, 0.3, 0.9, 1.0, 1.1])
    y = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    w, b = train_head.fit_logistic(d, y)
    assert np.isfinite(w) and np.isfinite(b) and w < 0
    assert 0.3 < -b / w < 0.9


def test_fit_needs_both_classes():
    with pytest.raises(ValueError):
        train_head.fit_logistic(np.array([0.1, 0.2]), np.array([1.0, 1.0]))


def test_threshold_at_fmr():
    imp = np.arange(1000) / 1000 + 0.5  # 0.5 .. 1.499
    gen = np.array([0.1, 0.4, 0.6])
    d = np.concatenate([imp, gen])
    y = np.concatenate([np.zeros(1000), np.ones(3)])
    t = train_head.threshold_at_fmr(d, y, 1e-3)
    assert t["measured_fmr"] <= 1e-3 and t["threshold"] < 0.501
    assert t["fnmr"] == pytest.approx(1 / 3)
    assert train_head.threshold_at_fmr(d, y, 1e-4) is None  # needs 10000 impostors


def test_read_scores(tmp_path):
    p = tmp_path / "s.tsv"
    p.write_text("# a\tb\tsame\tacquired\teuclidean\na\tb\t1\t1\t0.3\na\tc\t0\t0\t0\nb\tc\t0\t1\t0.9\n")
    d, y, skipped = train_head.read_scores(p)
    assert list(d) == [0.3, 0.9] and list(y) == [1, 0] and skipped == 1
    bad = tmp_path / "c.tsv"
    bad.write_text("# a\tb\tsame\tacquired\tcosine\n")
    with pytest.raises(ValueError, match="not euclidean"):
        train_head.read_scores(bad)
