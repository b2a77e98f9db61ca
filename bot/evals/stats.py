"""Aggregates over paired per-example scores: means, a paired bootstrap 95 % confidence interval of
the difference, and win / tie / loss counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Comparison:
    n: int  # examples where both models have this score
    model: float | None  # mean of the evaluated model
    baseline: float | None
    diff: float | None  # model - baseline
    ci_low: float | None
    ci_high: float | None
    wins: int
    ties: int
    losses: int


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of mean(a - b), resampling examples (pairs kept together)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        raise ValueError("no pairs")
    if d.size == 1 or np.all(d == d[0]):
        return float(d[0]), float(d[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(samples, d.size))
    means = d[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare(pairs: Sequence[tuple[float | None, float | None]], *, seed: int = 0, eps: float = 1e-9) -> Comparison:
    """Pairs (model score, baseline score); pairs missing either side are left out."""
    both = [(x, y) for x, y in pairs if x is not None and y is not None]
    if not both:
        return Comparison(0, None, None, None, None, None, 0, 0, 0)
    a = [x for x, _ in both]
    b = [y for _, y in both]
    lo, hi = paired_bootstrap(a, b, seed=seed)
    wins = sum(1 for x, y in both if x > y + eps)
    losses = sum(1 for x, y in both if y > x + eps)
    return Comparison(len(both), float(np.mean(a)), float(np.mean(b)), float(np.mean(a) - np.mean(b)), lo, hi, wins, len(both) - wins - losses, losses)


def judge_comparison(scores: Sequence[float | None], *, seed: int = 0) -> Comparison:
    """The judge scores the pair at once (1 the model preferred, 0.5 a tie, 0 the baseline): the
    baseline's score is the complement."""
    return compare([(s, 1.0 - s) if s is not None else (None, None) for s in scores], seed=seed)


def median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None
