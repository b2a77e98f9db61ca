"""Training health: what a careful ML engineer watching the curves would say, computed from our metrics.

Pure: metric points and a few facts about the job in, findings out. Each finding has a `kind` that is
said at most once per job (the outbox key is built from it), so the analysis may run on every poll.

The series is folded into a small `Summary` (a few dozen numbers, stored with the job) one new point
at a time, so watching a job costs the same at step 10 and at step 10,000: the poller never reloads
a job's history to judge it.

The defaults follow the early-stopping conventions of the common trainers:
- patience 3 evaluations without improvement (PyTorch Lightning's EarlyStopping default; Keras'
  default of 0 is too jumpy on the noisy per-step validation loss a provider reports, Hugging Face
  makes you choose), with min_delta 0 as all three default to;
- per-step validation loss is noisy (a small sample), so it is smoothed with a moving average of 5
  evaluations before the comparison, and "worse than the best" / "training kept falling" must exceed
  2 noise deviations of the raw series (min_delta 0 alone reads a long plateau's noise as
  overfitting: on a simulated 3,000-step plateau it fired in every run); the provider's full validation loss, when reported for more than
  `patience` evaluations (it comes once an epoch), is used as is;
- divergence: any NaN / infinite loss at once; otherwise a smoothed training loss 50 % above its early
  level once a fifth of the steps are done (the warm-up is over by then);
- stalled: no new metrics for 5 x the job's median step interval (at least 5 minutes) while running
  (a running job that has not reported a step yet: the queue threshold), or queued / validating for
  longer than the operator's threshold (default 2 hours);
- on success, an earlier checkpoint with a lower validation loss than the final model is named (what
  Hugging Face's load_best_model_at_end would have kept), and billed tokens more than 10 % off the
  dataset check's estimate are pointed out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

GAPS_KEPT = 50  # the median step interval is taken over the latest this many steps


@dataclass(frozen=True)
class HealthSettings:
    patience: int = 3
    smoothing: int = 5
    divergence_factor: float = 1.5
    stall_factor: float = 5.0
    stall_minimum: timedelta = timedelta(minutes=5)
    queued_limit: timedelta = timedelta(hours=2)
    billed_tolerance: float = 0.10
    # "Kept falling" / "got worse" must exceed this many noise deviations of the raw losses, so a
    # plateau's noise over hundreds of evaluations is not read as a trend.
    significance: float = 2.0


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


def as_loss(v: Any) -> float | None:
    """A reported number as a float, non-finite kept: JSON carries NaN / infinity as strings."""
    if isinstance(v, str) and v.strip().lower() in {"nan", "inf", "-inf", "infinity", "-infinity"}:
        return float(v)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@dataclass
class Track:
    """A validation series reduced to what early stopping looks at: its best value and how long ago."""

    n: int = 0  # evaluations seen
    best_step: int | None = None
    best_loss: float | None = None
    since: int = 0  # evaluations since the best
    train_at_best: float | None = None  # smoothed training loss when the best was measured
    last_step: int | None = None
    last_loss: float | None = None

    def add(self, step: int, loss: float, train_now: float | None) -> None:
        self.n += 1
        self.last_step, self.last_loss = step, loss
        if self.best_loss is None or loss < self.best_loss:  # min_delta 0: any improvement counts
            self.best_step, self.best_loss, self.since, self.train_at_best = step, loss, 0, train_now
        else:
            self.since += 1


@dataclass
class Summary:
    """Everything the checks need, folded from the metric points in step order. JSON-serialisable."""

    last_step: int = 0
    last_at: float | None = None  # unix time of the newest metric point
    gaps: list[float] = field(default_factory=list)  # seconds between consecutive points, newest last
    points: int = 0
    train_n: int = 0
    early: list[float] = field(default_factory=list)  # the first `smoothing` training losses
    train: list[float] = field(default_factory=list)  # the latest `smoothing` training losses
    last_train_step: int | None = None
    window: list[float] = field(default_factory=list)  # the latest `smoothing` step validation losses
    valid: Track = field(default_factory=Track)  # smoothed step validation loss
    full: Track = field(default_factory=Track)  # full validation loss
    nonfinite: list[Any] | None = None  # [step, "training" | "validation" | "full validation", "nan" | "inf" | "-inf"]
    # Noise (standard deviation) of the raw training / step validation losses, from an exponentially
    # weighted mean of |second differences| (blind to a linear trend): what a real change must exceed.
    recent_train: list[float] = field(default_factory=list)
    recent_valid: list[float] = field(default_factory=list)
    train_noise: float | None = None
    valid_noise: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Summary:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        s = cls(**{k: v for k, v in d.items() if k in known and k not in {"valid", "full"}})
        s.valid = Track(**(d.get("valid") or {}))
        s.full = Track(**(d.get("full") or {}))
        return s

    @property
    def train_smooth(self) -> float | None:
        return _mean(self.train) if self.train else None

    def add(self, p: MetricSample, cfg: HealthSettings) -> bool:
        """Fold one point in. Points at or before a step already folded are ignored (False)."""
        if p.step <= self.last_step and self.points:
            return False
        self.points += 1
        self.last_step = p.step
        if p.created_at is not None:
            at = p.created_at.timestamp()
            if self.last_at is not None and at >= self.last_at:
                self.gaps = [*self.gaps, at - self.last_at][-GAPS_KEPT:]
            self.last_at = max(at, self.last_at or at)
        for name, v in (("training", p.train_loss), ("validation", p.valid_loss), ("full validation", p.full_valid_loss)):
            if v is not None and not _finite(v) and self.nonfinite is None:
                self.nonfinite = [p.step, name, str(v)]
        if _finite(p.train_loss):
            self.recent_train, self.train_noise = _noise(self.recent_train, float(p.train_loss), self.train_noise)  # type: ignore[arg-type]
            if len(self.early) < cfg.smoothing:
                self.early = [*self.early, float(p.train_loss)]  # type: ignore[arg-type]
            self.train = [*self.train, float(p.train_loss)][-cfg.smoothing :]  # type: ignore[arg-type]
            self.last_train_step = p.step
            self.train_n += 1
        if _finite(p.valid_loss):
            self.recent_valid, self.valid_noise = _noise(self.recent_valid, float(p.valid_loss), self.valid_noise)  # type: ignore[arg-type]
            self.window = [*self.window, float(p.valid_loss)][-cfg.smoothing :]  # type: ignore[arg-type]
            self.valid.add(p.step, _mean(self.window), self.train_smooth)
        if _finite(p.full_valid_loss):
            self.full.add(p.step, float(p.full_valid_loss), self.train_smooth)  # type: ignore[arg-type]
        return True


def _noise(recent: list[float], value: float, noise: float | None) -> tuple[list[float], float | None]:
    recent = [*recent, value][-3:]
    if len(recent) < 3:
        return recent, noise
    # For white noise of deviation s, E|x2 - 2 x1 + x0| = s * sqrt(6) * sqrt(2 / pi) ~ 1.95 s.
    d = abs(recent[2] - 2 * recent[1] + recent[0]) / 1.954
    return recent, d if noise is None else 0.9 * noise + 0.1 * d


def summarise(points: Sequence[MetricSample], cfg: HealthSettings = HealthSettings(), summary: Summary | None = None) -> Summary:
    s = summary or Summary()
    for p in sorted(points, key=lambda p: p.step):
        s.add(p, cfg)
    return s


def _checkpoint_at_or_before(checkpoints: Sequence[CheckpointSample], step: int) -> CheckpointSample | None:
    earlier = [c for c in checkpoints if c.step <= step]
    return max(earlier, key=lambda c: c.step) if earlier else None


def overfitting(s: Summary, checkpoints: Sequence[CheckpointSample], cfg: HealthSettings) -> Finding | None:
    # The provider measures the full validation loss once an epoch: with the usual 3-4 epochs that is
    # too few evaluations for any patience, so the smoothed step series judges until it is enough.
    track = s.full if s.full.n > cfg.patience else s.valid
    if track.n <= cfg.patience or track.since < cfg.patience or track.best_step is None or track.best_loss is None or track.last_loss is None:
        return None
    now_train, at_best = s.train_smooth, track.train_at_best
    if now_train is None or at_best is None or now_train >= at_best - cfg.significance * (s.train_noise or 0.0):
        return None  # training loss is not falling either: not overfitting (a plateau, or worse)
    # The full validation loss is measured on the whole set: its own noise is negligible.
    valid_noise = 0.0 if track is s.full else (s.valid_noise or 0.0)
    if track.last_loss <= track.best_loss + cfg.significance * valid_noise:
        return None  # not improving, but not clearly worse either: a plateau
    ckpt = _checkpoint_at_or_before(checkpoints, track.best_step)
    detail = (
        f"Validation loss was best at step {track.best_step} ({track.best_loss:.4f}) and has not improved for {track.since} "
        f"evaluations (now {track.last_loss:.4f} at step {track.last_step}) while training loss kept falling "
        f"({at_best:.4f} → {now_train:.4f}): the model is memorising the training set."
    )
    return Finding("overfitting", False, "Overfitting", detail, track.best_step, ckpt.model if ckpt else None)


def divergence(s: Summary, total_steps: int | None, cfg: HealthSettings) -> Finding | None:
    if s.nonfinite is not None:
        step, name, value = s.nonfinite
        return Finding("divergence", True, "Training diverged", f"The {name} loss is {value} at step {step}: the run is broken and will not recover.", step)
    if not total_steps or len(s.early) < cfg.smoothing or s.last_train_step is None or s.last_train_step < total_steps / 5:
        return None
    # The latest window must not overlap the early one, or the comparison says nothing.
    if s.train_n < 2 * cfg.smoothing:
        return None
    early, now = _mean(s.early), s.train_smooth
    if now is not None and early > 0 and now > cfg.divergence_factor * early:
        step = s.last_train_step
        detail = f"Training loss is {now:.4f} at step {step}, {now / early:.1f}x its early level ({early:.4f}). A lower learning rate multiplier usually helps."
        return Finding("divergence", True, "Training loss is climbing", detail, step)
    return None


def _stall_limit(s: Summary, status_since: datetime | None, cfg: HealthSettings) -> tuple[float, float, float | None] | None:
    """(silent since, allowed silence in seconds, median step seconds) for a running job, or None.

    With a step rhythm known (three points or more): stall_factor x the median step interval, at least
    stall_minimum. Before that (running, yet no step reported): the operator's queue threshold. After a
    pause the job runs again from its resume: the paused time is not silence."""
    since_status = status_since.timestamp() if status_since is not None else None
    if s.last_at is not None and len(s.gaps) >= 2:
        median = statistics.median(s.gaps)
        since = max(s.last_at, since_status) if since_status is not None else s.last_at
        return since, max(cfg.stall_minimum.total_seconds(), cfg.stall_factor * median), median
    if since_status is None:
        return None
    since = max(s.last_at, since_status) if s.last_at is not None else since_status
    return since, max(cfg.stall_minimum, cfg.queued_limit).total_seconds(), None


def stalled(s: Summary, status: str, status_since: datetime | None, now: datetime, cfg: HealthSettings) -> Finding | None:
    if status in {"queued", "validating_files"}:
        if status_since is not None and now - status_since > cfg.queued_limit:
            hours = (now - status_since).total_seconds() / 3600
            words = status.replace("_", " ")
            return Finding("queued_long", False, f"Still {words}", f"The job has been {words} for {hours:.1f} hours. The provider may be busy; nothing is wrong with the job yet.")
        return None
    limit = _stall_limit(s, status_since, cfg) if status == "running" else None
    if limit is None:
        return None
    since, allowed, median = limit
    silent = now.timestamp() - since
    if silent <= allowed:
        return None
    minutes = silent / 60
    said = f"{minutes:.0f} minutes" if minutes >= 1 else f"{silent:.0f} seconds"
    usual = f"a step usually takes {median:.0f} s" if median is not None else "no step has been reported yet"
    detail = f"No new metrics for {said} while running ({usual}). The provider may have a problem."
    return Finding("stalled", True, "Training seems stalled", detail, s.last_step or None)


def stall_possible_at(s: Summary, status: str, status_since: datetime | None, cfg: HealthSettings) -> datetime | None:
    """The earliest moment a stall (or a long queue) could be reported, or None: lets a caller skip the check."""
    if status in {"queued", "validating_files"}:
        return None if status_since is None else status_since + cfg.queued_limit
    limit = _stall_limit(s, status_since, cfg) if status == "running" else None
    if limit is None:
        return None
    since, allowed, _ = limit
    return datetime.fromtimestamp(since + allowed, UTC)


def best_checkpoint(checkpoints: Sequence[CheckpointSample], final_model: str | None) -> Finding | None:
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


def assess_summary(
    s: Summary,
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
    found = [divergence(s, total_steps, cfg), overfitting(s, checkpoints, cfg)]
    if status == "succeeded":
        found += [best_checkpoint(checkpoints, final_model), billed_tokens(trained_tokens, estimated_tokens, cfg)]
    else:
        found.append(stalled(s, status, status_since, now, cfg))
    return [f for f in found if f is not None]


def assess(points: Sequence[MetricSample], *, cfg: HealthSettings = HealthSettings(), **facts: Any) -> list[Finding]:
    """assess_summary over a whole series at once."""
    return assess_summary(summarise(points, cfg), cfg=cfg, **facts)
