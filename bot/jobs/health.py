"""Training health: what a careful ML engineer watching the curves would say, computed from our metrics.

Pure: metric points and a few facts about the job in, findings out. Each finding has a `kind` that is
said at most once per job (the outbox key is built from it), so the analysis may run on every poll.

The defaults follow the early-stopping conventions of the common trainers:
- patience 3 evaluations without improvement (PyTorch Lightning's EarlyStopping default; Keras'
  default of 0 is too jumpy on the noisy per-step validation loss a provider reports, Hugging Face
  makes you choose), with min_delta 0 as all three default to;
- per-step validation loss is noisy (a small sample), so it is smoothed with a moving average of 5
  evaluations before the comparison; the provider's full validation loss, when reported, is used as is;
- divergence: any NaN / infinite loss at once; otherwise a smoothed training loss 50 % above its early
  level once a fifth of the steps are done (the warm-up is over by then);
- stalled: no new metrics for 5 x the job's median step interval (at least 5 minutes) while running,
  or queued / validating for longer than the operator's threshold (default 2 hours).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class HealthSettings:
    patience: int = 3
    smoothing: int = 5
    divergence_factor: float = 1.5
    stall_factor: float = 5.0
    stall_minimum: timedelta = timedelta(minutes=5)
    queued_limit: timedelta = timedelta(hours=2)
    billed_tolerance: float = 0.10


@dataclass(frozen=True)
class MetricSample:
    step: int
    train_loss: float | None = None
    valid_loss: float | None = None
    full_valid_loss: float | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class CheckpointSample:
    step: int
    model: str
    valid_loss: float | None = None  # full validation loss when reported, else the step's validation loss


@dataclass(frozen=True)
class Finding:
    kind: str  # overfitting | divergence | stalled | queued_long | best_checkpoint | billed_tokens
    severe: bool  # also said at channel level, not only in the job's thread
    title: str
    detail: str
    step: int | None = None
    model: str | None = None  # a checkpoint model to try, when there is one


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def validation_series(points: Sequence[MetricSample], smoothing: int) -> list[tuple[int, float]]:
    """(step, loss) to judge generalisation by: full validation loss if reported, else smoothed step loss."""
    full = [(p.step, p.full_valid_loss) for p in points if _finite(p.full_valid_loss)]
    if len(full) >= 2:
        return full  # type: ignore[return-value]
    steps = [(p.step, p.valid_loss) for p in points if _finite(p.valid_loss)]
    smooth = _moving_average([v for _, v in steps], smoothing)  # type: ignore[misc]
    return [(s, v) for (s, _), v in zip(steps, smooth, strict=True)]


def _checkpoint_at_or_before(checkpoints: Sequence[CheckpointSample], step: int) -> CheckpointSample | None:
    earlier = [c for c in checkpoints if c.step <= step]
    return max(earlier, key=lambda c: c.step) if earlier else None


def overfitting(points: Sequence[MetricSample], checkpoints: Sequence[CheckpointSample], cfg: HealthSettings) -> Finding | None:
    series = validation_series(points, cfg.smoothing)
    if len(series) <= cfg.patience:
        return None
    best_i = min(range(len(series)), key=lambda i: series[i][1])
    since_best = len(series) - 1 - best_i
    if since_best < cfg.patience:
        return None
    best_step, best_loss = series[best_i]
    last_step, last_loss = series[-1]
    train = [(p.step, p.train_loss) for p in points if _finite(p.train_loss)]
    smooth = _moving_average([v for _, v in train], cfg.smoothing)  # type: ignore[misc]
    at_best = [v for (s, _), v in zip(train, smooth, strict=True) if s <= best_step]
    if not at_best or smooth[-1] >= at_best[-1]:
        return None  # training loss is not falling either: not overfitting (a plateau, or worse)
    ckpt = _checkpoint_at_or_before(checkpoints, best_step)
    detail = (
        f"Validation loss was best at step {best_step} ({best_loss:.4f}) and has not improved for {since_best} "
        f"evaluations (now {last_loss:.4f} at step {last_step}) while training loss kept falling "
        f"({at_best[-1]:.4f} → {smooth[-1]:.4f}): the model is memorising the training set."
    )
    return Finding("overfitting", False, "Overfitting", detail, best_step, ckpt.model if ckpt else None)


def divergence(points: Sequence[MetricSample], total_steps: int | None, cfg: HealthSettings) -> Finding | None:
    for p in points:
        for name, v in (("training", p.train_loss), ("validation", p.valid_loss), ("full validation", p.full_valid_loss)):
            if v is not None and not math.isfinite(v):
                return Finding("divergence", True, "Training diverged", f"The {name} loss is {v} at step {p.step}: the run is broken and will not recover.", p.step)
    train = [(p.step, p.train_loss) for p in points if _finite(p.train_loss)]
    if not total_steps or len(train) < 2 * cfg.smoothing or train[-1][0] < total_steps / 5:
        return None
    smooth = _moving_average([v for _, v in train], cfg.smoothing)  # type: ignore[misc]
    early = smooth[cfg.smoothing - 1]  # the first full window
    if early > 0 and smooth[-1] > cfg.divergence_factor * early:
        step = train[-1][0]
        detail = f"Training loss is {smooth[-1]:.4f} at step {step}, {smooth[-1] / early:.1f}x its early level ({early:.4f}). A lower learning rate multiplier usually helps."
        return Finding("divergence", True, "Training loss is climbing", detail, step)
    return None


def stalled(points: Sequence[MetricSample], status: str, status_since: datetime | None, now: datetime, cfg: HealthSettings) -> Finding | None:
    if status in {"queued", "validating_files"}:
        if status_since is not None and now - status_since > cfg.queued_limit:
            waited = now - status_since
            hours = waited.total_seconds() / 3600
            return Finding("queued_long", False, f"Still {status.replace('_', ' ')}", f"The job has been {status.replace('_', ' ')} for {hours:.1f} hours. The provider may be busy; nothing is wrong with the job yet.")
        return None
    if status != "running":
        return None
    times = [p.created_at for p in points if p.created_at is not None]
    if len(times) < 3:
        return None
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False) if b >= a]
    if not gaps:
        return None
    limit = max(cfg.stall_minimum.total_seconds(), cfg.stall_factor * statistics.median(gaps))
    silent = (now - times[-1]).total_seconds()
    if silent > limit:
        return Finding("stalled", True, "Training seems stalled", f"No new metrics for {silent / 60:.0f} minutes while running (a step usually takes {statistics.median(gaps):.0f} s). The provider may have a problem.", points[-1].step)
    return None


def best_checkpoint(points: Sequence[MetricSample], checkpoints: Sequence[CheckpointSample], final_model: str | None) -> Finding | None:
    """On success: is an earlier checkpoint better on validation loss than the final model?"""
    scored = [c for c in checkpoints if _finite(c.valid_loss)]
    if not scored or not final_model:
        return None
    last_step = max(c.step for c in checkpoints)
    final = next((c for c in checkpoints if c.step == last_step), None)
    best = min(scored, key=lambda c: c.valid_loss)  # type: ignore[arg-type, return-value]
    if final is None or not _finite(final.valid_loss) or best.step == final.step or best.valid_loss >= final.valid_loss:  # type: ignore[operator]
        return None
    detail = f"The checkpoint at step {best.step} has a lower validation loss ({best.valid_loss:.4f}) than the final model ({final.valid_loss:.4f}). Try it before using the final model."
    return Finding("best_checkpoint", False, "An earlier checkpoint did better", detail, best.step, best.model)


def billed_tokens(trained_tokens: int | None, estimated: int | None, cfg: HealthSettings) -> Finding | None:
    if not trained_tokens or not estimated:
        return None
    diff = (trained_tokens - estimated) / estimated
    if abs(diff) <= cfg.billed_tolerance:
        return None
    return Finding("billed_tokens", False, "Billed tokens differ from the estimate", f"The provider billed {trained_tokens:,} training tokens; the dataset check estimated {estimated:,} ({diff:+.0%}).")


def assess(
    points: Sequence[MetricSample],
    *,
    status: str,
    total_steps: int | None,
    checkpoints: Sequence[CheckpointSample] = (),
    status_since: datetime | None = None,
    now: datetime,
    final_model: str | None = None,
    trained_tokens: int | None = None,
    estimated_tokens: int | None = None,
    cfg: HealthSettings = HealthSettings(),
) -> list[Finding]:
    """Everything worth saying about the job now. The caller says each kind once."""
    found = [divergence(points, total_steps, cfg), overfitting(points, checkpoints, cfg)]
    if status == "succeeded":
        found += [best_checkpoint(points, checkpoints, final_model), billed_tokens(trained_tokens, estimated_tokens, cfg)]
    else:
        found.append(stalled(points, status, status_since, now, cfg))
    return [f for f in found if f is not None]
