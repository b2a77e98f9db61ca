"""Jobs in the database: creating rows from provider jobs, resolving ids, applying new events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bot.errors import UserError
from bot.jobs.health import as_loss
from bot.mrkdwn import code
from bot.provider.base import Checkpoint as ProviderCheckpoint
from bot.provider.base import Job as ProviderJob
from bot.provider.base import JobEvent as ProviderEvent
from bot.provider.base import is_final
from storage.models import Checkpoint, Job, JobEvent, MetricPoint
from storage.types import utcnow

# Bind parameters per IN (…) list: PostgreSQL takes at most 65,535 in a statement and SQLite 32,766,
# while one poll can bring far more events (a long job first seen after downtime).
IN_CHUNK = 1000

METRIC_KEYS = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def ts(unix: int | float | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


def json_safe(value: Any) -> Any:
    """NaN and infinities as the strings "NaN", "Infinity", "-Infinity": JSON has no such numbers
    (PostgreSQL refuses them in a json column), yet a diverged run reports exactly these and the
    health check must still see them (bot.jobs.health.as_loss reads both forms)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _stored(v: float | None) -> float | None:
    """A float column keeps finite values only (SQLite would turn NaN into NULL anyway)."""
    return v if v is not None and math.isfinite(v) else None


def apply_provider_job(row: Job, pj: ProviderJob, now: datetime | None = None) -> bool:
    """Copy the provider's view onto our row. True when the status changed."""
    changed = row.status != pj.status
    if changed or row.status_since is None:
        row.status_since = now or utcnow()
    row.status = pj.status
    row.is_final = is_final(pj.status)
    row.base_model = pj.model
    row.fine_tuned_model = pj.fine_tuned_model
    row.training_file = pj.training_file
    row.validation_file = pj.validation_file
    row.method = pj.method
    row.hyperparameters = dict(pj.hyperparameters)
    row.seed = pj.seed
    if pj.suffix:
        row.suffix = pj.suffix
    row.error = None if pj.error is None else {"code": pj.error.code, "message": pj.error.message, "param": pj.error.param}
    row.trained_tokens = pj.trained_tokens
    row.finished_at = ts(pj.finished_at)
    row.estimated_finish = ts(pj.estimated_finish)
    if row.created_at is None:
        row.created_at = ts(pj.created_at)
    return changed


def apply_fresh_status(row: Job, pj: ProviderJob) -> None:
    """Apply a status read outside the poller (a command, a button) without closing the job.

    A job that has just become final stays open for the poller, whose final pass fetches the last
    events and posts the alert and the chart; a job already closed is left as it is.
    """
    if row.is_final:
        return
    apply_provider_job(row, pj)
    row.is_final = False


NOT_FOUND = "not_found"
NOT_FOUND_MESSAGE = (
    "The provider has no such job any more (it answered 404): it was deleted there, or the API key now "
    "belongs to another organisation or project. ftbot has stopped following it."
)


def close_not_found(row: Job, now: datetime) -> bool:
    """Close a job the provider no longer knows, so it is not polled forever. True when it closed now."""
    if row.is_final:
        return False
    row.status = NOT_FOUND
    row.status_since = now
    row.is_final = True
    row.error = {"code": NOT_FOUND, "message": NOT_FOUND_MESSAGE, "param": None}
    row.finished_at = row.finished_at or now
    row.estimated_finish = None
    return True


def new_job_row(pj: ProviderJob, *, team_id: str | None, started_by: str | None, channel: str | None, idempotency_key: str | None, provider: str = "openai") -> Job:
    row = Job(
        team_id=team_id,
        provider=provider,
        provider_job_id=pj.id,
        idempotency_key=idempotency_key,
        status=pj.status,
        base_model=pj.model,
        created_at=ts(pj.created_at),
        started_by=started_by,
        origin_channel=channel,
        latest_metrics={},
        hyperparameters={},
        health={},
    )
    apply_provider_job(row, pj)
    return row


def resolve_job(session: Session, team_id: str | None, ref: str) -> Job:
    """A job of this team by id or unique prefix."""
    ref = ref.strip()
    if len(ref) < 4:
        raise UserError(f"{code(ref[:20])} is too short to name a job: give at least 4 characters of its id.")
    q = select(Job).where(Job.provider_job_id.startswith(ref, autoescape=True))
    q = q.where(Job.team_id == team_id)  # data is always scoped to the asking team
    rows = session.scalars(q.limit(6)).all()
    exact = [r for r in rows if r.provider_job_id == ref]
    if len(exact) == 1:
        return exact[0]
    rows = exact or rows
    if not rows:
        raise UserError(f"No job matches {code(ref[:40])}. `/ft list` shows your jobs.")
    if len(rows) > 1:
        # Ids of different providers can share a prefix (or, rarely, be equal): name each one's provider.
        several = len({r.provider for r in rows}) > 1
        shown = ", ".join(f"`{r.provider_job_id}`" + (f" ({r.provider})" if several else "") for r in rows[:5])
        raise UserError(f"{code(ref[:40])} matches several jobs: {shown}. Give more of the id.")
    return rows[0]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A newly stored event as the thread replies and the health check read it (no database id)."""

    provider_event_id: str
    created_at: datetime | None
    level: str
    type: str
    message: str
    data: dict[str, Any] | None


@dataclass
class AppliedEvents:
    stored: list[StoredEvent]  # newly stored, oldest first
    checkpoint_announced: bool


def apply_events(session: Session, job: Job, events: Sequence[ProviderEvent]) -> AppliedEvents:
    """Store events we have not seen (the unique constraint is the final guard) and their metrics."""
    if not events:
        return AppliedEvents([], False)
    known: set[str] = set()
    for part in chunks([e.id for e in events]):
        known.update(session.scalars(select(JobEvent.provider_event_id).where(JobEvent.job_id == job.id, JobEvent.provider_event_id.in_(part))))
    rows: list[dict[str, Any]] = []
    steps: dict[int, ProviderEvent] = {}
    announced = False
    for e in events:
        if e.id in known:
            continue
        known.add(e.id)
        rows.append({
            "job_id": job.id,
            "provider_event_id": e.id,
            "created_at": ts(e.created_at),
            "level": e.level,
            "type": e.type,
            "message": e.message,
            "data": json_safe(e.data),
        })
        if e.type == "metrics" and e.data and isinstance(e.data.get("step"), int | float):
            steps[int(e.data["step"])] = e
        elif "checkpoint" in e.message.lower():
            announced = True
    # Inserted as plain rows, a statement per chunk: a job first seen with tens of thousands of events
    # would otherwise cost an ORM object and (on SQLite) a statement each. What the caller reads of
    # them (the thread replies, the health check) needs no database id: StoredEvent.
    for part in chunks(rows):
        session.execute(insert(JobEvent), list(part))
    stored = [StoredEvent(r["provider_event_id"], r["created_at"], r["level"], r["type"], r["message"], r["data"]) for r in rows]
    if steps:
        existing: dict[int, MetricPoint] = {}
        for part in chunks(list(steps)):
            existing.update((p.step, p) for p in session.scalars(select(MetricPoint).where(MetricPoint.job_id == job.id, MetricPoint.step.in_(part))))
        points = []
        for step, e in sorted(steps.items()):
            d = e.data or {}
            if step in existing:
                # A trainer that logs its evaluation apart from the training loss of the same step
                # (Hugging Face's Trainer, read from a Ray job's log): the later values join the point.
                _fill(existing[step], d)
            else:
                points.append({
                    "job_id": job.id,
                    "step": step,
                    "total_steps": d.get("total_steps"),
                    "train_loss": _stored(as_loss(d.get("train_loss"))),
                    "train_accuracy": _stored(as_loss(d.get("train_mean_token_accuracy"))),
                    "valid_loss": _stored(as_loss(d.get("valid_loss"))),
                    "valid_accuracy": _stored(as_loss(d.get("valid_mean_token_accuracy"))),
                    "full_valid_loss": _stored(as_loss(d.get("full_valid_loss"))),
                    "full_valid_accuracy": _stored(as_loss(d.get("full_valid_mean_token_accuracy"))),
                    "created_at": ts(e.created_at),
                })
        for part in chunks(points):
            session.execute(insert(MetricPoint), list(part))
        last_step, last = max(steps.items())
        if job.step is None or last_step >= job.step:
            d = last.data or {}
            job.step = last_step
            if d.get("total_steps"):
                job.total_steps = int(d["total_steps"])
            latest = dict(job.latest_metrics or {})
            # train metrics come every step, validation only on some: keep the latest of each
            for key in METRIC_KEYS:
                for ev in sorted(steps.values(), key=lambda x: x.data["step"]):
                    if _stored(as_loss((ev.data or {}).get(key))) is not None:
                        latest[key] = ev.data[key]
            job.latest_metrics = latest
    job.last_event_id = events[-1].id
    session.flush()
    return AppliedEvents(stored, announced)


def _fill(point: MetricPoint, d: dict[str, Any]) -> None:
    for column, key in (("train_loss", "train_loss"), ("train_accuracy", "train_mean_token_accuracy"), ("valid_loss", "valid_loss"), ("valid_accuracy", "valid_mean_token_accuracy"), ("full_valid_loss", "full_valid_loss"), ("full_valid_accuracy", "full_valid_mean_token_accuracy")):
        if getattr(point, column) is None:
            setattr(point, column, _stored(as_loss(d.get(key))))


def apply_checkpoints(session: Session, job: Job, checkpoints: Sequence[ProviderCheckpoint]) -> int:
    known = set(session.scalars(select(Checkpoint.provider_checkpoint_id).where(Checkpoint.job_id == job.id)))
    added = 0
    for c in checkpoints:
        if c.id in known:
            continue
        known.add(c.id)  # a list naming one id twice stores it once
        session.add(
            Checkpoint(
                job_id=job.id,
                provider_checkpoint_id=c.id,
                step_number=c.step_number,
                model_name=c.model,
                metrics=json_safe(dict(c.metrics)),
                created_at=ts(c.created_at),
            )
        )
        added += 1
    return added


def recent_jobs(session: Session, team_id: str | None, limit: int) -> list[Job]:
    q = select(Job).where(Job.team_id == team_id).order_by(Job.created_at.desc(), Job.id.desc())
    return list(session.scalars(q.limit(limit)))


def count_jobs(session: Session, team_id: str | None) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(Job.team_id == team_id)) or 0
