"""`/ft models | try | files`."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from sqlalchemy import select

from bot.commands.parse import USAGE, Command
from bot.errors import UserError
from bot.jobs.store import ts
from bot.listeners.commands.ft import handles
from bot.messages.answers import FileView, ModelView, files_answer, models_answer, try_answer
from bot.retirements.table import base_model_of, table_for
from bot.services import Services
from storage.models import Dataset, Job

MAX_PROMPT = 4000


@handles("models")
def models(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`models` takes no arguments.", USAGE["models"])
    tuned = [m for m in services.provider.list_models() if m.is_fine_tuned]
    table = table_for(services.settings.retirements_file)
    with services.db.session() as s:
        by_model = {j.fine_tuned_model: j for j in s.scalars(select(Job).where(Job.fine_tuned_model.in_([m.id for m in tuned])))}
        views = []
        for m in sorted(tuned, key=lambda m: m.created, reverse=True):
            job = by_model.get(m.id)
            if job is not None and job.team_id not in (None, body["team_id"]):
                continue  # another workspace's model
            ends = table.lookup(job.provider if job else services.provider.name, base_model_of(m.id, known_base=job.base_model if job else None))
            views.append(ModelView(m.id, ts(m.created), job.provider_job_id if job else None, job.started_by if job else None, ends.serving_ends if ends else None))
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
