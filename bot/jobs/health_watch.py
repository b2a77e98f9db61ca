"""Training health, wired: on every poll of a job, fold its new metric points into the summary kept
on the job row, judge it when something could have changed, and queue each finding once.

Runs inside the transaction that stores the poll (called from notify.plan_job_messages, which
queues the messages), so the summary, the record of what was said and the Slack messages commit
together. The outbox's unique keys (`s<subscription>:health:<kind>`) are what make "once" hold
across restarts and several workers; the `said` list on the job spares re-judging and the outbox
lookups on later polls.

Per poll the cost is a few dozen numbers read from the job row: the history is loaded once in a
job's life (a job first seen before this existed), checkpoints only when a finding would name one
or the job succeeded, the dataset only when a job succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.datasets.tokens import encoding_name_for
from bot.jobs.health import (
    CheckpointSample,
    Finding,
    HealthSettings,
    MetricSample,
    Summary,
    as_loss,
    assess_summary,
    overfitting,
    stall_possible_at,
)
from bot.jobs.store import StoredEvent
from bot.settings import Settings
from storage.models import Checkpoint, Dataset, Job, MetricPoint


def health_settings(settings: Settings) -> HealthSettings:
    return HealthSettings(
        patience=settings.health_patience,
        smoothing=settings.health_smoothing,
        divergence_factor=settings.health_divergence,
        stall_factor=settings.health_stall_factor,
        stall_minimum=timedelta(minutes=settings.health_stall_minutes),
        queued_limit=timedelta(minutes=settings.health_queued_minutes),
        billed_tolerance=settings.health_tokens_percent / 100,
    )


def samples_of(events: Sequence[StoredEvent]) -> list[MetricSample]:
    out = []
    for e in events:
        d = e.data or {}
        if e.type != "metrics" or not isinstance(d.get("step"), int | float) or isinstance(d.get("step"), bool):
            continue
        out.append(MetricSample(int(d["step"]), as_loss(d.get("train_loss")), as_loss(d.get("valid_loss")), as_loss(d.get("full_valid_loss")), e.created_at))
    return sorted(out, key=lambda p: p.step)


def _history(session: Session, job: Job, before: int | None) -> list[MetricPoint]:
    q = select(MetricPoint.step, MetricPoint.train_loss, MetricPoint.valid_loss, MetricPoint.full_valid_loss, MetricPoint.created_at).where(MetricPoint.job_id == job.id)
    if before is not None:
        q = q.where(MetricPoint.step < before)
    return [MetricSample(*row) for row in session.execute(q.order_by(MetricPoint.step))]


def _checkpoints(session: Session, job: Job) -> list[CheckpointSample]:
    out = []
    # Two at one step (a Together LoRA job's merged model, then its adapter): the one stored first,
    # the merged model, is the one a finding names for that step.
    for c in session.scalars(select(Checkpoint).where(Checkpoint.job_id == job.id).order_by(Checkpoint.step_number, Checkpoint.id)):
        m = c.metrics or {}
        full, step = as_loss(m.get("full_valid_loss")), as_loss(m.get("valid_loss"))
        out.append(CheckpointSample(c.step_number, c.model_name, full if full is not None else step))
    return out


def estimated_tokens(session: Session, job: Job) -> int | None:
    """Billed training tokens the dataset check predicts for this job: the checked dataset's tokens
    per epoch (counted in the job's model's encoding) times the job's own epoch count."""
    if not job.training_file:
        return None
    row = session.scalars(
        select(Dataset).where(Dataset.team_id == job.team_id, Dataset.provider_file_id == job.training_file).order_by(Dataset.created_at.desc())
    ).first()
    v = (row.validation or {}) if row is not None else {}
    billed, epochs, model = v.get("billed_tokens"), v.get("epochs"), v.get("model")
    n_epochs = (job.hyperparameters or {}).get("n_epochs")
    if not billed or not epochs or not model or not isinstance(n_epochs, int) or n_epochs < 1:
        return None
    if v.get("approximate"):
        # A stand-in encoding for Together's or Ray's tokenizer can be 10-20 % off by itself: comparing
        # the provider's count with it would report a difference that is only the tokenizer's.
        return None
    if encoding_name_for(model) != encoding_name_for(job.base_model):
        return None
    return round(billed / epochs * n_epochs)


def watch_job(session: Session, job: Job, new_events: Sequence[StoredEvent], *, settings: Settings, status_changed: bool, became_final: bool, now: datetime) -> list[Finding]:
    """Fold the new points into the job's summary, judge it when something could have changed, and
    return the findings not said before (now marked said: the caller queues them in this transaction)."""
    cfg = health_settings(settings)
    state: dict[str, Any] = dict(job.health or {})
    said: set[str] = set(state.get("said") or ())
    new = samples_of(new_events)
    if job.health is None:
        # A job ftbot followed before health was watched: its history is read this once.
        summary = Summary()
        for p in _history(session, job, new[0].step if new else None):
            summary.add(p, cfg)
    else:
        summary = Summary.from_dict(state.get("summary"))
    if sum(summary.add(p, cfg) for p in new) or job.health is None:
        state["summary"] = summary.to_dict()
    findings: list[Finding] = []
    due = stall_possible_at(summary, job.status, job.status_since, cfg)
    if settings.health_alerts and (new or status_changed or became_final or (due is not None and now >= due)):
        succeeded = job.status == "succeeded"
        wants_checkpoints = succeeded or ("overfitting" not in said and overfitting(summary, (), cfg) is not None)
        findings = assess_summary(
            summary,
            status=job.status,
            total_steps=job.total_steps,
            checkpoints=_checkpoints(session, job) if wants_checkpoints else (),
            status_since=job.status_since,
            now=now,
            final_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens if succeeded else None,
            estimated_tokens=estimated_tokens(session, job) if succeeded and job.trained_tokens else None,
            cfg=cfg,
        )
        findings = [f for f in findings if f.kind not in said]
        if findings:
            state["said"] = sorted(said | {f.kind for f in findings})
    if job.health is None or state != job.health:
        job.health = state
    return findings
