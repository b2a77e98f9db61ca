"""Issue 22 item 7 (digest), a regression test that does NOT reproduce the reported bug on main: endings that arrive while earlier ones are held for the digest
join them; the channel hears one digest, not a digest and then a lone alert. Real poller and sender,
the sandbox and the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import select

from bot.outbox.sender import Sender
from bot.worker.poller import Poller
from storage.models import OutboxMessage
from tests.conftest import wait_for
from tests.worker.test_resilience import _start

CH = "C0BATCH"


def _endings(slack) -> list[dict]:  # noqa: ANN001
    """Top-level messages after the three job cards (the first three posts, edited in place)."""
    return [m for m in slack.channel_messages(CH) if not m.get("thread_ts")][3:]


def test_a_second_batch_of_endings_joins_the_held_first(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 3600  # nobody ends on their own
    svc = make_services(db_url)
    jobs = [_start(svc, f"b{i}", channel=CH) for i in range(3)]
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    poller.cycle()
    sender.send_pending()  # the cards
    for j in jobs[:2]:
        svc.provider.cancel_job(j)
    wait_for(lambda: all(svc.provider.get_job(j).status == "cancelled" for j in jobs[:2]))
    poller.cycle()
    sender.send_pending()  # two endings: held a moment for more
    with svc.db.session() as s:
        held = s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("s%:final"), OutboxMessage.kind == "alert")).all()
        assert len(held) == 2 and all(m.delivered_at is None for m in held)
    # A third ends while the first two are held: a batch of one, which alone would post alone.
    svc.provider.cancel_job(jobs[2])
    wait_for(lambda: svc.provider.get_job(jobs[2]).status == "cancelled")
    poller.cycle()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _endings(slack):
        sender.send_pending()
        time.sleep(0.1)
    time.sleep(1.5)  # anything still queued would go now
    sender.send_pending()
    endings = _endings(slack)
    assert len(endings) == 1, [m["text"] for m in endings]
    assert "3 fine-tuning jobs ended (3 cancelled)" in endings[0]["text"] and all(j in endings[0]["text"] for j in jobs)
