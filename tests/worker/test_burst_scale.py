"""Scale under Slack's rate limits (issue 17): many jobs ending together in a few channels, the Slack
stand-in enforcing its limits, the real slack_sdk WebClient, the real poller and sender, on SQLite and
PostgreSQL. Nothing lost, nothing doubled, the channel hears one digest instead of an alert per job,
and each job still gets its alert in its thread, its card edited and its chart.

The per-channel rate is 4 posts a second here (Slack's is about one) on both sides, the stand-in's
and the sender's pacing, to keep the test to a few seconds; bench/burst.py runs Slack's own rates."""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy import func, select

from bot.outbox.pacing import Pacer
from bot.outbox.sender import METADATA_TYPE, Sender
from bot.slack_standin.limits import RateLimits
from bot.worker.poller import Poller
from storage.models import Job, OutboxMessage
from tests.conftest import wait_for
from tests.worker.test_resilience import _start

CHANNELS = ("C0BURSTA", "C0BURSTB", "C0BURSTC")
PER_CHANNEL = 3
RATE = (4.0, 3)


def _drive(poller: Poller, sender: Sender, until, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the burst did not reach Slack in time"
        poller.cycle()
        sender.send_pending()
        time.sleep(0.05)  # a worker's send tick, shortened


def _waiting(svc) -> int:  # noqa: ANN001
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))) or 0


def test_a_burst_of_endings_under_the_enforced_limits_is_one_digest_per_channel_and_loses_nothing(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.25
    svc = make_services(db_url, slack_pacing=True)
    jobs = {ch: [_start(svc, f"{ch}-{i}", channel=ch) for i in range(PER_CHANNEL)] for ch in CHANNELS}
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    sender.pacer = Pacer(channel_rate=RATE)
    sender.send_pending()  # the cards, before any limit
    # They all end before the next poll: one poll cycle finds every ending at once.
    wait_for(lambda: all(svc.provider.get_job(j).status == "succeeded" for js in jobs.values() for j in js), timeout=30, interval=0.1)
    limiter = slack.enforce_limits(RateLimits(channel_per_second=RATE[0], channel_burst=RATE[1]))

    def all_ended_and_sent() -> bool:  # as ftbot knows it (polled), and everything it queued sent
        with svc.db.session() as s:
            running = s.scalar(select(func.count()).select_from(Job).where(Job.status != "succeeded"))
        return running == 0 and _waiting(svc) == 0

    _drive(poller, sender, all_ended_and_sent, timeout=60)

    for ch, ids in jobs.items():
        msgs = slack.channel_messages(ch)
        top = [m for m in msgs if not m.get("thread_ts")]
        cards = {j: next(m for m in top if j in m["text"] and "ended" not in m["text"] and "succeeded" in m["text"]) for j in ids}
        # Nothing doubled: every message carrying an outbox key is in Slack once.
        keys = Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in msgs if (m.get("metadata") or {}).get("event_type") == METADATA_TYPE)
        assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
        # The channel heard the endings in one digest, each job once.
        ending_posts = [m for m in top if m not in cards.values()]
        assert len(ending_posts) == 1 and f"{PER_CHANNEL} fine-tuning jobs ended ({PER_CHANNEL} succeeded)" in ending_posts[0]["text"], [m["text"] for m in ending_posts]
        for j in ids:
            assert sum(j in m["text"] for m in ending_posts) == 1, j
            card = cards[j]  # edited in place to the final state
            in_thread = [m for m in msgs if m.get("thread_ts") == card["ts"] and m["ts"] != card["ts"]]
            alerts = [m for m in in_thread if m["text"].startswith(f"Fine-tuning {j} succeeded")]
            assert len(alerts) == 1, j  # its full alert, in its thread
            charts = [f for m in in_thread for f in (m.get("files") or []) if f["name"] == f"loss-{j}.png"]
            assert len(charts) == 1, j
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.gave_up_at.is_not(None))) == 0
    # Pacing kept the sender to the limits it knows; whatever 429s were met were waited out above.
    assert limiter.refused == slack.rate_limited()
