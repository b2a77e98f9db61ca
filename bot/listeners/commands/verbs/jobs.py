"""`/ft start | list | status | cancel | pause | resume`: Slack in, domain calls, answers out."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.commands.parse import Command, one_arg, optional_count, parse_start
from bot.errors import UserError
from bot.jobs.launch import idempotency_key, launch, start_choices
from bot.jobs.lifecycle import steer_job
from bot.jobs.listing import PAGE, list_page
from bot.jobs.store import apply_fresh_status, resolve_job
from bot.jobs.view import view_of
from bot.listeners.commands.registry import handles
from bot.messages.answers import job_list, job_status, launch_answer, steered_answer, with_note
from bot.messages.start_modal import BASE_MODELS, TOGETHER_BASE_MODELS, start_modal
from bot.provider.base import provider_label
from bot.retirements.sunset import closed_models, form_default, open_default
from bot.services import Services
from storage.models import Job
from storage.types import utcnow


@handles("start")
def start(cmd: Command, *, respond: Respond, client: Any, body: dict[str, Any], services: Services, **_: Any) -> None:
    team, user, channel = body["team_id"], body["user_id"], body["channel_id"]
    if not cmd.args:
        files, models = start_choices(services, team)
        choices = [(name, provider_label(name)) for name in services.providers]
        closed = closed_models(services, [*BASE_MODELS, *TOGETHER_BASE_MODELS, *models])
        # The form starts on a provider whose default base still trains, and says so.
        provider, empty_means = form_default(services)
        view = start_modal(files, models, channel=channel, providers=choices, default_provider=provider, closed=closed, empty_means=empty_means)
        client.views_open(trigger_id=body["trigger_id"], view=view)
        return
    req, note = open_default(services, parse_start(cmd.args))
    key = idempotency_key(team, user, channel, body.get("trigger_id", ""), cmd.rest)
    try:
        result = launch(services, req, team_id=team, user=user, channel=channel, key=key)
    except UserError as exc:
        if note is None:
            raise
        raise UserError(f"{note}\n{exc.message}", exc.usage) from None
    respond(response_type="ephemeral", **with_note(launch_answer(result, channel), note))


@handles("list")
def list_jobs(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    n = optional_count(cmd, 0, PAGE, 100)
    page = list_page(services, body["team_id"], offset=0, page=n)
    respond(response_type="ephemeral", **job_list(page.jobs, offset=page.offset, total=page.total, page=page.page))


@handles("status")
def status(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    ref = one_arg(cmd, "job id")
    with services.db.session() as s:
        found = resolve_job(s, body["team_id"], ref)
        row_id, job_id, provider = found.id, found.provider_job_id, found.provider
    fresh = services.provider_for(provider).get_job(job_id)
    with services.db.session() as s:
        row = s.get(Job, row_id)
        apply_fresh_status(row, fresh)  # fresher than the last poll
        view = view_of(row)
    respond(response_type="ephemeral", **job_status(view, utcnow()))


def _steer(action: str):  # noqa: ANN202
    def handler(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
        ref = one_arg(cmd, "job id")
        view = steer_job(services, team_id=body["team_id"], user=body["user_id"], ref=ref, action=action)
        respond(response_type="ephemeral", **steered_answer(view, action))

    return handler


handles("cancel")(_steer("cancel"))
handles("pause")(_steer("pause"))
handles("resume")(_steer("resume"))
