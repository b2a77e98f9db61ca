"""The job's messages drawn when they are sent (registered with the outbox by bot/wiring.py): its
card (posted, then edited in place), its loss chart, and the digest of many endings in a channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.charts.loss_chart import Point, chart_title, loss_chart_png
from bot.jobs.view import view_of
from bot.messages.digest import endings_digest
from bot.messages.job_card import job_card
from bot.outbox import digest, renderers
from bot.outbox.renderers import File, NotReady, Row
from storage.models import Checkpoint, Job, MetricPoint
from storage.types import utcnow


def chart_filename(job_provider_id: str) -> str:
    return f"loss-{job_provider_id}.png"


def render_card(row: Row) -> dict[str, Any]:
    with row.db.session() as s:
        job = s.get(Job, row.job_id)
        if job is None:
            raise NotReady("job row missing")
        return job_card(view_of(job), utcnow())


def chart_name(row: Row) -> str:
    with row.db.session() as s:
        job = s.get(Job, row.job_id)
        return chart_filename(job.provider_job_id if job else "job")


def render_chart(row: Row) -> File:
    with row.db.session() as s:
        job = s.get(Job, row.job_id)
        if job is None:
            raise NotReady("job row missing")
        points = [
            Point(p.step, p.train_loss, p.valid_loss, p.train_accuracy, p.valid_accuracy)
            for p in s.scalars(select(MetricPoint).where(MetricPoint.job_id == job.id).order_by(MetricPoint.step))
        ]
        ckpts = list(s.scalars(select(Checkpoint.step_number).where(Checkpoint.job_id == job.id)))
        provider_id = job.provider_job_id
        title = chart_title(provider_id, job.status, model=job.fine_tuned_model, suffix=job.suffix, base_model=job.base_model)
    return File(loss_chart_png(points, title=title, checkpoints=ckpts), chart_filename(provider_id), f"Loss chart for {provider_id}")


def render_digest(row: Row) -> dict[str, Any]:
    """The digest bot/outbox/digest.py gathered (the post, or an edit of it): a line per job, in the
    order of their alerts, each with the evaluation headline queued for the job's alert by now."""
    ids = [int(i) for i in row.payload.get(digest.JOBS) or []]
    with row.db.session() as s:
        heads = digest.headlines(s, str(row.payload.get("edit_of") or row.key), ids)
        jobs = [j for j in (s.get(Job, i) for i in ids) if j is not None]
        views = [view_of(j) for j in jobs]
        return endings_digest(views, {v.id: heads[j.id] for v, j in zip(views, jobs, strict=True) if j.id in heads})


def register() -> None:
    renderers.register("card", render_card)
    renderers.register("card_update", render_card)
    renderers.register("chart", render_chart, file_name=chart_name)
    renderers.register(digest.DIGEST_RENDERER, render_digest)
