"""The target job's polls move its migration on: a subscriber of JobChanged (bot/wiring.py), run in
the transaction that stores the poll, so the migration's state and the job's commit together."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events import Context, JobChanged
from bot.migration import parity
from bot.migration.states import DONE, EVALUATING, FAILED, STARTING, TRAINING
from bot.mrkdwn import code
from bot.outbox.queue import enqueue
from bot.provider.base import provider_label
from storage.models import Job, Migration, Subscription
from storage.types import utcnow

# The parity report plugs in here: given the session and the migration, it takes over from
# `evaluating` (and moves the migration to done). None: a succeeded job makes the migration done.
EVALUATE: Callable[[Session, Migration], None] | None = parity.start


def plan_links(session: Session, mig: Migration) -> list[int]:
    """Each card names the other: the new job's thread says where it comes from, the source job's
    thread (when ftbot has its card) where its work went. Returns the subscriptions with news."""
    ids: list[int] = []
    target = session.scalar(select(Job).where(Job.provider == mig.target_provider, Job.provider_job_id == mig.target_job_id)) if mig.target_job_id else None
    source = session.scalar(select(Job).where(Job.provider == mig.source_provider, Job.provider_job_id == mig.source_job_id)) if mig.source_job_id else None
    for job, text in (
        (target, f":truck: Migration #{mig.id}: this job rebuilds {code(mig.source_model)} (from {code(mig.source_job_id or '?')} at {provider_label(mig.source_provider)}) on {provider_label(mig.target_provider)}."),
        (source, f":truck: Migration #{mig.id}: this model is being rebuilt on {provider_label(mig.target_provider)} by {code(mig.target_job_id or '?')}."),
    ):
        if job is None:
            continue
        for sub in session.scalars(select(Subscription).where(Subscription.job_id == job.id, Subscription.ended_at.is_(None))):
            if enqueue(session, f"s{sub.id}:migration:{mig.id}", kind="reply", channel=sub.channel_id, sub=sub, payload={"text": text}):
                ids.append(sub.id)
    return ids


def on_job_changed(ctx: Context, event: JobChanged) -> None:
    job = ctx.session.get(Job, event.job_id)
    if job is not None:
        on_job_polled(ctx.session, job)


def on_job_polled(session: Session, job: Job) -> None:
    """A job's poll: if it is a migration's target, the migration follows it."""
    if not job.idempotency_key:
        return
    mig = session.scalar(select(Migration).where(Migration.job_key == job.idempotency_key))
    if mig is None or mig.state not in (STARTING, TRAINING):
        return
    now = utcnow()
    if mig.state == STARTING:
        # Started after a budget approval: first seen here.
        mig.state, mig.target_job_id, mig.updated_at = TRAINING, job.provider_job_id, now
        session.flush()
        plan_links(session, mig)
    if not job.is_final:
        return
    if job.status == "succeeded":
        mig.target_model = job.fine_tuned_model
        mig.state = EVALUATING if EVALUATE is not None else DONE
        if EVALUATE is None:
            mig.active_key = None
    else:
        why = (job.error or {}).get("message") if isinstance(job.error, dict) else None
        mig.state, mig.active_key = FAILED, None
        mig.error = f"the {provider_label(mig.target_provider)} job {job.provider_job_id} {job.status}" + (f": {why}" if why else "")
    mig.updated_at = now
    if mig.state == EVALUATING and EVALUATE is not None:
        EVALUATE(session, mig)
