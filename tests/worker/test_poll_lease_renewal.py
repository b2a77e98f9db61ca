"""A poll cycle slower than its lease keeps the lease: a second worker does not poll the same jobs
meanwhile, and everything is still posted exactly once."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from sqlalchemy import select

from bot.outbox.sender import Sender
from bot.worker.poller import Poller
from storage.models import Job
from tests.conftest import wait_for
from tests.helpers import thread_lines
from tests.worker.test_resilience import _start, _top

LEASE = 1.0
CHANNELS = [f"C0SLOW{i}" for i in range(3)]


class Recording(Poller):
    """A poller that notes when it was fetching which job."""

    def __init__(self, *a, spans: dict, **kw) -> None:  # noqa: ANN002, ANN003
        super().__init__(*a, **kw)
        self.spans = spans

    def _fetch(self, c, pj):  # noqa: ANN001, ANN202
        t0 = time.monotonic()
        try:
            return super()._fetch(c, pj)
        finally:
            self.spans[c.provider_job_id].append((self.me, t0, time.monotonic()))


def _owners(svc) -> set[str | None]:  # noqa: ANN001
    with svc.db.session() as s:
        return set(s.scalars(select(Job.lease_owner)))


def _overlaps(spans: dict) -> list[tuple]:
    bad = []
    for job, items in spans.items():
        for i, (w1, a1, b1) in enumerate(items):
            for w2, a2, b2 in items[i + 1 :]:
                if w1 != w2 and a1 < b2 and a2 < b1:
                    bad.append((job, w1, w2))
    return bad


@pytest.mark.postgres
def test_slow_cycle_keeps_its_lease_against_a_second_poller(make_services, slack, sandbox) -> None:  # noqa: ANN001
    from storage.migrate import upgrade
    from tests.conftest import fresh_postgres_db

    url, drop = fresh_postgres_db()
    try:
        upgrade(url)
        sandbox.state.timing.step_seconds = 0.05
        svc = make_services(url)
        jobs = {ch: _start(svc, f"slow-{ch}", channel=ch, examples=12, epochs=1, batch=2) for ch in CHANNELS}
        spans: dict[str, list] = defaultdict(list)
        a = Recording(svc, "worker-a", lease_seconds=LEASE, threads=1, spans=spans)
        b = Recording(svc, "worker-b", lease_seconds=LEASE, threads=1, spans=spans)
        # Every provider answer now takes 0.4 s: A's cycle (the job list, then each job's events
        # one after another) lasts well over its 1 s lease.
        sandbox.state.faults.latency = 0.4
        a_stats = []
        slow = threading.Thread(target=lambda: a_stats.append(a.cycle()))
        t0 = time.monotonic()
        slow.start()
        wait_for(lambda: _owners(svc) == {"worker-a"})  # A has claimed the jobs; B comes in now
        b_claims = []
        while slow.is_alive():
            b_claims.append(b.cycle().claimed)
            time.sleep(0.05)
        slow.join()
        assert time.monotonic() - t0 > 2 * LEASE  # the cycle did outlast the lease
        assert a_stats[0].claimed == 3 and a_stats[0].polled == 3
        assert sum(b_claims) == 0, b_claims
        # Now both keep polling, side by side, until every job is done.
        sandbox.state.faults.latency = 0.05
        sa, sb = Sender(svc, "worker-a"), Sender(svc, "worker-b")
        stop = threading.Event()

        def run(p: Poller, sender: Sender) -> None:
            while not stop.is_set():
                p.cycle()
                sender.send_pending()
                time.sleep(0.02)

        threads = [threading.Thread(target=run, args=(a, sa)), threading.Thread(target=run, args=(b, sb))]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: all(any(f for m in slack.channel_messages(ch) for f in (m.get("files") or [])) for ch in CHANNELS), timeout=90, interval=0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert _overlaps(spans) == []  # no job was polled by both at the same time
        sandbox.state.faults.latency = 0.0
        for ch, job_id in jobs.items():
            card, alert = _top(slack, ch)
            assert job_id in card["text"] and "succeeded" in alert["text"]
            expected = [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
            assert thread_lines(slack, ch, card["ts"]) == expected
            assert len([f for m in slack.channel_messages(ch) for f in (m.get("files") or [])]) == 1
    finally:
        drop()
