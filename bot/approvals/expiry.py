"""The worker's approvals step: expire what ran out of time, resolve what a dead process left running."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.approvals import audit
from bot.approvals.execution import recheck_late, resolve_stuck
from bot.approvals.messages import deliver, plan_edit, post_key
from bot.events import ApprovalClosed, announce
from bot.messages.approval import unposted_notice
from bot.outbox.queue import enqueue
from bot.services import Services
from storage.models import ApprovalRequest, OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)


def expire_due(services: Services) -> int:
    now = utcnow()
    with services.db.session() as s:
        due = list(s.scalars(select(ApprovalRequest.id).where(ApprovalRequest.status == "pending", ApprovalRequest.expires_at <= now).limit(500)))
    channels: set[str] = set()
    for rid in due:
        with services.db.session() as s:
            req = s.get(ApprovalRequest, rid, with_for_update=True, populate_existing=True)
            if req is None or req.status != "pending":
                continue  # a vote or another worker got there first
            req.status, req.decided_at = "expired", now
            audit.record(s, req, "expired", None)
            announce(s, ApprovalClosed(req.id, req.kind, req.status), services=services)
            plan_edit(s, req)
            if req.channel_id:
                channels.add(req.channel_id)
    for c in channels:
        deliver(services, c)
    return len(due)


def fail_unposted(services: Services) -> int:
    """A request Slack would not post (a private approval channel without the bot, say) can get no
    votes: it fails at once with Slack's reason, and the requester hears it in a DM."""
    now = utcnow()
    with services.db.session() as s:
        rows = s.execute(
            select(ApprovalRequest.id, OutboxMessage.last_error)
            .join(OutboxMessage, OutboxMessage.idempotency_key == ApprovalRequest.message_key)
            .where(ApprovalRequest.status == "pending", OutboxMessage.gave_up_at.is_not(None), OutboxMessage.delivered_at.is_(None))
            .limit(500)
        ).all()
    told: list[str] = []
    for rid, error in rows:
        with services.db.session() as s:
            req = s.get(ApprovalRequest, rid, with_for_update=True, populate_existing=True)
            if req is None or req.status != "pending":
                continue
            reason = f"Slack would not post the request in <#{req.channel_id}> ({error or 'refused'})"
            req.status, req.decided_at, req.error = "failed", now, reason[:500]
            audit.record(s, req, "failed", None, error=reason)
            enqueue(s, f"{post_key(req)}:unposted", kind="post", channel=req.requested_by, team_id=req.team_id, payload=unposted_notice(req.id, req.kind, req.target, req.channel_id or "", error or "refused"))
            told.append(req.requested_by)
    for user in told:
        deliver(services, user)
    return len(told)


def sweep(services: Services) -> None:
    """One pass; called from the worker's poll loop."""
    try:
        fail_unposted(services)
        expire_due(services)
        resolve_stuck(services)
        recheck_late(services)
    except Exception:  # noqa: BLE001 - the worker keeps running
        log.exception("approvals sweep failed")
