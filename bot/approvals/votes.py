"""A click on Approve or Reject: the domain rules, applied under the request's row lock.

The lock (SELECT … FOR UPDATE on PostgreSQL; SQLite's write lock taken by BEGIN IMMEDIATE) makes
concurrent votes on one request take turns, so each sees the votes before it and exactly one of them
reaches the quorum; the conditional update pending -> executing is what lets that one run the action.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from bot.approvals import audit
from bot.approvals.execution import execute
from bot.approvals.messages import deliver, plan_edit
from bot.events import ApprovalClosed, announce
from bot.services import Services
from storage.models import ApprovalRequest, ApprovalVote
from storage.types import utcnow

FINAL_WORDS = {"done": "is done", "failed": "has failed", "rejected": "was rejected", "expired": "has expired", "executing": "is approved and running"}


@dataclass(frozen=True)
class VoteResult:
    accepted: bool
    text: str  # what the voter is told, ephemerally
    status: str | None = None  # the request's status after the vote


def cast_vote(services: Services, *, request_id: int, team_id: str, user: str, decision: str, message_ts: str | None = None) -> VoteResult:
    if decision not in {"approve", "reject"}:
        raise ValueError(decision)
    result, channel, run_it = _vote(services, request_id, team_id, user, decision, message_ts)
    deliver(services, channel)
    if run_it:
        result = VoteResult(result.accepted, result.text, execute(services, request_id))
    return result


def _vote(services: Services, request_id: int, team_id: str, user: str, decision: str, message_ts: str | None) -> tuple[VoteResult, str | None, bool]:
    now = utcnow()
    run_it = False
    with services.db.session() as s:
        req = s.get(ApprovalRequest, request_id, with_for_update=True, populate_existing=True)
        if req is None or req.team_id != team_id:
            return VoteResult(False, f":warning: There is no approval request #{request_id}."), None, False
        if message_ts and not req.message_ts:
            req.message_ts = message_ts
        if req.status == "pending" and now >= req.expires_at:
            _expire(s, req, now)
        if req.status != "pending":
            audit.record(s, req, "refused", user, decision=decision, why=f"request {FINAL_WORDS.get(req.status, req.status)}")
            return VoteResult(False, f":information_source: Request #{req.id} {FINAL_WORDS.get(req.status, req.status)}; votes no longer change it.", req.status), req.channel_id, False
        mine = s.scalar(select(ApprovalVote).where(ApprovalVote.request_id == req.id, ApprovalVote.user_id == user))
        if decision == "reject":
            if mine is None:
                s.add(ApprovalVote(request_id=req.id, user_id=user, decision="reject", created_at=now))
            else:
                mine.decision = "reject"
            req.status, req.decided_at, req.decided_by = "rejected", now, user
            audit.record(s, req, "reject", user)
            announce(s, ApprovalClosed(req.id, req.kind, req.status), services=services)
            plan_edit(s, req)
            text = f":no_entry: You rejected request #{req.id}; it is closed."
        else:
            if user == req.requested_by:
                audit.record(s, req, "refused", user, decision=decision, why="the requester cannot approve their own request")
                return VoteResult(False, ":no_entry_sign: You asked for this, so you cannot approve it yourself: it needs approvals from teammates.", req.status), None, False
            if mine is not None:
                audit.record(s, req, "refused", user, decision=decision, why="already approved; counted once")
                count = _approvals(s, req.id)
                return VoteResult(False, f":information_source: You already approved request #{req.id}; it counts once ({count} of {req.required_approvals}).", req.status), None, False
            s.add(ApprovalVote(request_id=req.id, user_id=user, decision="approve", created_at=now))
            s.flush()
            count = _approvals(s, req.id)
            audit.record(s, req, "approve", user, count=count, required=req.required_approvals)
            if count >= req.required_approvals:
                # Belt and braces under the lock: only a pending request becomes executing.
                run_it = bool(
                    s.execute(
                        update(ApprovalRequest)
                        .where(ApprovalRequest.id == req.id, ApprovalRequest.status == "pending")
                        .values(status="executing", executing_since=now, decided_at=now)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                )
                if run_it:
                    s.refresh(req)
                    audit.record(s, req, "executing", None, count=count)
            plan_edit(s, req)
            text = f":white_check_mark: Your approval of request #{req.id} is counted ({count} of {req.required_approvals})."
            if run_it:
                text += " That was the last one needed: " + ("deleting now." if req.kind == "delete_model" else "starting now.")
        return VoteResult(True, text, req.status), req.channel_id, run_it


def _approvals(s, request_id: int) -> int:  # noqa: ANN001
    return s.scalar(select(func.count()).select_from(ApprovalVote).where(ApprovalVote.request_id == request_id, ApprovalVote.decision == "approve")) or 0


def _expire(s, req: ApprovalRequest, now) -> None:  # noqa: ANN001
    req.status, req.decided_at = "expired", now
    audit.record(s, req, "expired", None)
    announce(s, ApprovalClosed(req.id, req.kind, req.status))
    plan_edit(s, req)


def record_refusal(services: Services, *, request_id: int, team_id: str, user: str, decision: str, why: str) -> None:
    """A vote refused before the domain saw it (not an approver): still in the audit log."""
    with services.db.session() as s:
        req = s.get(ApprovalRequest, request_id)
        if req is None or req.team_id != team_id:
            return
        audit.record(s, req, "refused", user, decision=decision, why=why)
