"""The `/ft` slash command: ack at once, then route the verb to its handler on the worker pool."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.commands.parse import OPERATOR_VERBS, Command, parse
from bot.errors import guarded
from bot.listeners.commands import verbs  # noqa: F401 - each verb module registers its handlers on import
from bot.listeners.commands.registry import HANDLERS, handles, registered
from bot.messages.help import help_message
from bot.services import Services


@handles("help")
def show_help(cmd: Command, *, respond: Respond, **_: Any) -> None:
    available = registered()
    respond(response_type="ephemeral", **help_message(available, OPERATOR_VERBS & available))


def _ack(ack: Ack) -> None:
    ack()


@guarded
def _dispatch(body: dict[str, Any], respond: Respond, client: Any, context: Any) -> None:
    services: Services = context["services"]
    cmd = parse(body.get("text", ""))
    handler = HANDLERS.get(cmd.verb)
    if handler is None:
        respond(response_type="ephemeral", text=f":construction: `/ft {cmd.verb}` is not available yet. See `/ft help`.")
        return
    handler(cmd, respond=respond, client=client, body=body, services=services, context=context)


def register(app: App) -> None:
    app.command("/ft")(ack=_ack, lazy=[_dispatch])
