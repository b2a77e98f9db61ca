"""One poll cycle: claim due jobs, read their statuses from the paged job list, fetch each job's new
events (and checkpoints when they can have changed), and store everything with the Slack messages it
causes in one transaction per job. What a change means to other features (a migration following
its job, the automatic evaluation, a new model's retirement warnings) is theirs: bot/jobs/notify.py
announces the change (bot/events) and they subscribe at start-up (bot/wiring.py).

Each provider is polled on its own (its own claim, job list, fetch threads, backoff and discovery
lease): a provider that fails, rate-limits or answers slowly delays only its own jobs' updates.
`cycle()` runs every provider's part side by side; the worker schedules each provider's part apart.

Safe with several worker processes: a job is claimed with a lease (SELECT … FOR UPDATE SKIP LOCKED
on PostgreSQL; SQLite's single writer gives the same guarantee), and the unique constraints on events
and outbox keys refuse anything a second poller might still try to write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.jobs.alert_notes import serving_note
from bot.jobs.notify import plan_job_messages, subscribe
from bot.jobs.store import apply_checkpoints, apply_events, apply_provider_job, close_not_found, new_job_row
from bot.messages.job_card import ServingNote
from bot.provider.base import Checkpoint as ProviderCheckpoint
from bot.provider.base import Job as ProviderJob
from bot.provider.base import JobEvent as ProviderEvent
from bot.provider.base import Provider, ProviderError, ProviderNotFound, ProviderRateLimited
from bot.services import Services
from storage.errors import is_race_on, short_reason, violated_constraint
from storage.leases import hold_lease
from storage.models import Job
from storage.types import utcnow

log = logging.getLogger(__name__)

LIST_PAGE = 100
# Webhooks (fine_tuning.job.*) come from OpenAI only.
WEBHOOK_PROVIDER = "openai"
WRITE_BATCH = 50
MAX_BACKOFF = 600.0
# The unique keys a second worker writing the same job's poll can have filled first (its events,
# metric steps, checkpoints, queued messages). Only these are taken for a race, and only once.
RACE_CONSTRAINTS = frozenset({
    "uq_job_events_job_event",
    "uq_metric_points_job_step",
    "uq_checkpoints_job_checkpoint",
    "outbox_idempotency_key_key",
})
# A job found in the provider's list that someone else recorded first: started from Slack (same
# provider id or idempotency key) or found by another worker, which subscribed the channel too.
DISCOVERY_RACE = frozenset({"uq_jobs_provider_job", "jobs_idempotency_key_key", "uq_subscriptions_job_channel"})
# How a failed write reads in Job.last_poll_error (and so in /healthz), apart from a provider's error.
STORE_FAILED = "storing failed: "


@dataclass
class Claimed:
    id: int
    provider_job_id: str
    created_at: datetime
    last_event_id: str | None
    provider: str = "openai"


@dataclass
class Fetched:
    claimed: Claimed
    job: ProviderJob | None  # None: the provider answered 404 for this job
    events: list[ProviderEvent]
    checkpoints: list[ProviderCheckpoint] | None
    # A new model's end of serving, if soon, read before the write (never a provider call inside it).
    serving: ServingNote | None = None


@dataclass
class CycleStats:
    claimed: int = 0
    polled: int = 0
    failed: int = 0
    discovered: int = 0
    list_pages: int = 0
    errors: list[str] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)  # poll_jobs: the jobs it claimed


def discovery_lease(provider: str) -> str:
    # OpenAI keeps the lease name it had before several providers existed (rolling upgrades).
    return "discovery" if provider == "openai" else f"discovery:{provider}"


class Poller:
    def __init__(self, services: Services, worker_id: str, *, lease_seconds: float = 60.0, batch: int = 5000, threads: int = 16, team_id: str | None = None) -> None:
        self.s = services
        self.me = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.team_id = team_id
        self.threads = threads
        # One fetch pool per provider: a slow provider's requests never queue ahead of another's.
        self.pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_lock = threading.Lock()

    @property
    def interval(self) -> float:
        return self.s.settings.poll_interval

    @property
    def providers(self) -> list[str]:
        return list(self.s.providers)

    def _pool(self, provider: str) -> ThreadPoolExecutor:
        with self._pools_lock:
            pool = self.pools.get(provider)
            if pool is None:
                pool = self.pools[provider] = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=f"poll-{provider}")
            return pool

    def close(self) -> None:
        with self._pools_lock:
            for pool in self.pools.values():
                pool.shutdown(wait=False, cancel_futures=True)

    # ---- the cycle --------------------------------------------------------------------------

    def cycle(self, provider: str | None = None) -> CycleStats:
        """One provider's cycle, or (None) every provider's side by side, the stats added up."""
        if provider is not None:
            return self._cycle(provider)
        names = self.providers
        if len(names) == 1:
            return self._cycle(names[0])
        total = CycleStats()
        threads = []
        results: dict[str, CycleStats] = {}

        def run(name: str) -> None:
            try:
                results[name] = self._cycle(name)
            except Exception:  # noqa: BLE001 - one provider's surprise must not stop the others
                log.exception("poll cycle for %s failed", name)

        for name in names:
            t = threading.Thread(target=run, args=(name,), name=f"cycle-{name}", daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        for st in results.values():
            total.claimed += st.claimed
            total.polled += st.polled
            total.failed += st.failed
            total.discovered += st.discovered
            total.list_pages += st.list_pages
            total.errors += st.errors
        return total

    def _cycle(self, provider: str) -> CycleStats:
        stats = CycleStats()
        started = utcnow()
        claimed = self._claim(provider)
        stats.claimed = len(claimed)
        discover = bool(self.s.settings.notify_channel) and hold_lease(self.s.db, discovery_lease(provider), self.me, self._discovery_ttl)
        if not claimed and not discover:
            return stats
        # Slow provider answers can stretch a cycle past the lease; renewing it meanwhile keeps
        # another worker from claiming (and polling, and writing) the same jobs.
        with self._renewing(discover, provider):
            return self._poll(provider, claimed, discover, started, stats)

    @property
    def _discovery_ttl(self) -> timedelta:
        return timedelta(seconds=max(30.0, 3 * self.interval))

    @contextmanager
    def _renewing(self, discover: bool, provider: str) -> Iterator[None]:
        stop = threading.Event()
        period = max(0.05, self.lease.total_seconds() / 3)

        def renew() -> None:
            while not stop.wait(period):
                try:
                    self._renew(discover, provider)
                except Exception:  # noqa: BLE001 - a missed renewal is retried; the owner checks guard the writes
                    log.warning("renewing the poll lease failed", exc_info=True)

        t = threading.Thread(target=renew, name=f"lease-{self.me}", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()

    def _renew(self, discover: bool, provider: str) -> None:
        with self.s.db.session() as s:
            # Only rows still ours: a job already written (lease cleared) or taken over stays as it is.
            s.execute(update(Job).where(Job.lease_owner == self.me, Job.provider == provider).values(lease_until=utcnow() + self.lease))
        if discover:
            hold_lease(self.s.db, discovery_lease(provider), self.me, self._discovery_ttl)

    def _poll(self, provider: str, claimed: list[Claimed], discover: bool, started: datetime, stats: CycleStats) -> CycleStats:
        at = self.s.providers[provider]
        try:
            statuses, pages = self._statuses(at, claimed, discover)
            stats.list_pages = pages
        except ProviderError as exc:
            # The job list is down: every claimed job backs off, none is lost.
            log.warning("%s job list failed: %s", provider, exc.reason)
            for c in claimed:
                self._failed(c, exc)
            stats.failed = len(claimed)
            stats.errors.append(exc.reason)
            return stats
        if discover:
            stats.discovered = self._discover(provider, statuses)
        self._wake_changed(provider, statuses, claimed)
        # Next polls are timed from the cycle's start, so jobs stay in step and one list read serves all.
        next_poll = started + timedelta(seconds=self.interval)
        fetched = [f for f in self._pool(provider).map(lambda c: self._fetch(c, statuses.get(c.provider_job_id)), claimed) if f is not None]
        unstored = 0
        for i in range(0, len(fetched), WRITE_BATCH):
            unstored += self._store(fetched[i : i + WRITE_BATCH], next_poll)
        stats.polled = len(fetched) - unstored
        stats.failed = len(claimed) - stats.polled
        return stats

    def _claim(self, provider: str) -> list[Claimed]:
        now = utcnow()
        with self.s.db.session() as s:
            q = (
                select(Job.id)
                .where(Job.provider == provider, Job.is_final.is_(False), Job.next_poll_at <= now, or_(Job.lease_until.is_(None), Job.lease_until < now))
                .order_by(Job.next_poll_at)
                .limit(self.batch)
            )
            if self.s.db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(s.scalars(q))
            if not ids:
                return []
            s.execute(update(Job).where(Job.id.in_(ids)).values(lease_owner=self.me, lease_until=now + self.lease))
            rows = s.execute(select(Job.id, Job.provider_job_id, Job.created_at, Job.last_event_id, Job.provider).where(Job.id.in_(ids))).all()
        return [Claimed(*r) for r in rows]

    def _statuses(self, at: Provider, claimed: list[Claimed], discover: bool) -> tuple[dict[str, ProviderJob], int]:
        """Statuses from the job list, newest first, paged until every claimed job has been seen."""
        wanted = {c.provider_job_id for c in claimed}
        oldest = min((c.created_at for c in claimed), default=None)
        found: dict[str, ProviderJob] = {}
        after: str | None = None
        pages = 0
        while wanted - found.keys() or (discover and pages == 0):
            page = at.list_jobs(limit=LIST_PAGE, after=after)
            pages += 1
            for pj in page.jobs:
                found[pj.id] = pj
            if not page.has_more or not page.jobs:
                break
            if oldest is not None and page.jobs[-1].created_at < oldest.timestamp() - 1:
                break  # older than anything we track: the rest are fetched one by one
            after = page.jobs[-1].id
        return found, pages

    def _fetch(self, c: Claimed, pj: ProviderJob | None) -> Fetched | None:
        """Everything new about one job at its provider; None when that failed (and was recorded)."""
        at = self.s.providers[c.provider]
        try:
            if pj is None:
                try:
                    pj = at.get_job(c.provider_job_id)
                except ProviderNotFound:
                    # The job list answered (so the provider and our key work), yet this one job is
                    # unknown: it is gone for good, not failing for a while.
                    log.warning("%s is not found at the provider; closing it", c.provider_job_id)
                    return Fetched(c, None, [], None)
            events = at.new_events(c.provider_job_id, c.last_event_id)
            checkpoints = None
            if pj.is_final or any("checkpoint" in e.message.lower() for e in events if e.type != "metrics"):
                checkpoints = at.list_checkpoints(c.provider_job_id)
        except ProviderError as exc:
            self._failed(c, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - one job's surprise must not stop the cycle
            log.exception("polling %s failed", c.provider_job_id)
            self._failed(c, ProviderError(type(exc).__name__))
            return None
        serving = None
        if pj.is_final and pj.fine_tuned_model:
            serving = self._serving(c.provider, pj)
        return Fetched(c, pj, events, checkpoints, serving)

    def _serving(self, provider: str, pj: ProviderJob) -> ServingNote | None:
        try:
            return serving_note(self.s, provider, pj.fine_tuned_model or "", pj.model)
        except Exception:  # noqa: BLE001 - a date is advice: the alert goes out without it
            log.exception("end of serving for %s unknown", pj.fine_tuned_model)
            return None

    def _store(self, batch: list[Fetched], next_poll: datetime) -> int:
        """Write a batch of jobs in one transaction: each job's state with the messages it causes.

        One transaction per batch rather than per job spares most commits; if anything in the batch
        fails, the batch is redone one job per transaction, so only the job at fault is set aside
        (it backs off alone) and the others are stored.
        """
        if len(batch) > 1:
            try:
                with self.s.db.session() as s:
                    self._apply(s, batch, next_poll)
                return 0
            except Exception:  # noqa: BLE001 - redone job by job just below, where each failure is named
                log.info("storing a batch of %d polls failed; storing them one by one", len(batch))
        return sum(not self._store_one(f, next_poll) for f in batch)

    def _store_one(self, f: Fetched, next_poll: datetime) -> bool:
        """One job in its own transaction; True when stored. A write that met another worker's rows
        (RACE_CONSTRAINTS) is done once more, over what that worker stored (a re-read sees its rows
        and skips them); a second conflict, any other constraint, or any other error is a failure of
        this job alone."""
        for attempt in (1, 2):
            try:
                with self.s.db.session() as s:
                    self._apply(s, [f], next_poll)
                return True
            except IntegrityError as exc:
                if attempt == 1 and is_race_on(exc, RACE_CONSTRAINTS):
                    log.info("poll of %s met another worker's write (%s); storing it again over that write", f.claimed.provider_job_id, violated_constraint(exc))
                    continue
                self._write_failed(f.claimed, exc)
                return False
            except Exception as exc:  # noqa: BLE001 - one job's fault must not stop the others
                if not isinstance(exc, SQLAlchemyError):
                    log.exception("storing the poll of %s raised", f.claimed.provider_job_id)  # a bug: where
                self._write_failed(f.claimed, exc)
                return False
        return False

    def _apply(self, s, batch: list[Fetched], next_poll: datetime) -> None:  # noqa: ANN001
        now = utcnow()
        ids = [f.claimed.id for f in batch]
        q = select(Job).where(Job.id.in_(ids)).execution_options(populate_existing=True)
        if self.s.db.dialect == "postgresql":
            q = q.with_for_update()
        rows = {j.id: j for j in s.scalars(q)}
        for f in batch:
            job = rows.get(f.claimed.id)
            if job is None or job.lease_owner != self.me:
                continue  # our lease ran out and another worker has the job: its write wins
            was_final = job.is_final
            if f.job is None:
                changed = close_not_found(job, now)
                stored = []
            else:
                changed = apply_provider_job(job, f.job)
                stored = apply_events(s, job, f.events).stored
                if f.checkpoints:
                    apply_checkpoints(s, job, f.checkpoints)
            plan_job_messages(s, job, stored, status_changed=changed, became_final=job.is_final and not was_final, now=now, settings=self.s.settings, serving=f.serving, services=self.s)
            job.lease_owner = None
            job.lease_until = None
            job.poll_failures = 0
            job.last_poll_error = None
            job.next_poll_at = self._cadence(job, next_poll)

    def _failed(self, c: Claimed, exc: ProviderError) -> None:
        now = utcnow()
        with self.s.db.session() as s:
            job = s.get(Job, c.id)
            if job is None or job.lease_owner != self.me:
                return
            job.poll_failures += 1
            delay = min(MAX_BACKOFF, self.interval * (2 ** min(job.poll_failures, 10)))
            if isinstance(exc, ProviderRateLimited) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            job.next_poll_at = now + timedelta(seconds=delay)
            job.last_poll_error = exc.reason[:500]
            job.lease_owner = None
            job.lease_until = None
        log.warning("poll of %s failed (%s); next try in %.0f s", c.provider_job_id, exc.reason, delay)

    def _write_failed(self, c: Claimed, exc: BaseException) -> None:
        """Storing what was fetched for this job failed: it backs off alone, as a failed fetch does, and
        the reason is kept (shown by /healthz) and logged at error level."""
        reason = short_reason(exc)
        try:
            with self.s.db.session() as s:
                job = s.get(Job, c.id)
                if job is None or job.lease_owner != self.me:
                    log.error("storing the poll of %s failed: %s", c.provider_job_id, reason)
                    return
                job.poll_failures += 1
                failures = job.poll_failures
                delay = min(MAX_BACKOFF, self.interval * (2 ** min(failures, 10)))
                job.next_poll_at = utcnow() + timedelta(seconds=delay)
                job.last_poll_error = f"{STORE_FAILED}{reason}"[:500]
                job.lease_owner = None
                job.lease_until = None
        except Exception:  # noqa: BLE001 - the database itself is failing: the lease runs out instead
            log.error("storing the poll of %s failed: %s; recording the failure failed too", c.provider_job_id, reason)
            return
        log.error("storing the poll of %s failed (%d in a row): %s; next try in %.1f s", c.provider_job_id, failures, reason, delay)

    # ---- webhooks: poll these jobs now; idle jobs less often -----------------------------------

    IDLE_STATUSES = frozenset({"validating_files", "queued"})


    def poll_jobs(self, job_ids: list[int]) -> CycleStats:
        """Poll just these jobs now, whatever their next poll time, through the cycle's own claim,
        lease and write path (so nothing is stored or posted twice). Jobs another worker holds are
        left to it; the stats say how many were claimed."""
        stats = CycleStats()
        started = utcnow()
        claimed = self._claim_ids(job_ids)
        stats.claimed = len(claimed)
        stats.job_ids = [c.id for c in claimed]
        for provider in sorted({c.provider for c in claimed}):
            mine = [c for c in claimed if c.provider == provider]
            part = CycleStats(claimed=len(mine))
            with self._renewing(False, provider):
                self._poll(provider, mine, False, started, part)
            stats.polled += part.polled
            stats.failed += part.failed
            stats.errors += part.errors
        return stats

    def adopt(self, provider_job_id: str) -> int:
        """A job we first hear of by webhook: fetched and recorded the way discovery does (announced
        in the notify channel). 0 when it was already known or could not be fetched."""
        if not self.s.settings.notify_channel or WEBHOOK_PROVIDER not in self.s.providers:
            return 0
        try:
            pj = self.s.providers[WEBHOOK_PROVIDER].get_job(provider_job_id)
        except ProviderNotFound:
            log.warning("a webhook named %s, which the provider does not know", provider_job_id)
            return 0
        return self._discover(WEBHOOK_PROVIDER, {pj.id: pj})

    def _claim_ids(self, job_ids: list[int]) -> list[Claimed]:
        now = utcnow()
        with self.s.db.session() as s:
            q = select(Job.id).where(Job.id.in_(job_ids), Job.is_final.is_(False), or_(Job.lease_until.is_(None), Job.lease_until < now))
            if self.s.db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(s.scalars(q))
            if not ids:
                return []
            s.execute(update(Job).where(Job.id.in_(ids)).values(lease_owner=self.me, lease_until=now + self.lease))
            rows = s.execute(select(Job.id, Job.provider_job_id, Job.created_at, Job.last_event_id, Job.provider).where(Job.id.in_(ids))).all()
        return [Claimed(*r) for r in rows]

    def _cadence(self, job: Job, next_poll: datetime) -> datetime:
        """When to poll this job next, given the cycle's start + the poll interval.

        The scheduler fires every interval from its own start and a cycle's start is read a few ms
        after its firing, so a job due exactly one interval later was missed by the next firing about
        half the time and waited a whole extra interval (measured: 18-21 cycles in 30 intervals). A
        little slack keeps jobs in step with the firings.

        With webhooks on, a queued or validating job has nothing to say for a while and its ending
        would arrive by webhook: it is polled at the idle interval instead."""
        slack = timedelta(seconds=min(2.0, 0.1 * self.interval))
        settings = self.s.settings
        if self._webhooks_for(job.provider) and job.status in self.IDLE_STATUSES and settings.idle_poll_interval > self.interval:
            return next_poll + timedelta(seconds=settings.idle_poll_interval - self.interval) - slack
        return next_poll - slack

    def _webhooks_for(self, provider: str) -> bool:
        """Whether this provider's job endings arrive by webhook (only OpenAI's do): only then may its
        idle jobs be polled less often."""
        return provider == WEBHOOK_PROVIDER and self.s.settings.webhooks_enabled and WEBHOOK_PROVIDER in self.s.providers

    def _wake_changed(self, provider: str, statuses: dict[str, ProviderJob], claimed: list[Claimed]) -> None:
        """When the job list is read anyway (other jobs of this provider are due, or discovery runs), a
        job waiting out its idle interval whose status moved on there (queued → running) is made due,
        so the next cycle polls it rather than one up to an idle interval later."""
        if not self._webhooks_for(provider) or not statuses:
            return
        mine = {c.provider_job_id for c in claimed}
        listed = {pid: pj.status for pid, pj in statuses.items() if pid not in mine}
        if not listed:
            return
        now = utcnow()
        with self.s.db.session() as s:
            rows = s.execute(
                select(Job.id, Job.provider_job_id, Job.status)
                .where(Job.provider == provider, Job.provider_job_id.in_(list(listed)), Job.is_final.is_(False), Job.next_poll_at > now, Job.poll_failures == 0, Job.status.in_(list(self.IDLE_STATUSES)))
            ).all()
            moved = [r[0] for r in rows if listed.get(r[1]) != r[2]]
            if moved:
                s.execute(update(Job).where(Job.id.in_(moved), Job.lease_owner.is_(None)).values(next_poll_at=now))

    # ---- jobs started outside Slack -------------------------------------------------------------

    def _discover(self, provider: str, seen: dict[str, ProviderJob]) -> int:
        channel = self.s.settings.notify_channel
        if not channel or not seen:
            return 0
        recent = utcnow().timestamp() - max(300.0, 10 * self.interval)
        added = 0
        with self.s.db.session() as s:
            known = set(s.scalars(select(Job.provider_job_id).where(Job.provider == provider, Job.provider_job_id.in_(list(seen)))))
        for pj in seen.values():
            if pj.id in known:
                continue
            # A job that ended long ago is recorded quietly; only live (or just-ended) ones are announced.
            announce = not pj.is_final or (pj.finished_at or 0) >= recent
            try:
                with self.s.db.session() as s:
                    row = new_job_row(pj, team_id=self.team_id, started_by=None, channel=channel, idempotency_key=(pj.metadata or {}).get("ftbot_key"), provider=provider)
                    s.add(row)
                    s.flush()
                    if announce:
                        subscribe(s, row, channel, user=None, now=utcnow())
                added += 1
            except IntegrityError as exc:
                if is_race_on(exc, DISCOVERY_RACE):
                    continue  # created from Slack or found by another worker at the same moment
                log.error("recording discovered job %s failed: %s", pj.id, short_reason(exc))
        return added
