""""Upload anyway" on a report with errors: the user insists; the file is uploaded once."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot.datasets.intake import Arrival, take_in
from bot.messages.dataset_report import FORCE_ACTION
from bot.services import Services


def _ack(ack: Ack) -> None:
    ack()


def _force(body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
    services: Services = context["services"]
    try:
        value = json.loads(action.get("value") or "{}")
    except json.JSONDecodeError:
        return
    if not isinstance(value, dict) or not isinstance(value.get("f"), str):
        return
    team = (body.get("team") or {}).get("id") or body["user"].get("team_id")
    channel = value.get("c") or (body.get("channel") or {}).get("id")
    take_in(
        services,
        Arrival(
            team_id=team,
            slack_file_id=value["f"],
            user_id=body["user"]["id"],
            channel_id=channel,
            thread_ts=value.get("t"),
            force=True,
            model=value.get("m") if isinstance(value.get("m"), str) else None,
            explicit=True,
            provider=value.get("p") if isinstance(value.get("p"), str) else None,
        ),
    )


def register(app: App) -> None:
    app.action(FORCE_ACTION)(ack=_ack, lazy=[_force])
