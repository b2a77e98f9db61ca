"""The `/ft start` form: field errors shown in the form; a valid one starts the job once."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App
from sqlalchemy import select

from bot.commands.parse import StartRequest, parse_start
from bot.errors import UserError, answer_error
from bot.listeners.commands.verbs.jobs import idempotency_key, launch
from bot.messages.start_modal import field_for_error, form_to_args, form_values
from bot.services import Services
from storage.models import Dataset, Job


def modal_choices(services: Services, team_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Datasets (ours first, then the provider's other fine-tune files) and fine-tuned models."""
    with services.db.session() as s:
        datasets = s.scalars(select(Dataset).where(Dataset.team_id == team_id).order_by(Dataset.created_at.desc()).limit(100)).all()
        files = [(d.provider_file_id, f"{d.name} ({d.example_count} ex.)") for d in datasets]
        models = [m for m in s.scalars(select(Job.fine_tuned_model).where(Job.team_id == team_id, Job.fine_tuned_model.is_not(None)).order_by(Job.id.desc()).limit(50))]
    known = {f for f, _ in files}
    files += [(f.id, f"{f.filename} ({f.id})") for f in services.provider.list_files(purpose="fine-tune", limit=100) if f.id not in known]
    return files[:100], models


def _parse(view: dict[str, Any]) -> StartRequest:
    return parse_start(form_to_args(form_values(view["state"]["values"])))


def _ack(ack: Ack, view: dict[str, Any]) -> None:
    try:
        _parse(view)
    except UserError as exc:
        ack(response_action="errors", errors={field_for_error(exc.message): exc.message[:150]})
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
    channel = json.loads(view.get("private_metadata") or "{}").get("channel") or user

    def respond(text: str = "", blocks: Any = None, **_: Any) -> None:
        client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

    # A form submitted twice carries the same view id: one job.
    try:
        launch(services, req, team_id=team, user=user, channel=channel, key=idempotency_key(team, user, view["id"]), respond=respond)
    except Exception as exc:  # noqa: BLE001 - no response_url here: answered as an ephemeral message
        answer_error(exc, respond)


def register(app: App) -> None:
    app.view("start_job")(ack=_ack, lazy=[_start])
