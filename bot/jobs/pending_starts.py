"""Starts whose answer was lost: recorded once per idempotency key, so the job is looked for (by the
worker, bot/jobs/lost_starts.py) instead of created a second time."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.provider.base import JobSpec, provider_label
from bot.services import Services
from storage.errors import is_race_on
from storage.models import PendingStart
from storage.types import utcnow

# How long a lost start is looked for before the starter is told nothing was made. A create that
# timed out is either carried out within seconds or not at all; this leaves ample room.
LOOK_FOR = timedelta(minutes=15)
FIRST_CHECK = timedelta(seconds=5)


def pending_note(provider: str) -> str:
    minutes = int(LOOK_FOR.total_seconds() // 60)
    return (
        f"ftbot keeps looking for it at {provider_label(provider)} for {minutes} minutes: if it was made, its card appears "
        "here; if not, you are told. Don't start it again meanwhile (that could make and bill a second job)."
    )


def record_pending(services: Services, *, key: str, team_id: str | None, provider: str, user: str | None, channel: str | None, spec: JobSpec, reason: str) -> None:
    now = utcnow()
    try:
        with services.db.session() as s:
            s.add(PendingStart(idempotency_key=key, team_id=team_id, provider=provider, started_by=user, channel_id=channel, spec=asdict(spec), reason=reason[:2000], next_check_at=now + FIRST_CHECK, created_at=now))
    except IntegrityError as exc:
        if not is_race_on(exc, {"uq_pending_starts_key"}):
            raise
        # Recorded already (a redelivery of the same request lost its answer too): keep looking.


def still_pending(services: Services, key: str) -> bool:
    """A start under this key lost its answer and its job has not shown yet: creating it again now
    could race the lost request, so only looking is allowed."""
    with services.db.session() as s:
        return s.scalar(select(PendingStart.id).where(PendingStart.idempotency_key == key, PendingStart.resolved_at.is_(None))) is not None
