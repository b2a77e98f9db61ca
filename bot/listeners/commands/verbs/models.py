"""`/ft models | try | files`."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from sqlalchemy import select

from bot.commands.parse import USAGE, Command
from bot.errors import UserError
from bot.jobs.listing import fine_tuned_models
from bot.listeners.commands.registry import handles
from bot.messages.answers import FileView, files_answer, models_answer, try_answer
from bot.services import Services
from storage.models import Dataset

MAX_PROMPT = 4000


@handles("models")
def models(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`models` takes no arguments.", USAGE["models"])
    views = fine_tuned_models(services, body["team_id"])
    respond(response_type="ephemeral", **models_answer(views))


@handles("try")
def try_model(cmd: Command, *, respond: Respond, services: Services, **_: Any) -> None:
    model, _, prompt = cmd.rest.partition(" ")
    prompt = prompt.strip().strip('"').strip()
    if not model or not prompt:
        raise UserError("`try` needs a model and a prompt.", USAGE["try"])
    if len(prompt) > MAX_PROMPT:
        raise UserError(f"The prompt is {len(prompt)} characters; at most {MAX_PROMPT}.", USAGE["try"])
    answer = services.provider.complete(model, prompt)
    respond(response_type="in_channel", **try_answer(model, prompt, answer))


@handles("files")
def files(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`files` takes no arguments.", USAGE["files"])
    with services.db.session() as s:
        ours = s.scalars(select(Dataset).where(Dataset.team_id == body["team_id"]).order_by(Dataset.created_at.desc())).all()
        views = [FileView(d.provider_file_id, d.name, d.bytes, d.example_count, (d.validation or {}).get("verdict")) for d in ours]
    known = {v.id for v in views}
    views += [FileView(f.id, f.filename, f.bytes, None, None) for f in services.provider.list_files(purpose="fine-tune", limit=100) if f.id not in known]
    respond(response_type="ephemeral", **files_answer(views))
