"""Starting a job from a Slack request (command or form): files resolved, the job made once, its card
delivered. Returns what happened; the listener decides how to say it."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from bot.commands.parse import StartRequest
from bot.datasets.resolve import resolve_file
from bot.jobs.lifecycle import Started, start_job
from bot.outbox.deliver import deliver_now
from bot.provider.base import JobSpec
from bot.services import Services
from storage.models import Dataset, Job


def idempotency_key(*parts: str) -> str:
    """Stable for the same Slack delivery: a retried command or a double-submitted form maps to one job."""
    return "sl-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def launch(services: Services, req: StartRequest, *, team_id: str, user: str, channel: str, key: str) -> Started:
    """Check the files, start the job once, post its card."""
    training = resolve_file(services, team_id, req.file, what="training file")
    validation = resolve_file(services, team_id, req.validation, what="validation file") if req.validation else None
    spec = JobSpec(
        model=req.model,
        training_file=training,
        validation_file=validation,
        method=req.method,
        hyperparameters=req.hyperparameters,
        suffix=req.suffix,
        seed=req.seed,
    )
    started = start_job(services, spec, team_id=team_id, user=user, channel=channel, idempotency_key=key)
    deliver_now(services, started.subscription_ids)
    return started


def start_choices(services: Services, team_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """For the start form: datasets (ours first, then the provider's other fine-tune files) and the
    team's fine-tuned models."""
    with services.db.session() as s:
        datasets = s.scalars(select(Dataset).where(Dataset.team_id == team_id).order_by(Dataset.created_at.desc()).limit(100)).all()
        files = [(d.provider_file_id, f"{d.name} ({d.example_count} ex.)") for d in datasets]
        models = list(s.scalars(select(Job.fine_tuned_model).where(Job.team_id == team_id, Job.fine_tuned_model.is_not(None)).order_by(Job.id.desc()).limit(50)))
    known = {f for f, _ in files}
    files += [(f.id, f"{f.filename} ({f.id})") for f in services.provider.list_files(purpose="fine-tune", limit=100) if f.id not in known]
    return files[:100], models
