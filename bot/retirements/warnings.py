"""Warn the team 30, 7 and 1 days before one of its fine-tuned models stops serving, once each.

The outbox's unique idempotency key (team, model, threshold) is what makes "once" hold across restarts
and several workers. A worker that first runs 5 days before the date posts the 7-day warning only: the
most urgent threshold crossed, not every one it missed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.messages.retirement import RetiringModel, retirement_warning
from bot.outbox.queue import enqueue
from bot.retirements.live import EndOfServing
from bot.retirements.table import RetirementTable, base_model_of
from storage.db import Database
from storage.models import Job, KeptAnswer

log = logging.getLogger(__name__)

THRESHOLDS = (30, 7, 1)


def threshold_for(days_left: int) -> int | None:
    """The most urgent warning due with this many days left; None when none is (too early, or past)."""
    if days_left < 0:
        return None
    crossed = [t for t in THRESHOLDS if days_left <= t]
    return min(crossed) if crossed else None


@dataclass(frozen=True)
class Planned:
    model: str
    threshold: int
    channel: str


def _key(team_id: str | None, model: str, threshold: int) -> str:
    digest = hashlib.sha256(f"{team_id}|{model}".encode()).hexdigest()[:32]
    return f"retire:{digest}:{threshold}"


class Ends(Protocol):
    def end_of(self, provider: str, model: str, *, base: str | None = None) -> EndOfServing: ...


class _TableOnly:
    def __init__(self, table: RetirementTable) -> None:
        self.table = table

    def end_of(self, provider: str, model: str, *, base: str | None = None) -> EndOfServing:
        b = base_model_of(model, known_base=base)
        r = self.table.lookup(provider, b)
        return EndOfServing(model, b, r.serving_ends if r else None, r.training_ends if r else None, "ftbot's table")


def plan_retirement_warnings(
    db: Database, ends: Ends | RetirementTable, *, today: date, notify_channel: str | None, models: Collection[str] | None = None
) -> list[Planned]:
    """Queue the warnings due today (for `models` only, when given: a model that just appeared is
    covered at once rather than at the next hourly check). Returns what was newly queued."""
    if isinstance(ends, RetirementTable):
        ends = _TableOnly(ends)
    with db.session() as s:
        q = select(Job).where(Job.fine_tuned_model.is_not(None), Job.model_deleted_at.is_(None)).order_by(Job.created_at)
        if models is not None:
            q = q.where(Job.fine_tuned_model.in_(list(models)))
        jobs = s.scalars(q).all()
        candidates = []
        seen: set[tuple[str | None, str]] = set()
        for job in jobs:
            model = job.fine_tuned_model or ""
            if (job.team_id, model) in seen:
                continue
            seen.add((job.team_id, model))
            r = ends.end_of(job.provider, model, base=job.base_model)
            base = r.base_model
            if r.serving_ends is None:
                continue
            days_left = (r.serving_ends - today).days
            threshold = threshold_for(days_left)
            channel = notify_channel or job.origin_channel
            if threshold is None or channel is None:
                continue
            kept = s.scalar(select(func.count()).select_from(KeptAnswer).where(KeptAnswer.provider == job.provider, KeptAnswer.model == model)) or 0
            view = RetiringModel(model, job.provider, base, r.serving_ends, days_left, job.provider_job_id, job.started_by, r.training_ends, r.source, kept)
            candidates.append((job.team_id, channel, threshold, view))
    planned = []
    for team_id, channel, threshold, view in candidates:
        try:
            with db.session() as s:
                added = enqueue(s, _key(team_id, view.model, threshold), kind="post", channel=channel, team_id=team_id, payload=retirement_warning(view, today))
        except IntegrityError:
            added = False  # another worker queued the same warning a moment ago
        if added:
            planned.append(Planned(view.model, threshold, channel))
            log.info("retirement warning queued: %s stops serving in %d days (%d-day warning)", view.model, view.days_left, threshold)
    return planned
