"""What a job's final alert says beyond the job: when its new model stops serving, if soon. Looked
up before the poll's write (it may ask the provider, never inside the transaction) by the lookup
the retirements feature registers at start-up (bot/wiring.py); none registered, the alert has no note."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.messages.job_card import ServingNote

if TYPE_CHECKING:
    from bot.services import Services

# (services, provider, model, base model) -> the note, or None when its end is not near.
ServingLookup = Callable[["Services", str, str, "str | None"], "ServingNote | None"]
_lookup: list[ServingLookup] = []


def set_serving_lookup(fn: ServingLookup | None) -> None:
    _lookup.clear()
    if fn is not None:
        _lookup.append(fn)


def serving_note(services: Services, provider: str, model: str, base: str | None) -> ServingNote | None:
    return _lookup[0](services, provider, model, base) if _lookup else None
