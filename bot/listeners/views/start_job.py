"""The `/ft start` form: field errors shown in the form; a valid one starts the job once."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot.commands.parse import StartRequest, parse_start
from bot.errors import UserError, answer_error
from bot.jobs.launch import idempotency_key, launch
from bot.messages.answers import launch_answer, with_note
from bot.messages.start_modal import field_for_error, form_to_args, form_values
from bot.mrkdwn import unescape
from bot.retirements.sunset import open_default
from bot.services import Services


def _parse(view: dict[str, Any]) -> StartRequest:
    return parse_start(form_to_args(form_values(view["state"]["values"])))


def _ack(ack: Ack, view: dict[str, Any]) -> None:
    try:
        _parse(view)
    except UserError as exc:
        # Shown as plain text under the field: no mrkdwn escapes there.
        ack(response_action="errors", errors={field_for_error(exc.message): unescape(exc.message)[:150]})
        return
    ack()


def _start(body: dict[str, Any], view: dict[str, Any], client: Any, context: Any) -> None:
    try:
        req = _parse(view)
    except UserError:
        return  # already shown in the form
    services: Services = context["services"]
    team = view.get("team_id") or body["team"]["id"]
    user = body["user"]["id"]
    try:
        channel = json.loads(view.get("private_metadata") or "{}").get("channel") or user
    except (json.JSONDecodeError, AttributeError):
        channel = user

    def reply(text: str, blocks: Any = None) -> None:
        client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

    # A form submitted twice carries the same view id: one job.
    try:
        req, note = open_default(services, req)
        result = launch(services, req, team_id=team, user=user, channel=channel, key=idempotency_key(team, user, view["id"]))
    except Exception as exc:  # noqa: BLE001 - no response_url here: answered as an ephemeral message
        if note is not None and isinstance(exc, UserError):
            exc = UserError(f"{note}\n{exc.message}", exc.usage)
        answer_error(exc, reply)
        return
    reply(**with_note(launch_answer(result, channel), note))


def register(app: App) -> None:
    app.view("start_job")(ack=_ack, lazy=[_start])
