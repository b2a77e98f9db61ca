"""Which Slack messages a job's change causes, and the change announced (bot/events). Called inside
the transaction that stores the change, so the state and its messages commit together or not at all.

Idempotency keys are derived from what the message is about (subscription, event ids, status and
step), so re-running the same poll after a crash produces the same keys, which the unique constraint
on the outbox then refuses twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.events import JobChanged, JobEnded, ModelAppeared, announce
from bot.jobs.health import Finding
from bot.jobs.health_watch import watch_job
from bot.jobs.store import StoredEvent
from bot.jobs.view import JobView, view_of
from bot.messages.events import EventView, event_replies
from bot.messages.health import health_message
from bot.messages.job_card import ServingNote, final_alert
from bot.outbox.queue import enqueue
from bot.settings import Settings
from storage.models import Job, OutboxMessage, Subscription

if TYPE_CHECKING:
    from bot.services import Services

CARD_MIN_INTERVAL = timedelta(seconds=60)
MILESTONES = 4  # card refreshes at 25 %, 50 %, 75 % and 100 % however many steps arrive


def subscribe(session: Session, job: Job, channel: str, *, user: str | None, now: datetime) -> tuple[Subscription, bool]:
    """Subscribe a channel to a job and queue its job card. (subscription, newly created).

    A subscription that ended (the channel stopped accepting posts) starts again with a new card."""
    sub = session.scalar(select(Subscription).where(Subscription.job_id == job.id, Subscription.channel_id == channel))
    if sub is not None and sub.ended_at is None:
        return sub, False
    if sub is not None:
        restarts = session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.subscription_id == sub.id, OutboxMessage.kind == "card"))
        sub.ended_at, sub.ended_reason, sub.card_ts = None, None, None
        sub.card_status, sub.card_step, sub.card_updated_at, sub.created_by = job.status, job.step, now, user
        enqueue(session, f"s{sub.id}:card:{restarts}", kind="card", channel=channel, sub=sub)
        if job.is_final:
            view = view_of(job)
            enqueue(session, f"s{sub.id}:final:{restarts}", kind="alert", channel=channel, sub=sub, payload=final_alert(view))
            if _has_chart(view):
                enqueue(session, f"s{sub.id}:chart:{restarts}", kind="chart", channel=channel, sub=sub)
        return sub, True
    sub = Subscription(job_id=job.id, team_id=job.team_id, channel_id=channel, created_by=user, card_status=job.status, card_step=job.step, card_updated_at=now)
    session.add(sub)
    session.flush()
    enqueue(session, f"s{sub.id}:card", kind="card", channel=channel, sub=sub)
    # Earlier events stay in `/ft events`: the thread starts from now, so a late watcher is not flooded.
    if job.is_final:
        plan_final(session, job, sub)
    return sub, True


def _milestone(step: int | None, total: int | None) -> int:
    if not step or not total:
        return 0
    return min(MILESTONES, step * MILESTONES // total)


def plan_card_update(session: Session, job: Job, sub: Subscription, now: datetime) -> bool:
    """Queue a refresh of the card when it matters: status change, a progress milestone, or a minute passed."""
    if sub.ended_at is not None:
        return False
    status_changed = sub.card_status != job.status
    milestone = _milestone(job.step, job.total_steps) > _milestone(sub.card_step, job.total_steps)
    stale = job.step != sub.card_step and (sub.card_updated_at is None or now - sub.card_updated_at >= CARD_MIN_INTERVAL)
    if not (status_changed or milestone or stale):
        return False
    sub.card_status, sub.card_step, sub.card_updated_at = job.status, job.step, now
    # The card is drawn when sent, from the state then. An update a sender has already picked up may
    # have been drawn before this change commits (the card then kept showing the old status), so a
    # new one is always queued; older ones nobody has picked up are dropped: the new one draws the
    # same latest state. (A sender picking one up at this moment waits for this transaction's lock,
    # then finds it gone or, having taken it first, is followed by the new one.)
    # The time in the key: a status can come back (a poll that read the provider before a cancel
    # writes "validating files" after it, the next poll "cancelled" again), and a key reused from the
    # first time would be refused as already queued, leaving the card on the stale status.
    key = f"s{sub.id}:upd:{job.status}:{job.step or 0}:{now:%Y%m%d%H%M%S%f}"
    if not enqueue(session, key, kind="card_update", channel=sub.channel_id, sub=sub):
        return False
    session.execute(
        delete(OutboxMessage)
        .where(
            OutboxMessage.subscription_id == sub.id,
            OutboxMessage.kind == "card_update",
            OutboxMessage.idempotency_key != key,
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.attempts == 0,
            OutboxMessage.claimed_until.is_(None),
        )
        .execution_options(synchronize_session=False)
    )
    return True


def plan_event_replies(session: Session, sub: Subscription, events: Sequence[StoredEvent]) -> int:
    """Non-metric events into the card's thread, oldest first, several to a reply."""
    shown = [e for e in events if e.type != "metrics"]
    if not shown:
        return 0
    views = [EventView(e.created_at, e.level, e.message, e.type) for e in shown]
    added = 0
    start = 0
    for reply in event_replies(views):
        n = reply["text"].count("\n") + 1
        first, last = shown[start].provider_event_id, shown[start + n - 1].provider_event_id
        start += n
        added += enqueue(session, f"s{sub.id}:ev:{first}:{last}", kind="reply", channel=sub.channel_id, sub=sub, payload=reply)
    return added


def plan_final(session: Session, job: Job, sub: Subscription, serving: ServingNote | None = None) -> None:
    """The one end-of-job alert in the channel and the loss chart in the thread. `serving`: when the
    new model stops serving, if that is soon (bot/jobs/alert_notes.py looked it up before the write)."""
    note = serving if job.status == "succeeded" else None
    view = view_of(job)
    enqueue(session, f"s{sub.id}:final", kind="alert", channel=sub.channel_id, sub=sub, payload=final_alert(view, serving=note))
    if _has_chart(view):
        enqueue(session, f"s{sub.id}:chart", kind="chart", channel=sub.channel_id, sub=sub)


def _has_chart(view: JobView) -> bool:
    """No chart for a provider whose loss ftbot cannot read (the alert says where it is instead)."""
    return not (view.metrics_note and view.train_loss is None and view.valid_loss is None)


def plan_health(session: Session, job: Job, sub: Subscription, findings: Sequence[Finding]) -> None:
    """Each training-health finding once into the card's thread; a severe one also at channel level."""
    for f in findings:
        enqueue(session, f"s{sub.id}:health:{f.kind}", kind="reply", channel=sub.channel_id, sub=sub, payload=health_message(job.provider_job_id, f))
        if f.severe:
            enqueue(session, f"s{sub.id}:health:{f.kind}:channel", kind="alert", channel=sub.channel_id, sub=sub, payload=health_message(job.provider_job_id, f, in_channel=True))


def plan_job_messages(
    session: Session,
    job: Job,
    new_events: Sequence[StoredEvent],
    *,
    status_changed: bool,
    became_final: bool,
    now: datetime,
    settings: Settings | None = None,
    serving: ServingNote | None = None,
    services: Services | None = None,
) -> None:
    """What the poll of a job says, in the poll's transaction; and what changed, announced to the
    features that react (a migration following its job, the automatic evaluation, the retirement
    check of a new model: bot/wiring.py subscribes them)."""
    if status_changed or became_final:
        announce(session, JobChanged(job.id, job.status, job.fine_tuned_model), settings=settings, services=services)
    # Health runs on every poll, new events or not: a stall is silence, noticed only by looking.
    findings = watch_job(session, job, new_events, settings=settings or Settings(), status_changed=status_changed, became_final=became_final, now=now)
    # An ended subscription's channel no longer takes posts: nothing more is planned for it.
    for sub in session.scalars(select(Subscription).where(Subscription.job_id == job.id, Subscription.ended_at.is_(None)).order_by(Subscription.id)):
        plan_event_replies(session, sub, new_events)
        plan_card_update(session, job, sub, now)
        plan_health(session, job, sub, findings)
        if became_final:
            plan_final(session, job, sub, serving)
    if became_final:
        announce(session, JobEnded(job.id, job.status, job.fine_tuned_model), settings=settings, services=services)
        if job.fine_tuned_model:
            announce(session, ModelAppeared(job.id, job.provider, job.fine_tuned_model, job.base_model), settings=settings, services=services)
