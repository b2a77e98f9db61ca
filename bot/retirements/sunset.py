"""Sunset mode: once a provider takes no more training jobs on a base model (by the table or the
provider's own list), a start on it is refused before any job request, with the date and the way out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from bot.commands.parse import DEFAULT_MODEL
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
    elsewhere = f", or start it on {provider_label(others[0])} with `provider={others[0]}`" if others else ""
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


def default_model_at(services: Services, provider: str) -> str:
    """The base model a start at `provider` uses when none is named."""
    return getattr(services.providers.get(provider), "default_model", DEFAULT_MODEL)


@dataclass(frozen=True)
class Elsewhere:
    """Where training is still open: another enabled provider and its default base."""

    provider: str
    model: str

    @property
    def label(self) -> str:
        return provider_label(self.provider)


def where_to_train(services: Services, *, besides: str) -> Elsewhere | None:
    """The first other enabled provider whose default base still takes training jobs (Ray: the team's
    own cluster, never retired)."""
    for name in services.providers:
        if name == besides:
            continue
        model = default_model_at(services, name)
        if training_closed(services, name, model) is None:
            return Elsewhere(name, model)
    return None


def open_default(services: Services, req: Any) -> tuple[Any, str | None]:  # noqa: ANN401 - a StartRequest
    """A start without `model=` gets a base that still trains, and a note saying which: the default
    provider's default base while it trains, else (when no `provider=` was named) another enabled
    provider's. Unchanged (and refused by `refuse_if_sunset`, with the way out) when none is open."""
    if getattr(req, "model_given", True):
        return req, None
    provider = getattr(req, "provider", None) or services.default_provider
    model = default_model_at(services, provider)
    end = training_closed(services, provider, model)
    if end is None or getattr(req, "provider", None):
        return req, None
    other = where_to_train(services, besides=provider)
    if other is None:
        return req, None
    note = (
        f"{provider_label(provider)} takes no new fine-tuning jobs on {code(end.base_model, 120)} since {end.training_ends:%Y-%m-%d} ({end.training_source}): "
        f"this job trains {code(other.model, 120)} at {other.label} instead, the base a start there uses when none is named. "
        f"Name `model=` and `provider=` to choose another."
    )
    return replace(req, provider=other.provider), note


def form_default(services: Services) -> tuple[str, str | None]:
    """The provider a start form offers first and what its empty model choice means: the default
    provider while its default base trains, else another enabled provider's (saying why)."""
    here = services.default_provider
    if training_closed(services, here, default_model_at(services, here)) is None:
        return here, None
    other = where_to_train(services, besides=here)
    if other is None:
        return here, None
    return other.provider, f"{other.model} at {other.label} (training at {provider_label(here)} has ended)"
