"""Issue 22 item 7 (digest): endings that arrive while earlier ones are held join them; the channel
hears one digest, not a digest and then a lone alert. Held by the digest's quiet window, or by a 429's
Retry-After. Real poller and sender, the sandbox and the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.outbox import digest
from bot.outbox.sender import Sender
from bot.worker.poller import Poller
from storage.models import OutboxMessage
from storage.types import utcnow
from tests.conftest import wait_for
from tests.worker.test_resilience import _start

CH = "C0BATCH"


def _endings(slack) -> list[dict]:  # noqa: ANN001
    """Top-level messages after the three job cards (the first three posts, edited in place)."""
    return [m for m in slack.channel_messages(CH) if not m.get("thread_ts")][3:]


def _end(svc, poller, jobs) -> None:  # noqa: ANN001
    for j in jobs:
        svc.provider.cancel_job(j)
    wait_for(lambda: all(svc.provider.get_job(j).status == "cancelled" for j in jobs))
    poller.cycle()


def _finals(svc) -> list[OutboxMessage]:  # noqa: ANN001
    with svc.db.session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("s%:final")).order_by(OutboxMessage.id)))


def _drain(sender, slack, until) -> None:  # noqa: ANN001
    def go() -> bool:
        sender.send_pending()
        return until()

    wait_for(go, timeout=30, interval=0.1)


@pytest.fixture
def three_jobs(db_url, make_services, slack, sandbox):  # noqa: ANN001
    sandbox.state.timing.step_seconds = 3600  # nobody ends on their own
    svc = make_services(db_url)
    jobs = [_start(svc, f"b{i}", channel=CH) for i in range(3)]
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    poller.cycle()
    _drain(sender, slack, lambda: len([m for m in slack.channel_messages(CH) if not m.get("thread_ts")]) == 3)  # the cards
    return svc, jobs, poller, sender


def test_a_second_batch_of_endings_joins_the_held_first(three_jobs, slack, monkeypatch) -> None:  # noqa: ANN001
    svc, jobs, poller, sender = three_jobs
    # A quiet window longer than this test's steps take on a loaded machine, so the third ending
    # surely arrives while the first two are held.
    monkeypatch.setattr(digest, "QUIET", timedelta(seconds=6))
    monkeypatch.setattr(digest, "MAX_WAIT", timedelta(seconds=60))
    _end(svc, poller, jobs[:2])
    sender.send_pending()  # two endings: held a moment for more
    held = _finals(svc)
    assert len(held) == 2 and all(m.delivered_at is None and m.kind == "alert" and m.next_attempt_at > utcnow() for m in held)
    # A third ends while the first two are held: a batch of one, which alone would post alone.
    _end(svc, poller, jobs[2:])
    sender.send_pending()
    assert not _endings(slack), [m["text"] for m in _endings(slack)]
    assert all(m.next_attempt_at > utcnow() for m in _finals(svc))  # all three wait for the window now
    _drain(sender, slack, lambda: _endings(slack))
    sender.send_pending()
    endings = _endings(slack)
    assert len(endings) == 1, [m["text"] for m in endings]
    assert "3 fine-tuning jobs ended (3 cancelled)" in endings[0]["text"] and all(j in endings[0]["text"] for j in jobs)
    assert all(m.kind == "reply" and m.delivered_at is not None for m in _finals(svc))


def test_an_ending_waiting_out_a_429_joins_the_next_ending(three_jobs, slack, monkeypatch) -> None:  # noqa: ANN001
    svc, jobs, poller, sender = three_jobs
    monkeypatch.setattr(digest, "QUIET", timedelta(seconds=1))
    # One job ends alone and its alert is sent alone (its thread's events first); Slack answers the
    # alert 429 with a long Retry-After.
    _end(svc, poller, jobs[:1])
    sender.send_pending(defer_kinds=frozenset({"alert"}))
    slack.fail("chat.postMessage", 429, count=1, retry_after=4)
    sender.send_pending()
    assert [c.status for c in slack.calls("chat.postMessage")][-1] == 429
    (first,) = _finals(svc)
    assert first.kind == "alert" and first.delivered_at is None and first.attempts == 0 and first.next_attempt_at > utcnow()
    # Two more end while it waits: the three are one digest, not a lone alert and a digest of two.
    _end(svc, poller, jobs[1:])
    _drain(sender, slack, lambda: _endings(slack))
    sender.send_pending()
    endings = _endings(slack)
    assert len(endings) == 1, [m["text"] for m in endings]
    assert "3 fine-tuning jobs ended (3 cancelled)" in endings[0]["text"] and all(j in endings[0]["text"] for j in jobs)


def test_endings_held_until_a_moment_between_gathering_and_picking_still_make_one_digest(three_jobs, slack, monkeypatch) -> None:  # noqa: ANN001
    # A sender's pass gathers, then picks what is due. On a loaded machine the hold can end in
    # between: gathering (reading its clock first) holds them once more, and picking must not then
    # find them due and post each alone. Here gathering's own clock reads just before the hold ends.
    svc, jobs, poller, sender = three_jobs
    monkeypatch.setattr(digest, "QUIET", timedelta(seconds=1))
    monkeypatch.setattr(digest, "MAX_WAIT", timedelta(seconds=60))
    _end(svc, poller, jobs[:2])
    sender.send_pending()  # held for the quiet window
    due = max(m.next_attempt_at for m in _finals(svc))
    assert due > utcnow() and all(m.kind == "alert" and m.delivered_at is None for m in _finals(svc))
    wait_for(lambda: utcnow() > due + timedelta(milliseconds=50), timeout=10, interval=0.05)
    monkeypatch.setattr(digest, "utcnow", lambda: due - timedelta(milliseconds=10))
    sender.send_pending()
    assert not _endings(slack) or len(_endings(slack)) == 1 and "2 fine-tuning jobs ended" in _endings(slack)[0]["text"], [m["text"] for m in _endings(slack)]
    monkeypatch.undo()
    _drain(sender, slack, lambda: _endings(slack))
    sender.send_pending()
    endings = _endings(slack)
    assert len(endings) == 1 and "2 fine-tuning jobs ended (2 cancelled)" in endings[0]["text"], [m["text"] for m in endings]
    assert all(m.kind == "reply" and m.delivered_at is not None for m in _finals(svc))
