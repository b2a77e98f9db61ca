"""Warn the team 30, 7 and 1 days before one of its fine-tuned models stops serving, once each, per
date announced.

Each warning is recorded as a retirement notice keyed by (team, provider, model, date, threshold), in
the same transaction as its outbox message (whose idempotency key carries the same parts): the unique
constraints make "once" hold across restarts and several workers. A worker that first runs 5 days
before the date posts the 7-day warning only: the most urgent threshold crossed, not every one it
missed. When the date moves (the provider's list changes, or the team's file), the newest notice's
date differs from today's answer: one message gives the new date and the old one, and the thresholds
then count towards the new date.
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
from sqlalchemy.orm import Session

from bot.messages.retirement import RetiringModel, retirement_warning
from bot.outbox.queue import enqueue
from bot.retirements.live import EndOfServing
from bot.retirements.table import RetirementTable, base_model_of
from storage.db import Database
from storage.errors import is_race_on
from storage.models import Job, KeptAnswer, OutboxMessage, RetirementNotice

log = logging.getLogger(__name__)

THRESHOLDS = (30, 7, 1)
# Another worker queued the same warning (its outbox key) or recorded the same notice a moment ago.
WARNING_RACE = frozenset({"outbox_idempotency_key_key", "uq_retirement_notices_date_threshold"})


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


def _key(team_id: str | None, model: str, threshold: int, serving_ends: date | None = None) -> str:
    digest = hashlib.sha256(f"{team_id}|{model}".encode()).hexdigest()[:32]
    # Without a date: the key warnings had before they were keyed by date (read, never written).
    return f"retire:{digest}:{threshold}" + (f":{serving_ends:%Y-%m-%d}" if serving_ends else "")


def _last_announced(s: Session, team_id: str | None, provider: str, model: str) -> RetirementNotice | None:
    return s.scalars(
        select(RetirementNotice)
        .where(RetirementNotice.team_id == (team_id or ""), RetirementNotice.provider == provider, RetirementNotice.model == model)
        .order_by(RetirementNotice.id.desc())
        .limit(1)
    ).first()


def _noticed(s: Session, team_id: str | None, provider: str, model: str, serving_ends: date, threshold: int) -> bool:
    found = s.scalar(
        select(RetirementNotice.id).where(
            RetirementNotice.team_id == (team_id or ""), RetirementNotice.provider == provider, RetirementNotice.model == model,
            RetirementNotice.serving_ends == serving_ends, RetirementNotice.threshold == threshold,
        )
    )
    return found is not None


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
                continue  # a date that became unknown is not a move: the last one told stands
            days_left = (r.serving_ends - today).days
            threshold = threshold_for(days_left)
            channel = notify_channel or job.origin_channel
            if channel is None:
                continue
            last = _last_announced(s, job.team_id, job.provider, model)
            moved_from = last.serving_ends if last is not None and last.serving_ends != r.serving_ends else None
            if moved_from is None:
                if threshold is None or _noticed(s, job.team_id, job.provider, model, r.serving_ends, threshold):
                    continue
                if last is None and s.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == _key(job.team_id, model, threshold))) is not None:
                    continue  # warned before warnings were keyed by date (that warning named today's date)
            elif days_left < 0 and threshold is None and last.serving_ends < today:
                continue  # both dates are past: nothing left to tell
            kept = s.scalar(select(func.count()).select_from(KeptAnswer).where(KeptAnswer.provider == job.provider, KeptAnswer.model == model)) or 0
            view = RetiringModel(model, job.provider, base, r.serving_ends, days_left, job.provider_job_id, job.started_by, r.training_ends, r.source, kept, moved_from)
            candidates.append((job.team_id, channel, threshold or 0, view))
    planned = []
    for team_id, channel, threshold, view in candidates:
        try:
            with db.session() as s:
                key = _key(team_id, view.model, threshold, view.serving_ends)
                added = enqueue(s, key, kind="post", channel=channel, team_id=team_id, payload=retirement_warning(view, today))
                if added:
                    s.add(RetirementNotice(team_id=team_id or "", provider=view.provider, model=view.model, serving_ends=view.serving_ends, threshold=threshold))
        except IntegrityError as exc:
            if not is_race_on(exc, WARNING_RACE):
                raise
            added = False  # another worker queued the same warning a moment ago
        if added:
            planned.append(Planned(view.model, threshold, channel))
            if view.moved_from is not None:
                log.info("retirement date moved: %s now stops serving on %s (was %s)", view.model, view.serving_ends, view.moved_from)
            else:
                log.info("retirement warning queued: %s stops serving in %d days (%d-day warning)", view.model, view.days_left, threshold)
    return planned
