"""The worker: APScheduler runs each provider's poll cycle every FTBOT_POLL_INTERVAL seconds (as
separate jobs, so a slow or failing provider never holds back another's) and the outbox sender
every moment, each never overlapping itself. A failing cycle is logged and the next one runs."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.approvals.expiry import sweep as approvals_sweep
from bot.evals.drive import EvalDriver
from bot.jobs import webhooks
from bot.jobs.lost_starts import check_lost_starts
from bot.outbox.sender import Sender
from bot.provider.base import ProviderError
from bot.retirements.live import retirements_for
from bot.retirements.warnings import plan_retirement_warnings
from bot.services import Services
from bot.wiring import wire
from bot.worker.poller import Poller
from storage.leases import release_dead_local_claims, worker_id
from storage.types import utcnow

log = logging.getLogger(__name__)

DEFERRED_KINDS = frozenset({"chart"})
# Webhook jobs are polled and their alerts sent this many at a time, so when many end together the
# first alerts do not wait for the last jobs' writes.
FAST_CHUNK = 20
CHART_BATCH = 16


class Worker:
    def __init__(
        self,
        services: Services,
        *,
        lease_seconds: float | None = None,
        send_interval: float | None = None,
        team_id: str | None = None,
        retirement_interval: float = 3600.0,
        webhook_check_interval: float = 0.5,
    ) -> None:
        wire()  # the features' subscribers and renderers, before anything polls or sends
        self.services = services
        self.id = worker_id()
        interval = services.settings.poll_interval
        lease = lease_seconds if lease_seconds is not None else max(60.0, 4 * interval)
        self.team_id = team_id
        self.poller = Poller(services, self.id, lease_seconds=lease, team_id=team_id)
        self.sender = Sender(services, self.id, claim_seconds=max(30.0, lease))
        self.evals = EvalDriver(services, self.id, lease_seconds=max(lease, 30.0))
        self.send_interval = send_interval if send_interval is not None else min(1.0, interval)
        self.eval_interval = min(1.0, self.send_interval * 4)
        self.retirement_interval = retirement_interval
        self.webhook_check_interval = webhook_check_interval
        self._urgent = threading.Event()  # set while webhook jobs are being polled: charts wait
        # A poll job per provider, the sender, retirements, webhooks and their pruning.
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(5 + len(services.providers))}, timezone="UTC")

    def _team(self) -> str | None:
        if self.team_id is None:
            try:
                self.team_id = self.services.slack.auth_test().get("team_id")
                self.poller.team_id = self.team_id
            except Exception as exc:  # noqa: BLE001 - retried on the next cycle
                log.warning("auth.test failed (%s); jobs found outside Slack wait for it", type(exc).__name__)
        return self.team_id

    def poll(self, provider: str | None = None) -> None:
        """One provider's cycle (None: every provider's), then the approvals sweep and a send."""
        try:
            if self.services.settings.notify_channel:
                self._team()
            stats = self.poller.cycle(provider)
            if stats.claimed or stats.discovered:
                log.debug("poll: %s", stats)
        except Exception:  # noqa: BLE001 - the scheduler must keep running
            log.exception("poll cycle failed")
        approvals_sweep(self.services)  # expire approval requests, resolve ones a dead process left
        self.send()

    def check_lost_starts(self) -> None:
        """Starts whose answer was lost: their job stored and watched once it shows, or the starter
        told nothing was made (StartNotMade: a migration waiting on it fails, so it can be started again)."""
        try:
            check_lost_starts(self.services)
        except Exception:  # noqa: BLE001 - tried again at the next interval
            log.exception("checking lost starts failed")

    def warn_retirements(self) -> None:
        try:
            ends = retirements_for(self.services)
            plan_retirement_warnings(self.services.db, ends, today=utcnow().date(), notify_channel=self.services.settings.notify_channel)
        except Exception:  # noqa: BLE001 - tried again at the next interval
            log.exception("retirement check failed")

    def react_to_webhooks(self) -> None:
        """The fast path: jobs named by webhooks since the last check are polled now and what they
        cause is sent now, so an ending reaches Slack within about a second, not a poll interval."""
        try:
            todo = webhooks.pending(self.services.db)
            if not todo:
                return
            self._urgent.set()
            self._react(todo)
        except Exception:  # noqa: BLE001 - the scheduler must keep running; the rows stay pending
            log.exception("webhook check failed")
        finally:
            self._urgent.clear()

    def _react(self, todo: list[webhooks.Pending]) -> None:
        db = self.services.db
        done = [p.row_id for p in todo if p.job_is_final]
        webhooks.finish(db, done, "polled")
        unknown = [p for p in todo if p.job_row_id is None]
        if unknown:
            if self.services.settings.notify_channel:
                self._team()
            failed: list[int] = []
            for p in unknown:
                try:
                    self.poller.adopt(p.provider_job_id)
                except ProviderError as exc:
                    log.warning("fetching %s, named by a webhook, failed: %s", p.provider_job_id, exc.reason)
                    failed.append(p.row_id)
            # Adopted jobs are polled on the next check, as known ones; the rest are not ours.
            known_now = {p.row_id for p in webhooks.pending(db) if p.job_row_id is not None}
            webhooks.finish(db, [p.row_id for p in unknown if p.row_id not in known_now and p.row_id not in failed], "ignored")
            webhooks.finish(db, webhooks.retry_later(db, failed), "gave_up")
        live = [p for p in todo if p.job_row_id is not None and not p.job_is_final]
        if live:
            ids = sorted({p.job_row_id for p in live})
            polled: set[int] = set()
            for i in range(0, len(ids), FAST_CHUNK):
                polled.update(self.poller.poll_jobs(ids[i : i + FAST_CHUNK]).job_ids)
                # Alerts, cards and replies now; charts (slow to draw) are left to the regular send.
                self.sender.send_pending(defer_kinds=DEFERRED_KINDS)
            after = {p.row_id: p for p in webhooks.pending(db)}
            webhooks.finish(db, [p.row_id for p in live if p.row_id in after and after[p.row_id].job_is_final], "polled")
            # Polled and still not final: the provider's API lags the webhook. Tried again on the
            # next checks, then left to the regular polls. A job another worker held was not
            # polled here and waits for the next check without counting.
            lagging = [p.row_id for p in live if p.job_row_id in polled and p.row_id in after and not after[p.row_id].job_is_final]
            webhooks.finish(db, webhooks.retry_later(db, lagging), "gave_up")
        if unknown:
            self.sender.send_pending(defer_kinds=DEFERRED_KINDS)

    def prune_webhooks(self) -> None:
        try:
            webhooks.prune(self.services.db)
        except Exception:  # noqa: BLE001 - tried again at the next interval
            log.exception("pruning webhook deliveries failed")

    def send(self) -> None:
        try:
            # Everything but charts across all threads first, so many jobs ending together do not
            # wait for each other's charts to be drawn; then the charts.
            self.sender.send_pending(defer_kinds=DEFERRED_KINDS)
            if not self._urgent.is_set():
                # A few charts a cycle: drawing is CPU-bound and would slow the next webhook's alert.
                self.sender.send_pending(limit=CHART_BATCH)
        except Exception:  # noqa: BLE001
            log.exception("send cycle failed")

    def evaluate(self) -> None:
        """Evaluations waiting: a job's that just succeeded, a `/ft eval`'s, one a stopped worker left."""
        try:
            self.evals.tick()
        except Exception:  # noqa: BLE001 - the runs stay in the store and are taken again
            log.exception("evaluation cycle failed")

    def start(self) -> Worker:
        freed = release_dead_local_claims(self.services.db)
        if freed:
            log.info("released %d claims left by a stopped worker on this host", freed)
        now = datetime.now().astimezone()
        for name in self.services.providers:
            self.scheduler.add_job(self.poll, "interval", args=(name,), seconds=self.services.settings.poll_interval, id=f"poll:{name}", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.check_lost_starts, "interval", seconds=self.services.settings.poll_interval, id="lost_starts", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.warn_retirements, "interval", seconds=self.retirement_interval, id="retirements", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.send, "interval", seconds=self.send_interval, id="send", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.evaluate, "interval", seconds=self.eval_interval, id="evals", max_instances=1, coalesce=True, next_run_time=now)
        if self.services.settings.webhooks_enabled:
            self.scheduler.add_job(self.react_to_webhooks, "interval", seconds=self.webhook_check_interval, id="webhooks", max_instances=1, coalesce=True, next_run_time=now)
            self.scheduler.add_job(self.prune_webhooks, "interval", seconds=self.retirement_interval, id="webhook_prune", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.start()
        log.info("worker %s polling every %ss", self.id, self.services.settings.poll_interval)
        return self

    def stop(self) -> None:
        self.evals.stop.set()  # a run in progress stops between requests; the store keeps its place
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.poller.close()
