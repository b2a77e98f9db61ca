"""Run an approved request's action once and record what happened.

Only the process whose conditional update moved the request to `executing` calls `execute`; the
outcome is written with another conditional update (executing -> done | failed), so a late or
repeated resolution cannot overwrite it. Nothing is reported done unless the executor says so, and an
unknown outcome is resolved by looking (the executor's `resolve`) before anything is said.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from bot.approvals import audit
from bot.approvals.actions import EXECUTORS, ActionFailed, OutcomeUnknown, Pending
from bot.approvals.messages import deliver, plan_edit
from bot.events import ApprovalClosed, announce
from bot.services import Services
from storage.models import ApprovalRequest, ApprovalVote
from storage.types import utcnow

log = logging.getLogger(__name__)

# An `executing` request older than this was left by a process that died mid-action.
STUCK_AFTER = timedelta(minutes=5)


def snapshot(services: Services, request_id: int) -> Pending | None:
    with services.db.session() as s:
        req = s.get(ApprovalRequest, request_id)
        if req is None:
            return None
        approvers = tuple(s.scalars(select(ApprovalVote.user_id).where(ApprovalVote.request_id == req.id, ApprovalVote.decision == "approve").order_by(ApprovalVote.id)))
        return Pending(req.id, req.kind, req.team_id, req.target, req.requested_by, req.channel_id, dict(req.detail or {}), approvers, req.provider or "openai")


def execute(services: Services, request_id: int) -> str:
    """Run the action of a request this process moved to `executing`. Returns the status after."""
    pending = snapshot(services, request_id)
    if pending is None:
        return "missing"
    executor = EXECUTORS.get(pending.kind)
    if executor is None:
        return finish(services, pending, "failed", error=f"unknown request kind {pending.kind!r}")
    try:
        result = executor.run(services, pending)
    except ActionFailed as exc:
        return finish(services, pending, "failed", error=exc.reason)
    except OutcomeUnknown as exc:
        return resolve(services, pending, exc.reason)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the request looking like it worked
        log.exception("approval action %s crashed", pending.kind)
        return resolve(services, pending, f"unexpected error ({type(exc).__name__})")
    return finish(services, pending, "done", result=result)


def resolve(services: Services, pending: Pending, why: str) -> str:
    executor = EXECUTORS[pending.kind]
    try:
        result = executor.resolve(services, pending, why)
    except ActionFailed as exc:
        return finish(services, pending, "failed", error=exc.reason, result={"recheck": True} if exc.recheck else None)
    if result is None:
        log.warning("approval request %s: outcome still unknown (%s); the worker will look again", pending.id, why)
        return "executing"
    return finish(services, pending, "done", result=result)


def finish(services: Services, pending: Pending, status: str, *, error: str | None = None, result: dict[str, Any] | None = None, was: str = "executing") -> str:
    now = utcnow()
    with services.db.session() as s:
        changed = s.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == pending.id, ApprovalRequest.status == was)
            .values(status=status, error=error, result=result, decided_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        req = s.get(ApprovalRequest, pending.id, populate_existing=True)
        if not changed:
            return req.status if req is not None else "missing"
        audit.record(s, req, status, None, error=error, **(result or {}))
        plan_edit(s, req)
        if status == "done":
            EXECUTORS[pending.kind].after_done(s, pending, result or {})
        elif status == "failed":
            # Approved but its action failed (a start the provider refused): whoever waits on it
            # (a migration held for this start) hears it in this transaction, with the reason in req.error.
            announce(s, ApprovalClosed(req.id, req.kind, status), services=services)
        channel = req.channel_id
    deliver(services, channel)
    return status


def resolve_stuck(services: Services) -> int:
    """Worker: requests left `executing` by a dead process are resolved by looking. One worker each."""
    now = utcnow()
    with services.db.session() as s:
        rows = s.execute(select(ApprovalRequest.id, ApprovalRequest.executing_since).where(ApprovalRequest.status == "executing", ApprovalRequest.executing_since < now - STUCK_AFTER)).all()
    n = 0
    for rid, since in rows:
        with services.db.session() as s:
            # Take it: a second worker's update finds executing_since changed and skips it.
            took = s.execute(
                update(ApprovalRequest).where(ApprovalRequest.id == rid, ApprovalRequest.executing_since == since).values(executing_since=now).execution_options(synchronize_session=False)
            ).rowcount
        if took:
            pending = snapshot(services, rid)
            if pending is not None and pending.kind in EXECUTORS:
                resolve(services, pending, "the process running it stopped before it answered")
                n += 1
    return n


# How long a failure judged after a timeout is looked at again (the provider may finish late).
RECHECK_FOR = timedelta(hours=1)


def recheck_late(services: Services) -> int:
    """Worker: a request failed after an unknown outcome whose action landed late becomes done."""
    now = utcnow()
    with services.db.session() as s:
        rows = s.execute(select(ApprovalRequest.id, ApprovalRequest.result).where(ApprovalRequest.status == "failed", ApprovalRequest.decided_at > now - RECHECK_FOR)).all()
    n = 0
    for rid, result in rows:
        if not (result or {}).get("recheck"):
            continue
        pending = snapshot(services, rid)
        executor = EXECUTORS.get(pending.kind) if pending else None
        if executor is None:
            continue
        try:
            found = executor.resolve(services, pending, "late")
        except ActionFailed:
            continue  # still not done: the failure stands
        if found is not None:
            found = {**found, "confirmed": "it happened after the provider's late answer"}
            n += finish(services, pending, "done", result=found, was="failed") == "done"
    return n
