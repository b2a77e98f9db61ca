"""A job's automatic evaluation (base vs fine-tuned), created when its job succeeds: a subscriber of
JobEnded, in the poll's transaction (bot/wiring.py), so the run is created once with the ending."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events import Context, JobEnded
from bot.settings import Settings
from storage.models import Job, Subscription


def on_job_ended(ctx: Context, event: JobEnded) -> None:
    if event.status != "succeeded" or not event.fine_tuned_model or not (ctx.settings or Settings()).eval_on_completion:
        return
    job = ctx.session.get(Job, event.job_id)
    if job is not None:
        plan_evaluation(ctx.session, job)


def plan_evaluation(session: Session, job: Job) -> None:
    """The job's automatic evaluation (base vs fine-tuned), created in the poll that saw it succeed;
    a worker prepares and runs it. Its report goes into the card's thread of the channel that
    started the job (else the first following it)."""
    from bot.evals.scorers import DEFAULT_SCORES
    from storage.models import EvalRun

    key = f"job:{job.id}"
    if session.scalar(select(EvalRun.id).where(EvalRun.request_key == key)) is not None:
        return
    subs = list(session.scalars(select(Subscription).where(Subscription.job_id == job.id, Subscription.ended_at.is_(None)).order_by(Subscription.id)))
    sub = next((x for x in subs if x.channel_id == job.origin_channel), subs[0] if subs else None)
    if sub is None:
        return  # no channel follows the job: nobody would read the report, so nothing is spent
    session.add(
        EvalRun(
            request_key=key, team_id=job.team_id, channel_id=sub.channel_id if sub else None, job_id=job.id, subscription_id=sub.id if sub else None,
            model=job.fine_tuned_model, provider=job.provider, baseline=job.base_model, baseline_provider=job.provider, scores=list(DEFAULT_SCORES),
            source_note="", status="preparing", examples=0, skipped={}, estimate={}, progress_shown=0,
        )
    )
