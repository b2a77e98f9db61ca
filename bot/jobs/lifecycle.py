"""Starting and steering jobs: the provider call and what we store about it, kept consistent."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.errors import UserError
from bot.jobs.notify import plan_card_update, subscribe
from bot.jobs.pending_starts import pending_note, record_pending, still_pending
from bot.jobs.store import apply_fresh_status, new_job_row, resolve_job
from bot.jobs.view import JobView, view_of
from bot.provider.base import Job as ProviderJob
from bot.provider.base import (
    JobSpec,
    JobStatus,
    StartUnconfirmed,
    is_final,
    is_paused,
    provider_label,
    steer_refusal,
)
from bot.services import Services
from storage.errors import is_race_on
from storage.leases import hold_lease, release_lease
from storage.models import AuditLog, Job, Subscription
from storage.types import utcnow

# The races a start expects: the poller's discovery stored the provider's job (or subscribed a
# channel) first, or a duplicate delivery of this request stored it under the same key.
START_RACE = frozenset({"uq_jobs_provider_job", "jobs_idempotency_key_key", "uq_subscriptions_job_channel"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    job: JobView
    created: bool  # False: this request was a duplicate of one already handled
    subscription_ids: tuple[int, ...]


def _existing(services: Services, key: str) -> Job | None:
    with services.db.session() as s:
        return s.scalar(select(Job).where(Job.idempotency_key == key))


def start_job(services: Services, spec: JobSpec, *, team_id: str, user: str, channel: str, idempotency_key: str, provider: str | None = None) -> Started:
    """Create the job once per idempotency key, however often Slack delivers the request, at
    `provider` (None: the default one)."""
    provider = provider or services.default_provider
    at = services.provider_for(provider)
    found = _existing(services, idempotency_key)
    if found is not None:
        return Started(view_of(found), False, ())
    owner = f"start:{time.monotonic_ns()}"
    lease = f"start:{idempotency_key}"[:64]
    if not hold_lease(services.db, lease, owner, timedelta(minutes=2)):
        # The same request is being handled right now (a duplicate delivery): wait for its result.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = _existing(services, idempotency_key)
            if found is not None:
                return Started(view_of(found), False, ())
            time.sleep(0.1)
        raise UserError("That request is still being handled; `/ft list` will show the job in a moment.")
    try:
        # The request may have been handled completely between the look-up above and taking the
        # lease (the other delivery committed and let go in that gap): it is a duplicate then.
        found = _existing(services, idempotency_key)
        if found is not None:
            return Started(view_of(found), False, ())
        # A crash after the provider made the job but before we stored it leaves the job at the
        # provider, tagged with our key: find it rather than make a second one.
        try:
            pj = at.find_job_by_key(idempotency_key)
            if pj is None:
                if still_pending(services, idempotency_key):
                    # This key's earlier create lost its answer: a second create could race it.
                    raise StartUnconfirmed(f"{provider_label(provider)} has not confirmed the job from the earlier try yet")
                pj = at.create_job(spec, idempotency_key=idempotency_key)
        except StartUnconfirmed as exc:
            # The answer was lost and the job is not listed (yet): never create it again from here.
            # The worker looks for it and posts its card where it was asked, or says nothing was made.
            record_pending(services, key=idempotency_key, team_id=team_id, provider=provider, user=user, channel=channel, spec=spec, reason=exc.reason)
            raise StartUnconfirmed(f"{exc.reason}. {pending_note(provider)}", status=exc.status) from exc
        return store_started(services, pj, spec, team_id=team_id, user=user, channel=channel, idempotency_key=idempotency_key, provider=provider)
    finally:
        release_lease(services.db, lease, owner)


def store_started(services: Services, pj: ProviderJob, spec: JobSpec, *, team_id: str | None, user: str | None, channel: str, idempotency_key: str, provider: str) -> Started:
    """The provider made `pj` for this key: store it, subscribe the channels (the card follows) and
    audit it, once. Also how a start whose answer was lost is taken up when its job shows later."""
    now = utcnow()
    channels = [channel] + [c for c in (services.settings.notify_channel,) if c and c != channel]
    try:
        with services.db.session() as s:
            row = new_job_row(pj, team_id=team_id, started_by=user, channel=channel, idempotency_key=idempotency_key, provider=provider)
            if spec.suffix:
                row.suffix = spec.suffix
            s.add(row)
            s.flush()
            subs = [subscribe(s, row, ch, user=user, now=now)[0] for ch in channels]
            s.add(AuditLog(team_id=team_id, actor=user, action="job.start", target=pj.id, detail={"provider": provider, "model": spec.model, "training_file": spec.training_file, "method": spec.method, "hyperparameters": spec.hyperparameters}))
            s.flush()
            return Started(view_of(row), True, tuple(sub.id for sub in subs))
    except IntegrityError as exc:
        # The poller discovered the job first (FTBOT_NOTIFY_CHANNEL), or a duplicate of this
        # request stored it: adopt its row. Any other constraint is a failure, not this race.
        if not is_race_on(exc, START_RACE):
            raise
        with services.db.session() as s:
            row = s.scalar(select(Job).where(Job.provider == provider, Job.provider_job_id == pj.id))
            if row is None:
                raise
            if row.idempotency_key == idempotency_key:
                return Started(view_of(row), False, ())  # stored by a duplicate of this request
            row.team_id, row.started_by, row.idempotency_key = team_id, user, idempotency_key
            row.origin_channel = row.origin_channel or channel
            subs = [subscribe(s, row, ch, user=user, now=now)[0] for ch in channels]
            s.flush()
            return Started(view_of(row), True, tuple(sub.id for sub in subs))


def steer_job(services: Services, *, team_id: str, user: str, ref: str, action: str) -> JobView:
    """cancel / pause / resume. Refuses early, with a clear reason, when the status forbids it."""
    with services.db.session() as s:
        found = resolve_job(s, team_id, ref)
        row_id, job_id, trained = found.id, found.provider_job_id, found.step
        at = services.provider_for(found.provider)
    fresh = at.get_job(job_id)  # our copy may be a poll behind
    status = fresh.status
    # The provider's own rules first: one without pause says so, whatever the job's status.
    refusal = steer_refusal(at, action, fresh, trained)
    if refusal:
        raise UserError(refusal)
    if action == "cancel" and status == JobStatus.CANCELLING:
        raise UserError(f"`{job_id}` is being cancelled already: the card shows *cancelled* once the provider confirms it.")
    # A status ftbot does not know is text: any unfinished job may be cancelled (the provider has
    # the last word), and a paused one resumed however the provider spells "paused".
    allowed = {
        "cancel": not is_final(status),
        "pause": status == JobStatus.RUNNING,
        "resume": is_paused(status),
    }[action]
    if not allowed:
        need = {"cancel": "queued, running or paused", "pause": "running", "resume": "paused"}[action]
        done = {"cancel": "cancelled", "pause": "paused", "resume": "resumed"}[action]
        raise UserError(f"`{job_id}` is {status.replace('_', ' ')}: only a {need} job can be {done}.")
    call = {"cancel": at.cancel_job, "pause": at.pause_job, "resume": at.resume_job}[action]
    pj = call(job_id)
    now = utcnow()
    with services.db.session() as s:
        row = s.get(Job, row_id)
        apply_fresh_status(row, pj)
        row.next_poll_at = now
        for sub in s.scalars(select(Subscription).where(Subscription.job_id == row.id)):
            plan_card_update(s, row, sub, now)
        s.add(AuditLog(team_id=team_id, actor=user, action=f"job.{action}", target=job_id, detail={}))
        s.flush()
        return view_of(row)
