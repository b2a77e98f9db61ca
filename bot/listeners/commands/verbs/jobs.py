"""`/ft start | list | status | cancel | pause | resume`."""

from __future__ import annotations

import hashlib
from typing import Any

from slack_bolt import Respond

from bot.commands.parse import Command, StartRequest, one_arg, optional_count, parse_start
from bot.datasets.resolve import resolve_file
from bot.jobs.lifecycle import start_job, steer_job
from bot.jobs.store import apply_fresh_status, count_jobs, recent_jobs, resolve_job
from bot.jobs.view import view_of
from bot.listeners.commands.ft import handles
from bot.messages.answers import PAGE, job_list, job_status, started_answer
from bot.messages.start_modal import start_modal
from bot.outbox.deliver import deliver_now
from bot.provider.base import JobSpec
from bot.services import Services
from storage.types import utcnow


def idempotency_key(*parts: str) -> str:
    """Stable for the same Slack delivery: a retried command or a double-submitted form maps to one job."""
    return "sl-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def launch(services: Services, req: StartRequest, *, team_id: str, user: str, channel: str, key: str, respond: Respond) -> None:
    """Check the files, start the job once, post its card. Shared by the command and the form."""
    training = resolve_file(services, team_id, req.file, what="training file")
    validation = resolve_file(services, team_id, req.validation, what="validation file") if req.validation else None
    spec = JobSpec(
        model=req.model,
        training_file=training,
        validation_file=validation,
        method=req.method,
        hyperparameters=req.hyperparameters,
        suffix=req.suffix,
        seed=req.seed,
    )
    started = start_job(services, spec, team_id=team_id, user=user, channel=channel, idempotency_key=key)
    deliver_now(services, started.subscription_ids)
    respond(response_type="ephemeral", **started_answer(started.job, channel, duplicate=not started.created))


@handles("start")
def start(cmd: Command, *, respond: Respond, client: Any, body: dict[str, Any], services: Services, **_: Any) -> None:
    team, user, channel = body["team_id"], body["user_id"], body["channel_id"]
    if not cmd.args:
        from bot.listeners.views.start_job import modal_choices

        files, models = modal_choices(services, team)
        client.views_open(trigger_id=body["trigger_id"], view=start_modal(files, models, channel=channel))
        return
    req = parse_start(cmd.args)
    key = idempotency_key(team, user, channel, body.get("trigger_id", ""), cmd.rest)
    launch(services, req, team_id=team, user=user, channel=channel, key=key, respond=respond)


@handles("list")
def list_jobs(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    n = optional_count(cmd, 0, PAGE, 100)
    respond(response_type="ephemeral", **list_page(services, body["team_id"], offset=0, page=n))


def list_page(services: Services, team_id: str, *, offset: int, page: int = PAGE) -> dict[str, Any]:
    with services.db.session() as s:
        rows = recent_jobs(s, team_id, offset + page)[offset:]
        total = count_jobs(s, team_id)
        views = [view_of(r) for r in rows]
    return job_list(views, offset=offset, total=total, page=page)


@handles("status")
def status(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    ref = one_arg(cmd, "job id")
    with services.db.session() as s:
        job_id = resolve_job(s, body["team_id"], ref).provider_job_id
    fresh = services.provider.get_job(job_id)
    with services.db.session() as s:
        row = resolve_job(s, body["team_id"], job_id)
        apply_fresh_status(row, fresh)  # fresher than the last poll
        view = view_of(row)
    respond(response_type="ephemeral", **job_status(view, utcnow()))


def _steer(action: str):  # noqa: ANN202
    def handler(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
        ref = one_arg(cmd, "job id")
        view = steer_job(services, team_id=body["team_id"], user=body["user_id"], ref=ref, action=action)
        done = {"cancel": "Cancelling", "pause": "Paused", "resume": "Resuming"}[action]
        respond(response_type="ephemeral", text=f"{done} `{view.id}`: it is now {view.status.replace('_', ' ')}.")

    return handler


handles("cancel")(_steer("cancel"))
handles("pause")(_steer("pause"))
handles("resume")(_steer("resume"))

