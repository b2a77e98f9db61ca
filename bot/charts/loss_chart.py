"""The loss / token-accuracy chart as PNG bytes. Pure: plain points in, bytes out."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display on servers

from matplotlib.figure import Figure  # noqa: E402


@dataclass(frozen=True)
class Point:
    step: int
    train_loss: float | None = None
    valid_loss: float | None = None
    train_accuracy: float | None = None
    valid_accuracy: float | None = None


def _series(points: Sequence[Point], attr: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for p in points:
        v = getattr(p, attr)
        if v is not None:
            xs.append(p.step)
            ys.append(v)
    return xs, ys


def loss_chart_png(points: Sequence[Point], *, title: str, checkpoints: Sequence[int] = ()) -> bytes:
    """Train and validation loss on top, token accuracy below, checkpoint steps marked."""
    points = sorted(points, key=lambda p: p.step)
    # Figure (not pyplot) keeps no global state, so charts can be drawn from several threads.
    fig = Figure(figsize=(8, 5.5), dpi=100)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for attr, label, style in (("train_loss", "train", "-"), ("valid_loss", "validation", "o-")):
        xs, ys = _series(points, attr)
        if xs:
            ax_loss.plot(xs, ys, style, label=label, markersize=3, linewidth=1.5)
    for attr, label, style in (("train_accuracy", "train", "-"), ("valid_accuracy", "validation", "o-")):
        xs, ys = _series(points, attr)
        if xs:
            ax_acc.plot(xs, ys, style, label=label, markersize=3, linewidth=1.5)
    for step in checkpoints:
        for ax in (ax_loss, ax_acc):
            ax.axvline(step, color="grey", linestyle=":", linewidth=1)
    ax_loss.set_title(title, fontsize=11)
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("token accuracy")
    ax_acc.set_xlabel("step")
    for ax in (ax_loss, ax_acc):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    if not points:
        ax_loss.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax_loss.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
