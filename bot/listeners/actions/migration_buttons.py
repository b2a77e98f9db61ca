"""Confirm / Cancel on a migration's preview. Confirm starts the target job once, however often it is
clicked or delivered (bot.migration.flow.confirm moves the row ready -> starting conditionally)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.errors import UserError, guarded
from bot.messages.migration import CANCEL_ACTION, CONFIRM_ACTION, migration_outcome
from bot.migration.flow import cancel, confirm
from bot.replies import reply_for
from bot.services import Services


def _ack(ack: Ack) -> None:
    ack()


def _id(action: dict[str, Any]) -> int:
    try:
        return int(action.get("value") or "")
    except ValueError:
        raise UserError("That button names no migration.") from None


def _answer(body: dict[str, Any], respond: Respond | None, client: Any, text: str) -> None:
    if respond is not None and body.get("response_url"):
        respond(replace_original=True, text=text)  # the preview's buttons go with it
        return
    reply = reply_for(body, client, respond)
    if reply is not None:
        reply(text)


@guarded
def _confirm(body: dict[str, Any], action: dict[str, Any], respond: Respond | None, client: Any, context: Any) -> None:
    services: Services = context["services"]
    team = (body.get("team") or {}).get("id") or body["user"]["team_id"]
    done = confirm(services, team_id=team, migration_id=_id(action), user=body["user"]["id"])
    _answer(body, respond, client, migration_outcome(done.migration, repeat=done.repeat, held_request=done.held_request))


@guarded
def _cancel(body: dict[str, Any], action: dict[str, Any], respond: Respond | None, client: Any, context: Any) -> None:
    services: Services = context["services"]
    team = (body.get("team") or {}).get("id") or body["user"]["team_id"]
    mig = cancel(services, team_id=team, migration_id=_id(action), user=body["user"]["id"])
    _answer(body, respond, client, migration_outcome(mig, repeat=mig.state != "cancelled"))


def register(app: App) -> None:
    app.action(CONFIRM_ACTION)(ack=_ack, lazy=[_confirm])
    app.action(CANCEL_ACTION)(ack=_ack, lazy=[_cancel])
