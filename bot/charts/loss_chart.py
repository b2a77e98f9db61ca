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


def chart_title(job_id: str, status: str, *, model: str | None = None, suffix: str | None = None, base_model: str | None = None) -> str:
    """What the chart is of: the fine-tuned model (else its suffix on its base), the job and its status."""
    if model:
        what = model
    elif suffix and base_model:
        what = f"{base_model} · {suffix}"
    else:
        what = base_model or suffix or ""
    what = what if len(what) <= 70 else what[:69] + "…"
    return f"{what}\n{job_id} ({status})" if what else f"{job_id} ({status})"


def loss_chart_png(points: Sequence[Point], *, title: str, checkpoints: Sequence[int] = ()) -> bytes:
    """Train and validation loss on top, token accuracy below when the provider reports it, checkpoints marked.

    A provider that reports no accuracy (Together) gets the loss panel alone, not an empty one.
    """
    buf = io.BytesIO()
    loss_chart_figure(points, title=title, checkpoints=checkpoints).savefig(buf, format="png")
    return buf.getvalue()


def loss_chart_figure(points: Sequence[Point], *, title: str, checkpoints: Sequence[int] = ()) -> Figure:
    """The chart as a matplotlib Figure (what the PNG shows: its axes, title and legends can be read)."""
    points = sorted(points, key=lambda p: p.step)
    has_accuracy = any(p.train_accuracy is not None or p.valid_accuracy is not None for p in points)
    # Figure (not pyplot) keeps no global state, so charts can be drawn from several threads.
    fig = Figure(figsize=(8, 5.5 if has_accuracy else 4.2), dpi=100)
    if has_accuracy:
        ax_loss, ax_acc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        axes = (ax_loss, ax_acc)
    else:
        ax_loss, ax_acc = fig.subplots(1, 1), None
        axes = (ax_loss,)
    for attr, label, style in (("train_loss", "train loss", "-"), ("valid_loss", "validation loss", "o-")):
        xs, ys = _series(points, attr)
        if xs:
            ax_loss.plot(xs, ys, style, label=label, markersize=3, linewidth=1.5)
    if ax_acc is not None:
        for attr, label, style in (("train_accuracy", "train", "-"), ("valid_accuracy", "validation", "o-")):
            xs, ys = _series(points, attr)
            if xs:
                ax_acc.plot(xs, ys, style, label=label, markersize=3, linewidth=1.5)
    for i, step in enumerate(sorted(set(checkpoints))):
        for ax in axes:
            # One legend entry for all of them: a dotted line is a checkpoint (a model you can try).
            ax.axvline(step, color="grey", linestyle=":", linewidth=1, label="checkpoint (a model you can try)" if i == 0 and ax is ax_loss else None)
    ax_loss.set_title(title, fontsize=10)
    ax_loss.set_ylabel("loss")
    if ax_acc is not None:
        ax_acc.set_ylabel("token accuracy")
    axes[-1].set_xlabel("step")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    if not points:
        ax_loss.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax_loss.transAxes)
    fig.tight_layout()
    return fig
