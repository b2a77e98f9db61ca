"""The worker's approvals step: expire what ran out of time, resolve what a dead process left running."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.approvals import audit
from bot.approvals.execution import recheck_late, resolve_stuck
from bot.approvals.messages import deliver, plan_edit
from bot.services import Services
from storage.models import ApprovalRequest
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
            plan_edit(s, req)
            if req.channel_id:
                channels.add(req.channel_id)
    for c in channels:
        deliver(services, c)
    return len(due)


def sweep(services: Services) -> None:
    """One pass; called from the worker's poll loop."""
    try:
        expire_due(services)
        resolve_stuck(services)
        recheck_late(services)
    except Exception:  # noqa: BLE001 - the worker keeps running
        log.exception("approvals sweep failed")
