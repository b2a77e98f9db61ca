"""The outbox sender under Slack's rate limits, enforced by the Slack stand-in and met through the real
slack_sdk WebClient, on SQLite and PostgreSQL: a 429 is waited out by rescheduling (no thread, no
claim held), holds only what was limited, and never loses or doubles a message; a read-back that is
itself limited waits and never posts twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.outbox.pacing import Pacer
from bot.outbox.sender import Sender
from bot.slack_client import make_web_client
from bot.slack_standin.limits import RateLimits
from storage.models import OutboxMessage
from storage.types import utcnow
from tests.conftest import BOT_TOKEN, wait_for
from tests.worker.test_resilience import CH, _start, _top


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _row(svc, key: str) -> OutboxMessage:  # noqa: ANN001
    with svc.db.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
        s.expunge(m)
        return m


def test_a_429_in_one_channel_reschedules_that_message_and_delays_no_other_channel(db_url, make_services, slack) -> None:  # noqa: ANN001
    slack.enforce_limits(RateLimits())
    svc = make_services(db_url, slack_pacing=True)
    other = make_web_client(BOT_TOKEN, slack.api_url, retry_rate_limited=False)
    for i in range(3):  # another app instance used up C0BUSY's burst: our pacer cannot know
        other.chat_postMessage(channel="C0BUSY", text=f"elsewhere {i}")
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="busy", kind="post", channel_id="C0BUSY", payload={"text": "to the busy channel"}))
        s.add(OutboxMessage(idempotency_key="quiet", kind="post", channel_id="C0QUIET", payload={"text": "to the quiet channel"}))
    sender = Sender(svc, "w1")
    before = utcnow()
    stats = sender.send_pending()
    assert (stats.delivered, stats.deferred, stats.failed) == (1, 1, 0)
    assert [m["text"] for m in slack.channel_messages("C0QUIET")] == ["to the quiet channel"]
    busy = _row(svc, "busy")
    # Waiting as told without holding anything: unclaimed, due after Retry-After, not a failed attempt.
    assert busy.claimed_by is None and busy.claimed_until is None and busy.delivered_at is None
    assert busy.next_attempt_at >= before + timedelta(seconds=1) and busy.attempts == 0 and busy.uncertain_since is None
    assert "ratelimited" in (busy.last_error or "")
    wait_for(lambda: sender.send_pending().delivered, timeout=15, interval=0.1)
    assert [m["text"] for m in slack.channel_messages("C0BUSY")].count("to the busy channel") == 1
    posts = [c.status for c in slack.calls("chat.postMessage") if c.args.get("channel") == "C0BUSY"]
    assert posts[:4] == [200, 200, 200, 429] and posts.count(200) == 4


def test_a_429_on_chat_update_holds_edits_not_posts(db_url, make_services, slack) -> None:  # noqa: ANN001
    slack.enforce_limits(RateLimits(method_per_minute={"chat.update": 50}, method_burst={"chat.update": 1}))
    svc = make_services(db_url, slack_pacing=True)
    other = make_web_client(BOT_TOKEN, slack.api_url, retry_rate_limited=False)
    ts = other.chat_postMessage(channel="C0EDIT", text="v1")["ts"]
    other.chat_update(channel="C0EDIT", ts=ts, text="v2")  # the workspace's chat.update burst is spent
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="orig", kind="post", channel_id="C0EDIT", payload={"text": "orig"}, delivered_at=utcnow(), delivered_ts=ts))
        s.add(OutboxMessage(idempotency_key="edit", kind="edit", channel_id="C0EDIT", payload={"text": "v3", "edit_of": "orig"}))
        s.add(OutboxMessage(idempotency_key="post", kind="post", channel_id="C0POST", payload={"text": "a post"}))
    sender = Sender(svc, "w1")
    stats = sender.send_pending()
    assert (stats.delivered, stats.deferred) == (1, 1)
    assert slack.channel_messages("C0POST")[0]["text"] == "a post"
    assert sender.pacer.slot("chat.update", "C0OTHER", 999) > 0  # the method is held everywhere...
    assert sender.pacer.slot("chat.postMessage", "C0EDIT", 999) == 0  # ...posting is not
    wait_for(lambda: sender.send_pending().delivered, timeout=15, interval=0.1)
    assert slack.channel_messages("C0EDIT")[0]["text"] == "v3"
    assert [c.status for c in slack.calls("chat.update")] == [200, 429, 200]


def test_a_read_back_that_is_rate_limited_waits_and_never_posts_twice(db_url, make_services, slack) -> None:  # noqa: ANN001
    clock = Clock()
    svc = make_services(db_url, slack_pacing=True)
    _start(svc, "readback")
    sender = Sender(svc, "w1")
    sender.pacer = Pacer(clock)
    real = sender.client.chat_postMessage

    def post_then_drop(**kw):  # noqa: ANN003, ANN202
        real(**kw)
        raise ConnectionResetError("connection dropped after the post")

    sender.client.chat_postMessage = post_then_drop  # type: ignore[method-assign]
    assert sender.send_pending().failed == 1  # posted, but we cannot know
    sender.client.chat_postMessage = real  # type: ignore[method-assign]
    # Outside the Marketplace: one history read a minute, and someone else's read just used it.
    slack.enforce_limits(RateLimits(clock=clock))
    make_web_client(BOT_TOKEN, slack.api_url, retry_rate_limited=False).conversations_history(channel=CH)
    with svc.db.session() as s:
        s.scalar(select(OutboxMessage).where(OutboxMessage.kind == "card")).next_attempt_at = utcnow()  # skip the backoff
    stats = sender.send_pending()
    assert (stats.deferred, stats.delivered) == (1, 0)
    card = _row(svc, "s1:card")
    assert card.claimed_by is None and card.uncertain_since is not None  # still to be looked for
    assert card.next_attempt_at >= utcnow() + timedelta(seconds=50)  # Retry-After: the minute
    assert sender.send_pending().deferred == 0  # not due: nothing tried, nothing held
    clock.t += 60  # the minute passes (for the stand-in and for our pacer)
    with svc.db.session() as s:
        s.get(OutboxMessage, card.id).next_attempt_at = utcnow()
    stats = sender.send_pending()
    assert stats.recovered == 1
    assert len(_top(slack, CH)) == 1 and len([c for c in slack.calls("chat.postMessage") if c.status == 200]) == 1
    reads = [c.status for c in slack.calls("conversations.history")]
    assert reads == [200, 429, 200]  # someone else's, ours refused, ours: one call for this message
    assert _row(svc, "s1:card").delivered_ts == _top(slack, CH)[0]["ts"]


def test_pacing_reserves_successive_slots_per_channel_and_lets_channel_posts_go_first() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    assert [pacer.slot("chat.postMessage", "C1", mid) for mid in range(1, 4)] == [0, 0, 0]  # the burst
    waits = [pacer.slot("chat.postMessage", "C1", mid) for mid in range(4, 7)]
    assert waits == [1.0, 2.0, 3.0]  # reserved: no herd when they come back
    assert pacer.slot("chat.postMessage", "C1", 5) == 2.0  # asking again keeps its slot
    assert pacer.slot("chat.postMessage", "C2", 1) == 0  # another channel is not held back
    assert pacer.slot("chat.update", "C1", 1) == 0  # nor another method
    assert pacer.slot("chat.postMessage", "C1", 99, urgent=True) == 1.0  # a digest goes ahead of the replies
    clock.t += 2.0
    assert pacer.slot("chat.postMessage", "C1", 5) == 0  # its slot came
    pacer.hold("chat.postMessage", "C1", 30)  # Slack said 429, Retry-After 30
    assert pacer.slot("chat.postMessage", "C1", 6) == 30 and pacer.slot("chat.postMessage", "C2", 2) == 0
    assert Pacer(clock, enabled=False).slot("chat.postMessage", "C1", 1) == 0
