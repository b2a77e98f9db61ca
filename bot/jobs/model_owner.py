"""Which provider has a model: models are named across every enabled provider, so `/ft try` and
`/ft delete-model` go to the one that has it, and a name two providers share is answered with both."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.errors import UserError
from bot.mrkdwn import code
from bot.provider.base import Model, ProviderError, provider_label
from bot.services import Services
from storage.models import Job


@dataclass(frozen=True)
class Owner:
    provider: str
    model: Model | None  # None: known from our jobs, not read back from the provider


def _from_jobs(services: Services, team_id: str | None, name: str) -> set[str]:
    with services.db.session() as s:
        rows = s.execute(select(Job.provider, Job.team_id).where(Job.fine_tuned_model == name)).all()
    return {p for p, team in rows if team in (None, team_id) and p in services.providers}


def find_model(services: Services, team_id: str | None, name: str, *, read_back: bool = True) -> list[Owner]:
    """Every enabled provider that has `name`: our jobs first (no provider call needed), else each
    provider's model list. A provider that cannot be asked is skipped when another answers."""
    known = _from_jobs(services, team_id, name)
    found: list[Owner] = []
    errors: list[ProviderError] = []
    for provider_name in known or services.providers:
        if not read_back and known:
            found.append(Owner(provider_name, None))
            continue
        try:
            model = next((m for m in services.providers[provider_name].list_models() if m.id == name), None)
        except ProviderError as exc:
            errors.append(exc)
            continue
        if model is not None:
            found.append(Owner(provider_name, model))
    if not found and errors:
        raise errors[0]
    return found


def one_owner(found: list[Owner], name: str, *, prefer: str | None = None) -> Owner | None:
    """The owner, None when nobody has it; several: the preferred one if among them, else the candidates."""
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    for o in found:
        if o.provider == prefer:
            return o
    names = ", ".join(provider_label(o.provider) for o in found)
    raise UserError(f"{code(name[:200])} exists at several providers ({names}); ftbot cannot tell which one you mean.")
