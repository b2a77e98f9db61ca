"""Queue a Slack message in the outbox, once per idempotency key, in the caller's transaction (so the
state change and the message it causes commit together or not at all)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Job, OutboxMessage, Subscription


def enqueue(
    session: Session,
    key: str,
    *,
    kind: str,
    channel: str,
    payload: dict[str, Any] | None = None,
    sub: Subscription | None = None,
    job: Job | None = None,
    team_id: str | None = None,
) -> bool:
    """Add a message unless one with this key exists. True when added."""
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)) is not None:
        return False
    session.add(
        OutboxMessage(
            idempotency_key=key,
            kind=kind,
            channel_id=channel,
            payload=payload or {},
            subscription_id=sub.id if sub is not None else None,
            job_id=job.id if job is not None else (sub.job_id if sub is not None else None),
            team_id=team_id or (sub.team_id if sub is not None else None),
        )
    )
    return True
