"""`/ft models | try` (`files` lives with the datasets verbs)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from sqlalchemy import select

from bot.commands.parse import USAGE, Command
from bot.errors import UserError
from bot.jobs.store import ts
from bot.listeners.commands.ft import handles
from bot.messages.answers import ModelView, models_answer, try_answer
from bot.services import Services
from storage.models import Job

MAX_PROMPT = 4000


@handles("models")
def models(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`models` takes no arguments.", USAGE["models"])
    tuned = [m for m in services.provider.list_models() if m.is_fine_tuned]
    with services.db.session() as s:
        by_model = {j.fine_tuned_model: j for j in s.scalars(select(Job).where(Job.fine_tuned_model.in_([m.id for m in tuned])))}
        views = []
        for m in sorted(tuned, key=lambda m: m.created, reverse=True):
            job = by_model.get(m.id)
            if job is not None and job.team_id not in (None, body["team_id"]):
                continue  # another workspace's model
            views.append(ModelView(m.id, ts(m.created), job.provider_job_id if job else None, job.started_by if job else None))
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
