"""`/ft models | try` (`files` lives with the datasets verbs)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.commands.parse import USAGE, Command
from bot.errors import UserError
from bot.jobs.listing import fine_tuned_models
from bot.listeners.commands.registry import handles
from bot.messages.answers import models_answer, try_answer
from bot.services import Services

MAX_PROMPT = 4000


@handles("models")
def models(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`models` takes no arguments.", USAGE["models"])
    views = fine_tuned_models(services, body["team_id"])
    respond(response_type="ephemeral", **models_answer(views))


@handles("try")
def try_model(cmd: Command, *, respond: Respond, services: Services, **_: Any) -> None:
    model, _, prompt = cmd.rest.partition(" ")
    prompt = prompt.strip().strip('"').strip()
    if not model or not prompt:
        raise UserError("`try` needs a model and a prompt.", USAGE["try"])
    if len(prompt) > MAX_PROMPT:
        raise UserError(f"The prompt is {len(prompt)} characters; at most {MAX_PROMPT}.", USAGE["try"])
    answer = services.provider.complete(model, prompt)
    respond(response_type="in_channel", **try_answer(model, prompt, answer))
