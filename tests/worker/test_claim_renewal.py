"""Exactly once when a send is slow (issue 14 item 5): the outbox claim is renewed while a send is in
flight, and a result is recorded only by the sender still holding the claim. The real slack_sdk
WebClient against the Slack stand-in, two senders, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from sqlalchemy import select

from bot.outbox.sender import Sender
from storage.models import OutboxMessage, Subscription
from storage.types import utcnow
from tests.conftest import wait_for
from tests.worker.test_resilience import CH, _start, _top

CLAIM = 2.0  # seconds: far shorter than the held post below, with room for a loaded machine


def _card(svc) -> OutboxMessage:  # noqa: ANN001
    with svc.db.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.kind == "card"))
        s.expunge(m)
        return m


def _in_thread(fn) -> tuple[threading.Thread, list]:  # noqa: ANN001
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_a_post_slower_than_the_claim_keeps_its_claim_and_goes_out_once(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    job_id = _start(svc, "slow")
    # Slack takes its time before doing the post: a second sender that took the message meanwhile
    # would find nothing in the channel and post the card again.
    reached, release = slack.hold_answers("chat.postMessage", after=False)
    a, b = Sender(svc, "web", claim_seconds=CLAIM), Sender(svc, "worker", claim_seconds=CLAIM)
    t, out = _in_thread(a.send_pending)
    try:
        assert reached.wait(timeout=10)
        first_until = _card(svc).claimed_until
        tried = []

        def outlived_twice() -> bool:
            tried.append(b.send_pending())  # the other sender keeps trying all along
            m = _card(svc)
            return utcnow() > first_until + timedelta(seconds=2 * CLAIM) and m.claimed_by == "web" and m.claimed_until > first_until

        wait_for(outlived_twice, timeout=20, interval=0.05)
        assert all(st.delivered == 0 for st in tried)
    finally:
        release.set()
    t.join(timeout=20)
    assert out and out[0].delivered == 1
    cards = _top(slack, CH)
    assert len(cards) == 1 and job_id in cards[0]["text"]
    # The card landed once in the whole workspace (a call the stand-in recorded but refused, or one
    # the client gave up on before Slack did anything, posts nothing).
    with slack.state.lock:
        landed = [m for msgs in slack.state.messages.values() for m in msgs if not m.get("thread_ts") and "s1:card" in json.dumps(m.get("metadata") or {})]
    assert len(landed) == 1, [(c.args.get("channel"), c.status, c.at) for c in slack.calls("chat.postMessage")]
    m = _card(svc)
    assert m.delivered_ts == cards[0]["ts"] and m.claimed_by is None
    assert b.send_pending().delivered == 0  # and nothing is left for anyone to post


def test_a_sender_that_lost_its_claim_records_nothing_and_the_holder_s_record_stands(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    _start(svc, "lost-claim")
    # Slack did the post but the answer is slow, and this sender's renewals stop (a paused process).
    reached, release = slack.hold_answers("chat.postMessage", after=True)
    a, b = Sender(svc, "web", claim_seconds=CLAIM), Sender(svc, "worker", claim_seconds=CLAIM)
    a.keeper.renew_now = lambda: None  # type: ignore[method-assign]
    t, out = _in_thread(a.send_pending)
    try:
        assert reached.wait(timeout=10)
        # The claim runs out; the other sender takes the message, reads the channel back and finds it.
        stats = wait_for(lambda: (st := b.send_pending()).delivered and st, timeout=20, interval=0.05)
        assert stats.recovered == 1
        taken = _card(svc)
        assert taken.delivered_at is not None and taken.attempts == 2
    finally:
        release.set()
    t.join(timeout=20)
    assert out and out[0].delivered == 0  # its answer came too late to be recorded
    cards = _top(slack, CH)
    assert len(cards) == 1 and len(slack.calls("chat.postMessage")) == 1
    m = _card(svc)
    assert (m.delivered_ts, m.delivered_at, m.attempts) == (cards[0]["ts"], taken.delivered_at, 2)
    with svc.db.session() as s:
        assert s.scalar(select(Subscription.card_ts)) == cards[0]["ts"]
