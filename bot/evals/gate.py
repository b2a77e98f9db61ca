"""The budget gate: an evaluation estimated above FTBOT_JOB_BUDGET_USD (or that cannot be estimated
while a budget is set) is stored as `held` and goes through the same approvals as an expensive job;
approved, it is released to the workers. Nothing is asked before that."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.approvals.pending import Pending
from bot.approvals.requests import Opened, needs_job_approval, open_request
from bot.evals import publish, store
from bot.outbox.deliver import deliver_now
from bot.services import Services
from storage.models import EvalRun


def needs_approval(services: Services, estimate_usd: float | None) -> bool:
    return needs_job_approval(services, estimate_usd)


def hold(services: Services, run: EvalRun, *, user: str, channel: str, request_key: str | None) -> Opened:
    est = run.estimate or {}
    detail = {
        "run_id": run.id,
        "estimate_usd": est.get("usd"),
        "estimate_note": None if est.get("usd") is not None else (est.get("note") or "a model has no price in the shipped table"),
        "budget_usd": services.settings.job_budget_usd,
        "spec": {"baseline": run.baseline, "examples": run.examples},
        "channel": channel,
    }
    return open_request(services, kind="eval_budget", team_id=run.team_id or "", target=run.model, requested_by=user, channel=channel, detail=detail, request_key=request_key, provider=run.provider)


def gate_prefilled(services: Services, run_id: int, owner: str) -> None:
    """A run whose examples were written when it was made (a migration's parity report, created in
    the poll that saw the new job succeed) waits only for the budget gate: preparing -> pending, or
    held with an approval request, by the worker holding its lease."""
    run = store.get_run(services.db, run_id)
    if run is None:
        return
    held = needs_approval(services, (run.estimate or {}).get("usd"))
    if not store.set_status(services.db, run_id, "held" if held else "pending", frm=["preparing"], owner=owner):
        return
    if held:
        run = store.get_run(services.db, run_id)
        assert run is not None
        hold(services, run, user=run.requested_by or "", channel=run.channel_id or "", request_key=run.request_key)


def release_held(services: Services, run_id: int) -> dict[str, Any]:
    """held -> pending, once; its progress message posted. Asked again, it says what it did."""
    if store.set_status(services.db, run_id, "pending", frm=["held"]):
        with services.db.session() as s:
            run = s.get(EvalRun, run_id)
            publish.queue_progress_post(s, run)
            channel = run.channel_id
        deliver_now(services, channels=[channel] if channel else [])
    run = store.get_run(services.db, run_id)
    return {"eval": run_id, "status": run.status if run else "gone"}


def approval_closed(services: Services, request_key: str, run_id: int) -> bool:
    """The held run's approval was rejected, expired or failed: the run is closed (cancelled), so
    asking again opens a new one."""
    from sqlalchemy import select

    from storage.models import ApprovalRequest

    with services.db.session() as s:
        status = s.scalar(select(ApprovalRequest.status).where(ApprovalRequest.request_key == request_key))
    if status in {"rejected", "expired", "failed"}:
        store.set_status(services.db, run_id, "cancelled", frm=["held"], error=f"approval {status}")
        return True
    return False


class StartEvaluation:
    """The approvals' executor of `eval_budget` requests (registered at start-up by bot/wiring.py):
    an evaluation held over the budget, approved, is released to the workers (held -> pending),
    once, by a conditional update; its progress message is posted where it was asked."""

    def run(self, services: Services, req: Pending) -> dict[str, Any]:
        return release_held(services, int(req.detail["run_id"]))

    def resolve(self, services: Services, req: Pending, why: str) -> dict[str, Any] | None:
        return self.run(services, req)

    def after_done(self, session: Session, req: Pending, result: dict[str, Any]) -> None:
        return None
