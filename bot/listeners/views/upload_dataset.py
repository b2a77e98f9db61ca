"""The `/ft upload` form: a file chosen is fetched from Slack, checked, and uploaded once."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot.datasets.intake import Arrival, take_in
from bot.messages.upload_modal import CALLBACK, submitted
from bot.services import Services


def _ack(ack: Ack, view: dict[str, Any]) -> None:
    ids, _ = submitted(view)
    if len(ids) != 1:
        ack(response_action="errors", errors={"file": "Choose one .jsonl file."})
        return
    ack()


def _take_in(body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
    ids, model = submitted(view)
    if len(ids) != 1:
        return
    services: Services = context["services"]
    meta = json.loads(view.get("private_metadata") or "{}")
    team = view.get("team_id") or body["team"]["id"]
    take_in(services, Arrival(team_id=team, slack_file_id=ids[0], user_id=body["user"]["id"], channel_id=meta.get("channel"), model=model, explicit=True, provider=meta.get("provider")))


def register(app: App) -> None:
    app.view(CALLBACK)(ack=_ack, lazy=[_take_in])
