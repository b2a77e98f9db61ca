"""A status change planned while a sender is drawing the card still reaches the card.

The card is drawn when sent. A change committed after a sender drew the card used to be folded into
that very update ("an update is still waiting"), so the card kept the old status for good (seen as a
card stuck on *validating files* after `/ft cancel`). Real sender, real Slack client and stand-in,
both databases; the sender's attempt is made while the planning transaction is still open."""

from __future__ import annotations

import threading

from sqlalchemy import select

from bot.jobs.notify import plan_card_update
from bot.outbox.sender import Sender
from storage.models import Job, OutboxMessage, Subscription
from storage.types import utcnow
from tests.worker.test_resilience import _start, _top


def _plan(svc, status: str, session=None) -> None:  # noqa: ANN001
    def run(s) -> None:  # noqa: ANN001
        job = s.scalar(select(Job))
        job.status = status
        for sub in s.scalars(select(Subscription)):
            assert plan_card_update(s, job, sub, utcnow())

    if session is not None:
        run(session)
        return
    with svc.db.session() as s:
        run(s)


def test_a_change_planned_while_an_update_is_being_sent_is_shown(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.validating_seconds = 3600  # the provider's status plays no part
    svc = make_services(db_url)
    _start(svc, "race")
    sender = Sender(svc, "w1")
    assert sender.send_pending().delivered == 1  # the card
    _plan(svc, "queued")  # an update waits, nobody has picked it up
    with svc.db.session() as s:
        waiting = s.scalar(select(OutboxMessage.id).where(OutboxMessage.kind == "card_update", OutboxMessage.delivered_at.is_(None)))
    other = Sender(svc, "w2")
    sent = threading.Thread(target=other._send_one, args=(waiting,))
    with svc.db.session() as s:
        _plan(svc, "cancelled", session=s)
        s.flush()
        sent.start()  # a sender takes the waiting update now, while this change is not committed
        sent.join(timeout=1.0)
    sent.join(timeout=30)
    assert not sent.is_alive()
    sender.send_pending()
    card = _top(slack)[0]
    assert "cancelled" in card["text"], card["text"]
    updates = slack.calls("chat.update")
    assert updates and "cancelled" in updates[-1].args["text"]
