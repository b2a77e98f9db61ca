"""JobView: the plain data every job message is built from, and its conversion from a stored row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.provider.base import is_final, provider_can_pause


@dataclass(frozen=True)
class JobView:
    id: str
    status: str
    base_model: str
    method: str = "supervised"
    step: int | None = None
    total_steps: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    train_accuracy: float | None = None
    valid_accuracy: float | None = None
    estimated_finish: datetime | None = None
    fine_tuned_model: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    started_by: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training_file: str | None = None
    suffix: str | None = None
    # The job's provider, set only when several providers are enabled (messages then name it).
    provider: str | None = None
    can_pause: bool = True  # False at providers without pause (no Pause button on the card)

    @property
    def final(self) -> bool:
        return is_final(self.status)

    @property
    def progress(self) -> float | None:
        if self.step is None or not self.total_steps:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))


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
    )
