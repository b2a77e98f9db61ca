"""The worker: APScheduler runs each provider's poll cycle every FTBOT_POLL_INTERVAL seconds (as
separate jobs, so a slow or failing provider never holds back another's) and the outbox sender
every moment, each never overlapping itself. A failing cycle is logged and the next one runs."""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.approvals.expiry import sweep as approvals_sweep
from bot.outbox.sender import Sender
from bot.retirements.table import table_for
from bot.retirements.warnings import plan_retirement_warnings
from bot.services import Services
from bot.worker.poller import Poller
from storage.leases import release_dead_local_claims, worker_id
from storage.types import utcnow

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        services: Services,
        *,
        lease_seconds: float | None = None,
        send_interval: float | None = None,
        team_id: str | None = None,
        retirement_interval: float = 3600.0,
    ) -> None:
        self.services = services
        self.id = worker_id()
        interval = services.settings.poll_interval
        lease = lease_seconds if lease_seconds is not None else max(60.0, 4 * interval)
        self.team_id = team_id
        self.poller = Poller(services, self.id, lease_seconds=lease, team_id=team_id)
        self.sender = Sender(services, self.id, claim_seconds=max(30.0, lease))
        self.send_interval = send_interval if send_interval is not None else min(1.0, interval)
        self.retirement_interval = retirement_interval
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(3 + len(services.providers))}, timezone="UTC")

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

    def warn_retirements(self) -> None:
        try:
            table = table_for(self.services.settings.retirements_file)
            plan_retirement_warnings(self.services.db, table, today=utcnow().date(), notify_channel=self.services.settings.notify_channel)
        except Exception:  # noqa: BLE001 - tried again at the next interval
            log.exception("retirement check failed")

    def send(self) -> None:
        try:
            self.sender.send_pending()
        except Exception:  # noqa: BLE001
            log.exception("send cycle failed")

    def start(self) -> Worker:
        freed = release_dead_local_claims(self.services.db)
        if freed:
            log.info("released %d claims left by a stopped worker on this host", freed)
        now = datetime.now().astimezone()
        for name in self.services.providers:
            self.scheduler.add_job(self.poll, "interval", args=(name,), seconds=self.services.settings.poll_interval, id=f"poll:{name}", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.warn_retirements, "interval", seconds=self.retirement_interval, id="retirements", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.add_job(self.send, "interval", seconds=self.send_interval, id="send", max_instances=1, coalesce=True, next_run_time=now)
        self.scheduler.start()
        log.info("worker %s polling every %ss", self.id, self.services.settings.poll_interval)
        return self

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.poller.close()
