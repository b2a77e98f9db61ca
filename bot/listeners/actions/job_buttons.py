"""Buttons on job cards and lists: Cancel / Pause / Resume, and list paging."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.errors import guarded
from bot.jobs.lifecycle import steer_job
from bot.listeners.commands.verbs.jobs import list_page
from bot.services import Services

ACTIONS = {"job_cancel": "cancel", "job_pause": "pause", "job_resume": "resume"}


def _ack(ack: Ack) -> None:
    ack()


def _team(body: dict[str, Any]) -> str:
    return (body.get("team") or {}).get("id") or body["user"]["team_id"]


@guarded
def _steer(body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any) -> None:
    services: Services = context["services"]
    verb = ACTIONS[action["action_id"]]
    view = steer_job(services, team_id=_team(body), user=body["user"]["id"], ref=action["value"], action=verb)
    done = {"cancel": "cancelled", "pause": "paused", "resume": "resumed"}[verb]
    respond(response_type="ephemeral", replace_original=False, text=f"<@{body['user']['id']}> {done} `{view.id}`; the card will follow.")


@guarded
def _page(body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any) -> None:
    services: Services = context["services"]
    try:
        offset = max(0, int(action.get("value", "0")))
    except ValueError:
        offset = 0
    respond(replace_original=True, **list_page(services, _team(body), offset=offset))


def register(app: App) -> None:
    for action_id in ACTIONS:
        app.action(action_id)(ack=_ack, lazy=[_steer])
    app.action("list_page")(ack=_ack, lazy=[_page])
