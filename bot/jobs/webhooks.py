"""Provider webhooks in the database: record a verified delivery once, ask for its job to be polled
now, and hand the worker what is pending.

The request handler only writes here (no provider call), so it answers in milliseconds; the worker,
possibly in another process, reads the pending rows a moment later and polls those jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from bot.provider.base import WebhookEvent
from storage.db import Database
from storage.errors import is_race_on
from storage.models import Job, WebhookDelivery
from storage.types import utcnow

# The webhook-id is unique: a second insert is the provider's redelivery.
REDELIVERY = frozenset({"webhook_deliveries_webhook_id_key"})

# Providers retry a delivery for up to 72 hours; a row outlives that comfortably.
KEEP = timedelta(days=7)
# A job the provider still shows as running after a webhook said it ended (its API lagging behind
# the webhook) is tried again on the next fast checks, then left to the regular polls.
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Pending:
    row_id: int
    provider_job_id: str
    job_row_id: int | None  # None: a job ftbot has not seen yet
    job_is_final: bool
    attempts: int


def record(db: Database, event: WebhookEvent, *, provider: str = "openai") -> bool:
    """Store a verified delivery and make its job due now. False when this webhook-id was already
    received (a redelivery): then nothing changes."""
    now = utcnow()
    try:
        with db.session() as s:
            s.add(WebhookDelivery(provider=provider, webhook_id=event.id, event_type=event.type, provider_job_id=event.job_id, received_at=now, attempts=0))
            s.flush()
            # The regular cycle also picks the job up at once, should no worker run the fast check.
            s.execute(update(Job).where(Job.provider == provider, Job.provider_job_id == event.job_id, Job.is_final.is_(False)).values(next_poll_at=now))
    except IntegrityError as exc:
        # A redelivery of this webhook-id: already stored. Any other constraint is a real failure.
        if not is_race_on(exc, REDELIVERY):
            raise
        return False
    return True


def pending(db: Database, *, limit: int = 500) -> list[Pending]:
    with db.session() as s:
        rows = s.execute(
            select(WebhookDelivery.id, WebhookDelivery.provider_job_id, Job.id, Job.is_final, WebhookDelivery.attempts)
            .outerjoin(Job, (Job.provider == WebhookDelivery.provider) & (Job.provider_job_id == WebhookDelivery.provider_job_id))
            .where(WebhookDelivery.processed_at.is_(None))
            .order_by(WebhookDelivery.received_at)
            .limit(limit)
        ).all()
    return [Pending(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]


def finish(db: Database, row_ids: list[int], outcome: str) -> None:
    if not row_ids:
        return
    with db.session() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(row_ids), WebhookDelivery.processed_at.is_(None)).values(processed_at=utcnow(), outcome=outcome))


def retry_later(db: Database, row_ids: list[int]) -> list[int]:
    """Count one more attempt; the ids that have now had their last one."""
    if not row_ids:
        return []
    with db.session() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(row_ids)).values(attempts=WebhookDelivery.attempts + 1))
        return list(s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.id.in_(row_ids), WebhookDelivery.attempts >= MAX_ATTEMPTS)))


def prune(db: Database, *, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - KEEP
    with db.session() as s:
        return s.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < cutoff)).rowcount or 0
