"""A migration held for its budget approval, when that approval closes without being approved
(rejected, or expired): the migration fails with the reason and its model is unlocked, so a later
`/ft migrate` can try again instead of hearing "being migrated already" forever.

A subscriber of ApprovalClosed (bot/wiring.py), run in the transaction that closes the request."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.events import ApprovalClosed, Context
from bot.migration.states import FAILED, STARTING
from storage.models import ApprovalRequest, Migration
from storage.types import utcnow

WHY = {"rejected": "its budget approval (request #{id}) was rejected", "expired": "its budget approval (request #{id}) expired"}


def on_closed(ctx: Context, event: ApprovalClosed) -> None:
    if event.kind != "job_budget" or event.outcome not in WHY:
        return
    req = ctx.session.get(ApprovalRequest, event.request_id)
    if req is not None:
        on_approval_closed(ctx.session, req)


def on_approval_closed(session: Session, req: ApprovalRequest) -> None:
    if req.kind != "job_budget" or req.status not in WHY:
        return
    # The held migration names its request in job_key (flow.confirm); only one still starting moves.
    session.execute(
        update(Migration)
        .where(Migration.job_key == f"approval-{req.id}", Migration.state == STARTING, Migration.target_job_id.is_(None))
        .values(state=FAILED, error=WHY[req.status].format(id=req.id), active_key=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
