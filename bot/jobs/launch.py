"""Starting a job from a Slack request (command or form): files resolved, the job made once, its card
delivered. Returns what happened; the listener decides how to say it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from sqlalchemy import select

from bot.approvals.requests import Opened, needs_job_approval, request_job_approval
from bot.commands.parse import DEFAULT_MODEL, USAGE, StartRequest, for_provider
from bot.datasets.estimate import Estimate, estimate_job_cost
from bot.datasets.resolve import resolve_file
from bot.errors import UserError
from bot.jobs.lifecycle import Started, start_job
from bot.outbox.deliver import deliver_now
from bot.provider.base import JobSpec, ProviderError, provider_label
from bot.retirements.sunset import refuse_if_sunset
from bot.services import Services
from storage.models import ApprovalRequest, Dataset, Job


def idempotency_key(*parts: str) -> str:
    """Stable for the same Slack delivery: a retried command or a double-submitted form maps to one job."""
    return "sl-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Held:
    """Over FTBOT_JOB_BUDGET_USD (or not estimable with a budget set): waiting for approvals."""

    request: Opened
    estimate: Estimate
    budget_usd: float


def launch(services: Services, req: StartRequest, *, team_id: str, user: str, channel: str, key: str) -> Started | Held:
    """Check the files, then start the job once and post its card, or hold it for approvals."""
    provider = getattr(req, "provider", None) or services.default_provider
    at = services.provider_for(provider)
    req = for_provider(req, provider, default_model=getattr(at, "default_model", DEFAULT_MODEL))
    refuse_if_sunset(services, provider, req.model)  # before any file or job request
    if req.suffix and len(req.suffix) > at.max_suffix_length:
        raise UserError(f"`suffix` may be at most {at.max_suffix_length} characters at {provider_label(provider)}, got {len(req.suffix)}.", USAGE["start"])
    training = resolve_file(services, team_id, req.file, what="training file", provider=provider)
    validation = resolve_file(services, team_id, req.validation, what="validation file", provider=provider) if req.validation else None
    spec = JobSpec(
        model=req.model,
        training_file=training,
        validation_file=validation,
        method=req.method,
        hyperparameters=req.hyperparameters,
        suffix=req.suffix,
        seed=req.seed,
    )
    budget = services.settings.job_budget_usd
    if budget is not None and not _job_exists(services, key):
        # A redelivered request that was held already: its stored estimate, not a second count.
        estimate = _held_estimate(services, key) or estimate_job_cost(services, team_id, spec, provider)
        if needs_job_approval(services, estimate.usd):
            opened = request_job_approval(
                services, team_id=team_id, user=user, channel=channel, spec=asdict(spec), estimate_usd=estimate.usd, estimate_note=estimate.note, request_key=key, provider=provider
            )
            return Held(opened, estimate, budget)
    started = start_job(services, spec, team_id=team_id, user=user, channel=channel, idempotency_key=key, provider=provider)
    deliver_now(services, started.subscription_ids)
    return started


def _job_exists(services: Services, key: str) -> bool:
    with services.db.session() as s:
        return s.scalar(select(Job.id).where(Job.idempotency_key == key)) is not None


def _held_estimate(services: Services, key: str) -> Estimate | None:
    with services.db.session() as s:
        detail = s.scalar(select(ApprovalRequest.detail).where(ApprovalRequest.request_key == key))
    if detail is None:
        return None
    return Estimate(detail.get("estimate_usd"), detail.get("estimate_note") or "")


def start_choices(services: Services, team_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """For the start form: datasets (ours first, then each provider's other fine-tune files) and the
    team's fine-tuned models. With several providers each file says where it is; one provider
    failing leaves its files out rather than the form unopened."""
    several = services.several_providers

    def where(p: str) -> str:
        return f" · {provider_label(p)}" if several else ""

    with services.db.session() as s:
        datasets = s.scalars(select(Dataset).where(Dataset.team_id == team_id).order_by(Dataset.created_at.desc()).limit(100)).all()
        files = [(d.provider_file_id, f"{d.name} ({d.example_count} ex.){where(d.provider)}") for d in datasets]
        models = list(s.scalars(select(Job.fine_tuned_model).where(Job.team_id == team_id, Job.fine_tuned_model.is_not(None), Job.model_deleted_at.is_(None)).order_by(Job.id.desc()).limit(50)))
    known = {f for f, _ in files}
    for name, provider in services.providers.items():
        try:
            found = provider.list_files(purpose="fine-tune", limit=100)
        except ProviderError:
            if not several:
                raise
            continue
        files += [(f.id, f"{f.filename} ({f.id}){where(name)}") for f in found if f.id not in known]
    return files[:100], models
