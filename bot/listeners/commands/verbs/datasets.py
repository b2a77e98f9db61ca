"""`/ft upload` (the upload form) and `/ft files` (the team's datasets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt import Respond
from sqlalchemy import select

from bot.commands.parse import USAGE, Command
from bot.errors import UserError
from bot.listeners.commands.registry import handles
from bot.messages.dataset_report import DatasetRow, datasets_list
from bot.messages.upload_modal import upload_modal
from bot.services import Services
from storage.models import Dataset


@handles("upload")
def upload(cmd: Command, *, respond: Respond, client: Any, body: dict[str, Any], **_: Any) -> None:
    if cmd.args:
        raise UserError("`upload` takes no arguments: choose the file in the form, or share a .jsonl file with the bot.", USAGE["upload"])
    if not body.get("trigger_id"):
        raise UserError("Slack sent no trigger to open the form with; try again.")
    client.views_open(trigger_id=body["trigger_id"], view=upload_modal(body.get("channel_id")))


@handles("files")
def files(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`files` takes no arguments.", USAGE["files"])
    with services.db.session() as s:
        rows = [
            DatasetRow(d.name, d.provider_file_id, d.bytes, d.example_count, d.verdict, d.tokens, d.uploaded_by, d.created_at)
            for d in s.scalars(select(Dataset).where(Dataset.team_id == body["team_id"]).order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(200))
        ]
    known = {r.provider_file_id for r in rows}
    # Fine-tuning files uploaded outside Slack are listed too, unchecked.
    rows += [
        DatasetRow(f.filename, f.id, f.bytes, None, None, None, None, datetime.fromtimestamp(f.created_at, UTC))
        for f in services.provider.list_files(purpose="fine-tune", limit=100)
        if f.id not in known
    ]
    respond(response_type="ephemeral", **datasets_list(rows))
