"""`/ft delete-model MODEL [REASON]` and `/ft audit [N]`."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.approvals.audit import MAX_ENTRIES, latest
from bot.approvals.requests import request_model_deletion
from bot.commands.parse import USAGE, Command, optional_count
from bot.errors import UserError
from bot.listeners.commands.registry import handles
from bot.messages.audit import audit_answer
from bot.mrkdwn import code
from bot.services import Services

MAX_REASON = 500


@handles("delete-model")
def delete_model(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    # The reason is free text (apostrophes and all): take it raw, after the model name.
    model, _, reason = cmd.rest.strip().partition(" ")
    reason = reason.strip()
    if not model:
        raise UserError("`delete-model` needs the model to delete.", USAGE["delete-model"])
    if len(reason) > MAX_REASON:
        raise UserError(f"The reason is {len(reason)} characters; at most {MAX_REASON}.", USAGE["delete-model"])
    opened = request_model_deletion(
        services, team_id=body["team_id"], user=body["user_id"], channel=body["channel_id"], model=model, reason=reason or None, request_key=body.get("trigger_id")
    )
    v = opened.view
    respond(
        response_type="ephemeral",
        text=f":ballot_box_with_ballot: Asked <#{opened.channel}> to approve deleting {code(v.target)} (request #{v.id}): it needs {v.required} approvals from teammates within {services.settings.approval_ttl_hours:g} hours.",
    )


@handles("audit")
def audit(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    n = optional_count(cmd, 0, 20, MAX_ENTRIES)
    respond(response_type="ephemeral", **audit_answer(latest(services, body["team_id"], n), n))
