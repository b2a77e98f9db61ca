"""Sunset mode: once a provider takes no more training jobs on a base model (by the table or the
provider's own list), a start on it is refused before any job request, with the date and the way out."""

from __future__ import annotations

from collections.abc import Iterable

from bot.errors import UserError
from bot.mrkdwn import code
from bot.provider.base import provider_label
from bot.retirements.live import EndOfServing, retirements_for
from bot.services import Services
from storage.types import utcnow

# Together's model names are "<org>/<model>"; OpenAI's and Azure's are bare.
_OPEN_MODEL_PROVIDERS = ("together",)


def training_closed(services: Services, provider: str, model: str) -> EndOfServing | None:
    """The end that closes training on `model` at `provider` (a fine-tune counts as its base), else None."""
    end = retirements_for(services).end_of(provider, model)
    return end if end.training_closed(utcnow().date()) else None


def refuse_if_sunset(services: Services, provider: str, model: str) -> None:
    end = training_closed(services, provider, model)
    if end is None or end.training_ends is None:
        return
    others = [p for p in services.providers if p != provider]
    elsewhere = f" or start it on {provider_label(others[0])} with `provider={others[0]}`" if others else ""
    raise UserError(
        f"{provider_label(provider)} takes no new fine-tuning jobs on {code(end.base_model, 120)} since {end.training_ends:%Y-%m-%d} "
        f"({end.training_source}), so nothing was started. Move the work to another provider: "
        f"`/ft migrate MODEL to=together` moves a model's data and recipe{elsewhere}."
    )


def closed_models(services: Services, models: Iterable[str]) -> set[str]:
    """The names a start form must not offer: training has ended for them at every enabled provider
    that trains them."""
    closed = set()
    for model in models:
        open_family = "/" in model
        trainers = [p for p in services.providers if (p in _OPEN_MODEL_PROVIDERS) == open_family]
        if trainers and all(training_closed(services, p, model) is not None for p in trainers):
            closed.add(model)
    return closed
