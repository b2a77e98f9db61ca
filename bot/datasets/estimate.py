"""What a job on a training file will cost, before it is started (the budget gate's figure).

A dataset checked by ftbot already knows its billed tokens per epoch; a provider file id given
directly is downloaded and counted. Tokens are counted in the target model's encoding: when the
stored report used another encoding, the file is counted again rather than guessed.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from bot.datasets.pricing import OVERRIDE_SOURCE, price_for
from bot.datasets.tokens import encoding_name_for
from bot.datasets.validate import epochs_for, validate_file
from bot.provider.base import JobSpec, ProviderError, provider_label
from bot.services import Services
from storage.models import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Estimate:
    usd: float | None  # None: no estimate could be made (see note)
    note: str
    billed_tokens: int | None = None


def _epochs(spec: JobSpec, examples: int) -> int:
    n = spec.hyperparameters.get("n_epochs")
    return n if isinstance(n, int) and n > 0 else epochs_for(examples)


def _from_dataset(row: Dataset, spec: JobSpec) -> tuple[int, int] | None:
    """(billed tokens per epoch, examples) from the stored report, when it was counted the same way."""
    v = row.validation or {}
    billed, epochs, model = v.get("billed_tokens"), v.get("epochs"), v.get("model")
    if not billed or not epochs or not model or encoding_name_for(model) != encoding_name_for(spec.model):
        return None
    return billed // epochs, row.example_count


def _by_counting(services: Services, spec: JobSpec, provider: str | None) -> tuple[int, int] | None:
    with tempfile.TemporaryDirectory(prefix="ftbot-estimate-") as tmp:
        path = Path(tmp) / "train.jsonl"
        services.provider_for(provider).download_file(spec.training_file, path)  # streamed: files may be gigabytes
        report = validate_file(path, model=spec.model, price_overrides=dict(services.settings.price_table))
    if report.tokens is None or not report.examples:
        return None
    return report.tokens.billed_per_epoch, report.examples


def _providers_own(services: Services, spec: JobSpec, provider: str | None) -> Estimate | None:
    at = services.provider_for(provider)
    try:
        usd = at.estimate_price(spec)
    except ProviderError as exc:
        log.warning("%s could not estimate a job's price: %s", at.name, exc.reason)
        return None
    return Estimate(usd, f"{provider_label(at.name)}'s own estimate") if usd is not None else None


def estimate_job_cost(services: Services, team_id: str, spec: JobSpec, provider: str | None = None) -> Estimate:
    price = price_for(spec.model, dict(services.settings.price_table))
    # The operator's price table wins; then a provider that prices jobs itself (Together: by model
    # size, LoRA or full), then the shipped table.
    if price is None or price.source != OVERRIDE_SOURCE:
        own = _providers_own(services, spec, provider)
        if own is not None:
            return own
    if price is None:
        # A provider may say why it has no price, and what would give it one (Vertex AI: a setting).
        why = getattr(services.provider_for(provider), "unpriced", None)
        return Estimate(None, why or f"no training price is known for {spec.model} (FTBOT_PRICE_TABLE can add one)")
    with services.db.session() as s:
        row = s.scalars(
            select(Dataset).where(Dataset.team_id == team_id, Dataset.provider_file_id == spec.training_file).order_by(Dataset.created_at.desc())
        ).first()
        counted = _from_dataset(row, spec) if row is not None else None
    if counted is None:
        counted = _by_counting(services, spec, provider)
    if counted is None:
        return Estimate(None, "the training file has no examples to count")
    per_epoch, examples = counted
    billed = per_epoch * _epochs(spec, examples)
    return Estimate(billed * price.usd_per_million / 1_000_000, f"{billed:,} billed tokens at ${price.usd_per_million:g} per 1M ({price.source})", billed)
