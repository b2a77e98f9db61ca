"""The plain data the Block Kit builders take. The features fill them (bot/jobs/view.py makes a
JobView from a stored job); nothing here knows where they come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.provider.base import is_final


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
    # Where the loss and accuracy are published when ftbot cannot read them (None: it reads them).
    metrics_note: str | None = None
    trained_tokens: int | None = None

    @property
    def final(self) -> bool:
        return is_final(self.status)

    @property
    def progress(self) -> float | None:
        if self.step is None or not self.total_steps:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))
