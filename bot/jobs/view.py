"""A stored job row as the plain JobView every job message is built from (bot/messages/views.py)."""

from __future__ import annotations

from typing import Any

from bot.messages.views import JobView
from bot.provider.base import metrics_note, provider_can_pause

__all__ = ["JobView", "show_providers", "view_of"]


_labels = {"show": False}


def show_providers(on: bool) -> None:
    """Set once at start-up (bot.services.build_services): with several providers enabled, every
    job message names its job's provider. One process serves one configuration."""
    _labels["show"] = on


def view_of(job: Any, *, show_provider: bool | None = None) -> JobView:
    """From a storage.models.Job (or anything with the same attributes)."""
    show = _labels["show"] if show_provider is None else show_provider
    m = job.latest_metrics or {}
    err = job.error or {}
    return JobView(
        id=job.provider_job_id,
        status=job.status,
        base_model=job.base_model,
        method=job.method,
        step=job.step,
        total_steps=job.total_steps,
        train_loss=m.get("train_loss"),
        valid_loss=m.get("valid_loss"),
        train_accuracy=m.get("train_mean_token_accuracy"),
        valid_accuracy=m.get("valid_mean_token_accuracy"),
        estimated_finish=job.estimated_finish,
        fine_tuned_model=job.fine_tuned_model,
        error_message=err.get("message"),
        error_code=err.get("code"),
        started_by=job.started_by,
        created_at=job.created_at,
        finished_at=job.finished_at,
        hyperparameters=dict(job.hyperparameters or {}),
        training_file=job.training_file,
        suffix=job.suffix,
        provider=(getattr(job, "provider", None) or "openai") if show else None,
        can_pause=provider_can_pause(getattr(job, "provider", None)),
        metrics_note=metrics_note(getattr(job, "provider", None)),
        trained_tokens=getattr(job, "trained_tokens", None),
    )
