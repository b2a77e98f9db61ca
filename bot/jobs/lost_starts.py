"""The worker's side of a start whose answer was lost: look its key up at the provider until the job
shows (store it, watch it, post its card where it was asked: exactly what the start would have done)
or LOOK_FOR has passed (tell the starter that nothing was made, so starting again is safe)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.events import StartNotMade, announce
from bot.jobs.lifecycle import store_started
from bot.jobs.pending_starts import LOOK_FOR
from bot.mrkdwn import clip, escape
from bot.outbox.deliver import deliver_now
from bot.outbox.queue import enqueue
from bot.provider.base import JobSpec, ProviderError, provider_label
from bot.services import Services
from storage.models import Job, PendingStart
from storage.types import utcnow

log = logging.getLogger(__name__)

BATCH = 20


@dataclass(frozen=True)
class Resolved:
    key: str
    outcome: str  # found | not_made
    job_id: str | None
    reason: str


def _next_check(checks: int) -> timedelta:
    return timedelta(seconds=min(120, 5 * 2 ** min(checks, 5)))


def check_lost_starts(services: Services, now: datetime | None = None) -> list[Resolved]:
    """One pass over the open lost starts that are due. Safe with several workers: each row is taken
    with a conditional update before the provider is asked."""
    now = now or utcnow()
    with services.db.session() as s:
        due = s.execute(
            select(PendingStart.id, PendingStart.next_check_at).where(PendingStart.resolved_at.is_(None), PendingStart.next_check_at <= now).order_by(PendingStart.next_check_at).limit(BATCH)
        ).all()
    out: list[Resolved] = []
    for row_id, due_at in due:
        with services.db.session() as s:
            row = s.get(PendingStart, row_id)
            took = s.execute(
                update(PendingStart)
                .where(PendingStart.id == row_id, PendingStart.next_check_at == due_at, PendingStart.resolved_at.is_(None))
                .values(next_check_at=now + _next_check(row.checks), checks=row.checks + 1)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not took:
                continue  # another worker has it
            pending = {c: getattr(row, c) for c in ("idempotency_key", "team_id", "provider", "started_by", "channel_id", "spec", "reason", "created_at")}
        resolved = _check_one(services, row_id, pending, now)
        if resolved is not None:
            out.append(resolved)
    return out


def _check_one(services: Services, row_id: int, p: dict, now: datetime) -> Resolved | None:
    key, provider = p["idempotency_key"], p["provider"]
    with services.db.session() as s:
        stored = s.scalar(select(Job.provider_job_id).where(Job.idempotency_key == key))
    if stored is not None:
        # A redelivery of the same request (or an approval's re-check) found and stored it meanwhile.
        _close(services, row_id, "found", stored, now)
        return Resolved(key, "found", stored, p["reason"] or "")
    try:
        pj = services.provider_for(provider).find_job_by_key(key)
    except ProviderError as exc:
        log.warning("looking for the lost start %s at %s failed: %s", key, provider, exc.reason)
        return None
    if pj is not None:
        spec = JobSpec(**p["spec"])
        started = store_started(services, pj, spec, team_id=p["team_id"], user=p["started_by"], channel=p["channel_id"] or p["started_by"] or "", idempotency_key=key, provider=provider)
        _close(services, row_id, "found", pj.id, now)
        log.info("the lost start %s was made at %s as %s: stored and watched", key, provider, pj.id)
        deliver_now(services, started.subscription_ids)
        return Resolved(key, "found", pj.id, p["reason"] or "")
    if now - p["created_at"] < LOOK_FOR:
        return None
    channel = p["channel_id"] or p["started_by"]
    with services.db.session() as s:
        closed = _close_in(s, row_id, "not_made", None, now)
        if closed:
            # With the close: whoever waited on this start (a migration) moves on once, with it.
            announce(s, StartNotMade(key, provider, p["reason"] or ""), services=services)
        if closed and channel:
            enqueue(s, f"lost-start:{key}"[:128], kind="post", channel=channel, team_id=p["team_id"], payload=not_made_message(p, provider))
    if closed and channel:
        deliver_now(services, channels=[channel])
    return Resolved(key, "not_made", None, p["reason"] or "") if closed else None


def not_made_message(p: dict, provider: str) -> dict:
    who = f"<@{p['started_by']}> " if p.get("started_by") else ""
    spec = p.get("spec") or {}
    what = f"`{escape(clip(spec.get('model') or '', 120))}` on `{escape(clip(spec.get('training_file') or '', 120))}`"
    minutes = int(LOOK_FOR.total_seconds() // 60)
    text = (
        f"{who}{provider_label(provider)} never made the job you started ({what}): its answer was lost "
        f"({escape(clip(p.get('reason') or 'no answer', 300))}) and no such job showed in {minutes} minutes. "
        "Nothing was started or billed; start it again when you are ready."
    )
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _close(services: Services, row_id: int, outcome: str, job_id: str | None, now: datetime) -> bool:
    with services.db.session() as s:
        return _close_in(s, row_id, outcome, job_id, now)


def _close_in(s, row_id: int, outcome: str, job_id: str | None, now: datetime) -> bool:  # noqa: ANN001
    return bool(
        s.execute(
            update(PendingStart).where(PendingStart.id == row_id, PendingStart.resolved_at.is_(None)).values(resolved_at=now, outcome=outcome, provider_job_id=job_id).execution_options(synchronize_session=False)
        ).rowcount
    )
