"""`/ft events | checkpoints | metrics | watch | unwatch`."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond
from sqlalchemy import delete

from bot.charts.loss_chart import chart_title, loss_chart_png
from bot.commands.parse import USAGE, Command, one_arg, optional_count, parse_channel
from bot.errors import UserError
from bot.jobs.metrics import chart_points
from bot.jobs.notify import subscribe
from bot.jobs.store import resolve_job, ts
from bot.listeners.commands.registry import handles
from bot.messages.answers import CheckpointView, checkpoints_answer, events_answer
from bot.messages.events import EventView
from bot.mrkdwn import code
from bot.outbox.deliver import deliver_now
from bot.provider.base import Provider
from bot.services import Services
from storage.models import Subscription
from storage.types import utcnow


def _job_id(services: Services, team_id: str, ref: str) -> tuple[str, Provider]:
    """The job's id and the provider it runs at."""
    with services.db.session() as s:
        row = resolve_job(s, team_id, ref)
        return row.provider_job_id, services.provider_for(row.provider)


@handles("events")
def events(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if not 1 <= len(cmd.args) <= 2:
        raise UserError("`events` needs a job id and, optionally, how many.", USAGE["events"])
    n = optional_count(cmd, 1, 20, 200)
    job_id, at = _job_id(services, body["team_id"], cmd.args[0])
    newest_first = at.list_events(job_id, limit=n)
    views = [EventView(ts(e.created_at), e.level, e.message, e.type) for e in reversed(newest_first)]
    respond(response_type="ephemeral", **events_answer(job_id, views))


@handles("checkpoints")
def checkpoints(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    job_id, at = _job_id(services, body["team_id"], one_arg(cmd, "job id"))
    views = [
        CheckpointView(c.step_number, c.model, c.metrics.get("train_loss"), c.metrics.get("valid_loss"), c.metrics.get("train_mean_token_accuracy"), ts(c.created_at), c.label, c.adapter)
        for c in at.list_checkpoints(job_id)
    ]
    respond(response_type="ephemeral", **checkpoints_answer(job_id, views))


@handles("metrics")
def metrics(cmd: Command, *, respond: Respond, client: Any, body: dict[str, Any], services: Services, **_: Any) -> None:
    with services.db.session() as s:
        row = resolve_job(s, body["team_id"], one_arg(cmd, "job id"))
        row_id, job_id, provider = row.id, row.provider_job_id, row.provider
        title = chart_title(job_id, row.status, model=row.fine_tuned_model, suffix=row.suffix, base_model=row.base_model)
    points, ckpts, total = chart_points(services, row_id, job_id, provider)
    if not points:
        respond(response_type="ephemeral", text=f"No training metrics for {code(job_id)} yet: they start when training does.")
        return
    png = loss_chart_png(points, title=title, checkpoints=ckpts)
    last = points[-1]
    comment = f"Loss chart for {code(job_id)}: step {last.step}" + (f"/{total}" if total else "") + (f", train loss {last.train_loss:.3f}" if last.train_loss is not None else "")
    client.files_upload_v2(channel=body["channel_id"], content=png, filename=f"loss-{job_id}.png", title=f"Loss chart for {job_id}", initial_comment=comment)


@handles("watch")
def watch(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if not 1 <= len(cmd.args) <= 2:
        raise UserError("`watch` needs a job id and, optionally, a channel.", USAGE["watch"])
    channel = parse_channel(cmd.args[1]) if len(cmd.args) == 2 else body["channel_id"]
    with services.db.session() as s:
        row = resolve_job(s, body["team_id"], cmd.args[0])
        sub, created = subscribe(s, row, channel, user=body["user_id"], now=utcnow())
        s.flush()
        sub_id, job_id = sub.id, row.provider_job_id
    if not created:
        respond(response_type="ephemeral", text=f"<#{channel}> already follows {code(job_id)}.")
        return
    deliver_now(services, [sub_id])
    respond(response_type="ephemeral", text=f":eyes: <#{channel}> now follows {code(job_id)}: its card is there, updates go in its thread.")


@handles("unwatch")
def unwatch(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    channel = body["channel_id"]
    with services.db.session() as s:
        row = resolve_job(s, body["team_id"], one_arg(cmd, "job id"))
        gone = s.execute(delete(Subscription).where(Subscription.job_id == row.id, Subscription.channel_id == channel)).rowcount
        job_id = row.provider_job_id
    if not gone:
        respond(response_type="ephemeral", text=f"This channel does not follow {code(job_id)}.")
        return
    respond(response_type="ephemeral", text=f"This channel no longer follows {code(job_id)}.")
