"""Opening a request: one row, its message in the outbox and its audit entry, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.approvals import audit
from bot.approvals.messages import deliver, plan_post, view
from bot.errors import UserError
from bot.jobs.model_owner import find_model, one_owner
from bot.messages.approval import ApprovalView
from bot.mrkdwn import code
from bot.services import Services
from storage.errors import is_race_on
from storage.models import ApprovalRequest, Job
from storage.types import utcnow

# The same request opened twice (a redelivery on another process). Migration 0006 names the
# constraint; the model declares the column unique, so SQLite's report maps to the default name.
SAME_REQUEST = frozenset({"uq_approval_requests_request_key", "approval_requests_request_key_key"})


@dataclass(frozen=True)
class Opened:
    view: ApprovalView
    channel: str
    created: bool  # False: this Slack delivery had opened it already


def open_request(
    services: Services,
    *,
    kind: str,
    team_id: str,
    target: str,
    requested_by: str,
    channel: str,
    detail: dict[str, Any],
    request_key: str | None,
    provider: str = "openai",
) -> Opened:
    s = services.settings
    where = s.approval_channel or channel
    now = utcnow()
    try:
        with services.db.session() as session:
            if request_key:
                old = session.scalar(select(ApprovalRequest).where(ApprovalRequest.request_key == request_key))
                if old is not None:
                    return Opened(view(session, old), old.channel_id or where, False)
            req = ApprovalRequest(
                request_key=request_key,
                team_id=team_id,
                kind=kind,
                target=target,
                provider=provider,
                detail=detail,
                requested_by=requested_by,
                channel_id=where,
                status="pending",
                required_approvals=s.approvals_required,
                created_at=now,
                expires_at=now + timedelta(hours=s.approval_ttl_hours),
            )
            session.add(req)
            session.flush()
            plan_post(session, req)
            audit.record(session, req, "request", requested_by, reason=detail.get("reason"), estimate_usd=detail.get("estimate_usd"))
            opened = Opened(view(session, req), where, True)
    except IntegrityError as exc:
        if not request_key or not is_race_on(exc, SAME_REQUEST):
            raise
        # The same delivery raced itself on another process: the other one opened it.
        with services.db.session() as session:
            old = session.scalar(select(ApprovalRequest).where(ApprovalRequest.request_key == request_key))
            return Opened(view(session, old), old.channel_id or where, False)
    deliver(services, where)
    return opened


def request_model_deletion(services: Services, *, team_id: str, user: str, channel: str, model: str, reason: str | None, request_key: str | None) -> Opened:
    """Check the model exists at the provider, then open the request. Unknown names post nothing."""
    owner = one_owner(find_model(services, team_id, model), model)
    found = owner.model if owner is not None else None
    if found is None:
        raise UserError(f"There is no model {code(model[:200])} at the provider. `/ft models` lists the fine-tuned ones.")
    if not found.is_fine_tuned:
        raise UserError(f"{code(model[:200])} is a base model, not one of your fine-tuned models; only those can be deleted.")
    with services.db.session() as session:
        job = session.scalar(select(Job).where(Job.fine_tuned_model == model, Job.provider == owner.provider))
        if job is not None and job.team_id not in (None, team_id):
            raise UserError(f"There is no model {code(model[:200])} at the provider. `/ft models` lists the fine-tuned ones.")
        job_ref = job.provider_job_id if job is not None else None
        waiting = session.scalar(
            select(ApprovalRequest.id).where(ApprovalRequest.team_id == team_id, ApprovalRequest.kind == "delete_model", ApprovalRequest.target == model, ApprovalRequest.status.in_(("pending", "executing")))
        )
    if waiting is not None and not _same_delivery(services, request_key, waiting):
        raise UserError(f"Request #{waiting} to delete {code(model[:200])} is already open; vote on it there.")
    detail = {"reason": reason, "job_ref": job_ref, "provider": owner.provider}
    return open_request(services, kind="delete_model", team_id=team_id, target=model, requested_by=user, channel=channel, detail=detail, request_key=request_key, provider=owner.provider)


def _same_delivery(services: Services, request_key: str | None, request_id: int) -> bool:
    if not request_key:
        return False
    with services.db.session() as session:
        return session.scalar(select(ApprovalRequest.request_key).where(ApprovalRequest.id == request_id)) == request_key


def request_job_approval(
    services: Services,
    *,
    team_id: str,
    user: str,
    channel: str,
    spec: dict[str, Any],
    estimate_usd: float | None,
    estimate_note: str | None = None,
    request_key: str | None = None,
    provider: str | None = None,
) -> Opened:
    """Hold a start back until approved. `spec` is what the registered job starter needs to start it
    (JSON-serialisable; stored with the request); `estimate_usd` None means no estimate could be made."""
    detail = {
        "spec": spec,
        "estimate_usd": estimate_usd,
        "estimate_note": estimate_note if estimate_usd is None else None,
        "budget_usd": services.settings.job_budget_usd,
        "reason": spec.get("reason"),
        # The card of the job goes where it was asked for, even when the request sits in FTBOT_APPROVAL_CHANNEL.
        "channel": channel,
    }
    target = str(spec.get("file") or spec.get("training_file") or "job")
    provider = provider or services.default_provider
    detail["provider"] = provider
    return open_request(services, kind="job_budget", team_id=team_id, target=target, requested_by=user, channel=channel, detail=detail, request_key=request_key, provider=provider)


def needs_job_approval(services: Services, estimate_usd: float | None) -> bool:
    """A start needs approval when a budget is set and the estimate is over it or unknown."""
    budget = services.settings.job_budget_usd
    if budget is None:
        return False
    return estimate_usd is None or estimate_usd > budget
