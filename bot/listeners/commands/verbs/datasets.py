"""`/ft upload` (the upload form) and `/ft files` (the team's datasets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt import Respond
from sqlalchemy import select

from bot.commands.parse import USAGE, Command, parse_upload
from bot.datasets.models import models_for
from bot.errors import UserError
from bot.listeners.commands.registry import handles
from bot.messages.dataset_report import DatasetRow, datasets_list
from bot.messages.upload_modal import upload_modal
from bot.mrkdwn import clip, escape
from bot.provider.base import ProviderError, provider_label
from bot.services import Services
from storage.models import Dataset


@handles("upload")
def upload(cmd: Command, *, respond: Respond, client: Any, body: dict[str, Any], services: Services, **_: Any) -> None:
    provider = parse_upload(cmd.args)
    if provider is not None:
        services.provider_for(provider)  # not enabled: say so before the form opens
    if not body.get("trigger_id"):
        raise UserError("Slack sent no trigger to open the form with; try again.")
    label = provider_label(provider or services.default_provider) if services.several_providers else None
    models = models_for(provider or services.default_provider)
    client.views_open(trigger_id=body["trigger_id"], view=upload_modal(body.get("channel_id"), provider=provider, provider_label=label, models=models))


@handles("files")
def files(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`files` takes no arguments.", USAGE["files"])
    several = services.several_providers
    with services.db.session() as s:
        rows = [
            DatasetRow(d.name, d.provider_file_id, d.bytes, d.example_count, d.verdict, d.tokens, d.uploaded_by, d.created_at, d.provider if several else None)
            for d in s.scalars(select(Dataset).where(Dataset.team_id == body["team_id"]).order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(200))
        ]
    known = {(r.provider, r.provider_file_id) for r in rows}
    # Fine-tuning files uploaded outside Slack are listed too, unchecked; a provider that fails is
    # named rather than hiding the others' files.
    down: list[str] = []
    for name, provider in services.providers.items():
        try:
            found = provider.list_files(purpose="fine-tune", limit=100)
        except ProviderError as exc:
            if not several:
                raise
            down.append(f"{provider_label(name)}: {exc.reason}")
            continue
        label = name if several else None
        rows += [
            DatasetRow(f.filename, f.id, f.bytes, None, None, None, None, datetime.fromtimestamp(f.created_at, UTC), label)
            for f in found
            if (label, f.id) not in known
        ]
    answer = datasets_list(rows)
    if down:
        answer["blocks"].append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip("Not listed: " + "; ".join(escape(d) for d in down), 2900)}]})
    respond(response_type="ephemeral", **answer)
