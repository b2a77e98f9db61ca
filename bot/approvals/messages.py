"""The request's Slack message through the outbox: posted once, then edited in place.

Each edit is drawn inside the transaction that changed the request, while that transaction holds the
request's row lock, so edits are queued in the order of the states they show; the sender delivers a
channel's messages in id order, so the last edit shown is the latest state.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.messages.approval import ApprovalView, approval_message
from bot.outbox.deliver import deliver_now
from bot.outbox.queue import enqueue
from bot.services import Services
from storage.models import ApprovalRequest, ApprovalVote


def view(session: Session, req: ApprovalRequest) -> ApprovalView:
    approvers = list(
        session.scalars(
            select(ApprovalVote.user_id).where(ApprovalVote.request_id == req.id, ApprovalVote.decision == "approve").order_by(ApprovalVote.created_at, ApprovalVote.id)
        )
    )
    d = req.detail or {}
    return ApprovalView(
        id=req.id,
        kind=req.kind,
        target=req.target,
        requested_by=req.requested_by,
        status=req.status,
        required=req.required_approvals,
        approvers=approvers,
        reason=d.get("reason"),
        job_ref=d.get("job_ref"),
        expires_at=req.expires_at,
        decided_by=req.decided_by,
        error=req.error,
        estimate_usd=d.get("estimate_usd"),
        estimate_note=d.get("estimate_note"),
        budget_usd=d.get("budget_usd"),
        spec=d.get("spec") or {},
        result=req.result or {},
    )


def post_key(req: ApprovalRequest) -> str:
    return f"approval:{req.id}:post"


def plan_post(session: Session, req: ApprovalRequest) -> None:
    req.message_key = post_key(req)
    enqueue(session, req.message_key, kind="post", channel=req.channel_id or "", payload=approval_message(view(session, req)), team_id=req.team_id)


def plan_edit(session: Session, req: ApprovalRequest) -> None:
    v = view(session, req)
    # One key per state shown: a retried transaction queues the same edit once.
    key = f"approval:{req.id}:edit:{req.status}:{len(v.approvers)}"
    enqueue(session, key, kind="edit", channel=req.channel_id or "", payload={"edit_of": req.message_key or post_key(req), **approval_message(v)}, team_id=req.team_id)


def deliver(services: Services, channel: str | None) -> None:
    """Send the channel's queued messages now rather than on the worker's next tick (claims keep it once)."""
    if channel:
        deliver_now(services, channels=[channel])
