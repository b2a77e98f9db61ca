"""A migration held for its budget approval, when that approval closes without a job (rejected,
expired, or approved but its start failed: no balance, a file refused, training closed): the
migration fails with the reason (the provider's words) and its model is unlocked, so a later
`/ft migrate` can try again instead of hearing "being migrated already" forever.

A subscriber of ApprovalClosed (bot/wiring.py), run in the transaction that closes the request."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.events import ApprovalClosed, Context
from bot.migration.states import FAILED, STARTING
from bot.provider.base import provider_label
from storage.models import ApprovalRequest, Migration
from storage.types import utcnow

WHY = {
    "rejected": "its budget approval (request #{id}) was rejected",
    "expired": "its budget approval (request #{id}) expired",
    "failed": "{provider} did not start the job approved in request #{id}: {error}",
}


def on_closed(ctx: Context, event: ApprovalClosed) -> None:
    # A start (job_budget) frees its held migration; a parity report (eval_budget) ends it.
    if event.kind not in ("job_budget", "eval_budget") or event.outcome not in WHY:
        return
    req = ctx.session.get(ApprovalRequest, event.request_id)
    if req is not None:
        on_approval_closed(ctx.session, req)


def on_approval_closed(session: Session, req: ApprovalRequest) -> None:
    if req.kind == "eval_budget" and req.status in WHY:
        _parity_not_approved(session, req)
        return
    if req.kind != "job_budget" or req.status not in WHY:
        return
    why = WHY[req.status].format(id=req.id, provider=provider_label(req.provider or ""), error=req.error or "no reason given")
    # The held migration names its request in job_key (flow.confirm); only one still starting moves.
    session.execute(
        update(Migration)
        .where(Migration.job_key == f"approval-{req.id}", Migration.state == STARTING, Migration.target_job_id.is_(None))
        .values(state=FAILED, error=why[:2000], active_key=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _parity_not_approved(session: Session, req: ApprovalRequest) -> None:
    """A migration's parity report held over the budget and not approved: the run is cancelled and
    the migration ends (its new model exists) with the reason as its headline."""
    from bot.migration import parity
    from storage.models import EvalRun

    key = req.request_key or ""
    if not key.startswith(parity.PREFIX):
        return
    run = session.scalar(select(EvalRun).where(EvalRun.request_key == key, EvalRun.status == "held").with_for_update())
    if run is None:
        return
    why = {"rejected": f"its budget approval (request #{req.id}) was rejected", "expired": f"its budget approval (request #{req.id}) expired"}.get(req.status, f"its budget approval (request #{req.id}) {req.status}")
    run.status, run.error, run.finished_at = "cancelled", why, utcnow()
    run.summary = {"examples": run.examples, "scored": 0}
    session.flush()
    parity.queue_end(session, run, "cancelled")
