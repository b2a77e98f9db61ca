"""`/ft models | try` (`files` lives with the datasets verbs)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.commands.parse import USAGE, Command
from bot.errors import UserError
from bot.jobs.listing import all_fine_tuned_models
from bot.jobs.model_owner import find_model, one_owner
from bot.listeners.commands.registry import handles
from bot.messages.answers import models_answer, try_answer
from bot.mrkdwn import code
from bot.provider.base import Provider, provider_label
from bot.services import Services

MAX_PROMPT = 4000


@handles("models")
def models(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`models` takes no arguments.", USAGE["models"])
    found = all_fine_tuned_models(services, body["team_id"])
    respond(response_type="ephemeral", **models_answer(found.views, unavailable=found.unavailable))


@handles("try")
def try_model(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    model, _, prompt = cmd.rest.partition(" ")
    endpoint = None
    first, _, after = prompt.strip().partition(" ")
    if first.lower().startswith("endpoint="):
        endpoint, prompt = first.partition("=")[2], after
        if not endpoint:
            raise UserError("`endpoint` has no value.", USAGE["try"])
    prompt = prompt.strip().strip('"').strip()
    if not model or not prompt:
        raise UserError("`try` needs a model and a prompt.", USAGE["try"])
    if len(prompt) > MAX_PROMPT:
        raise UserError(f"The prompt is {len(prompt)} characters; at most {MAX_PROMPT}.", USAGE["try"])
    provider = _provider_for_try(services, body.get("team_id"), model)
    if endpoint is not None and provider.name != "together":
        raise UserError(
            f"`endpoint=` is a Together AI option (a dedicated endpoint serving the model); {code(model[:150])} is at {provider_label(provider.name)}: leave it out.",
            USAGE["try"],
        )
    # A Together dedicated endpoint answers under its own name: it is the model of the request.
    answer = provider.complete(endpoint or model, prompt)
    respond(response_type="in_channel", **try_answer(model, prompt, answer, endpoint=endpoint))


def _provider_for_try(services: Services, team_id: str | None, name: str) -> Provider:
    """The provider that has the model. A name no provider lists is an Azure deployment when Azure is
    enabled (deployments are not models: Azure's API cannot list them), else the default provider's."""
    if not services.several_providers:
        return services.provider
    owner = one_owner(find_model(services, team_id, name, read_back=False), name, prefer=services.default_provider)
    if owner is not None:
        return services.provider_for(owner.provider)
    if "azure" in services.providers:
        return services.provider_for("azure")
    return services.provider
