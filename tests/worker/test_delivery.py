"""What the outbox sender does when Slack refuses: the real slack_sdk WebClient against the Slack
stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

from sqlalchemy import func, select

from bot.jobs.notify import subscribe
from bot.outbox.sender import Sender
from bot.worker.poller import Poller
from storage.models import Job, OutboxMessage, Subscription
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import thread_lines
from tests.worker.test_job_notifications import _drive
from tests.worker.test_resilience import _start, _top


def _files_in(slack, channel: str) -> list[dict]:  # noqa: ANN001
    return [f for m in slack.channel_messages(channel) for f in (m.get("files") or [])]


def _posts_to(slack, channel: str, since: int = 0) -> list:  # noqa: ANN001
    return [c for c in slack.calls()[since:] if channel in (c.args.get("channel"), c.args.get("channel_id"))]


def _undelivered(svc) -> int:  # noqa: ANN001
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None)))


def test_a_500_on_the_first_post_in_a_channel_the_bot_is_not_in_posts_the_card_once(db_url, make_services, slack) -> None:  # noqa: ANN001
    # A public channel the bot posts to through chat:write.public but cannot read.
    slack.set_channel("C0PUBLIC", member=False)
    svc = make_services(db_url)
    job_id = _start(svc, "pub", channel="C0PUBLIC")
    slack.fail("chat.postMessage", 500, count=1)
    sender = Sender(svc, "w1")
    assert sender.send_pending().failed == 1  # the 500: did the card go out? We cannot know.
    stats = wait_for(lambda: (st := sender.send_pending()).delivered and st, timeout=10)
    assert stats.delivered == 1 and stats.gave_up == 0
    history = slack.calls("conversations.history")
    assert len(history) == 1 and history[0].args.get("oldest")  # it did look, and Slack said not_in_channel
    cards = _top(slack, "C0PUBLIC")
    assert len(cards) == 1 and job_id in cards[0]["text"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [500, 200]
    with svc.db.session() as s:
        sub = s.scalar(select(Subscription))
        assert sub.card_ts == cards[0]["ts"] and sub.ended_at is None


def test_an_archived_channel_stops_at_once_ends_the_subscription_and_tells_the_origin_once(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.05
    svc = make_services(db_url)
    job_id = _start(svc, "arch", channel="C0ORIGIN", examples=20, epochs=2, batch=1)
    other_id = _start(svc, "other", channel="C0OTHER")
    with svc.db.session() as s:
        job = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        subscribe(s, job, "C0ARCHIVE", user="U0001", now=utcnow())
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    sender.send_pending()
    assert len(_top(slack, "C0ARCHIVE")) == 1  # the card went out while the channel was open
    slack.set_channel("C0ARCHIVE", archived=True)
    mark = len(slack.calls())

    def done() -> bool:
        return all(len(_files_in(slack, ch)) == 1 for ch in ("C0ORIGIN", "C0OTHER")) and len(_top(slack, "C0ORIGIN")) == 3

    _drive(svc, poller, sender, done, timeout=40)
    refused = _posts_to(slack, "C0ARCHIVE", mark)
    assert len(refused) == 1, [c.method for c in refused]  # the first refusal stopped the channel's queue: no retries
    # The origin channel: its card, its alert, and one notice naming the archived channel and the job.
    notices = [m for m in _top(slack, "C0ORIGIN") if "can no longer post" in m["text"]]
    assert len(notices) == 1 and "<#C0ARCHIVE>" in notices[0]["text"] and "archived" in notices[0]["text"] and job_id in notices[0]["text"]
    origin_card = _top(slack, "C0ORIGIN")[0]
    expected = [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
    assert thread_lines(slack, "C0ORIGIN", origin_card["ts"]) == expected
    # Another job in another channel is unaffected.
    other_top = _top(slack, "C0OTHER")
    assert len(other_top) == 2 and other_id in other_top[0]["text"] and "succeeded" in other_top[1]["text"]
    with svc.db.session() as s:
        sub = s.scalar(select(Subscription).where(Subscription.channel_id == "C0ARCHIVE"))
        assert sub.ended_at is not None and sub.ended_reason == "is_archived"
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.channel_id == "C0ARCHIVE", OutboxMessage.delivered_at.is_(None))).all()
        assert rows and all(r.gave_up_at is not None and "is_archived" in r.last_error for r in rows)
        planned = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel_id == "C0ARCHIVE"))
    # Later polls plan nothing more for the ended subscription, and nothing more is sent there.
    poller.cycle()
    sender.send_pending()
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel_id == "C0ARCHIVE")) == planned
    assert len(_posts_to(slack, "C0ARCHIVE", mark)) == 1
    assert len([m for m in _top(slack, "C0ORIGIN") if "can no longer post" in m["text"]]) == 1
    # Unarchived, the channel can follow the job again: a fresh card (the job has ended: and its alert).
    slack.set_channel("C0ARCHIVE", archived=False)
    with svc.db.session() as s:
        job = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        assert subscribe(s, job, "C0ARCHIVE", user="U0001", now=utcnow())[1] is True
    wait_for(lambda: sender.send_pending() and _undelivered(svc) == 0)
    again = _top(slack, "C0ARCHIVE")
    assert len(again) == 3 and job_id in again[1]["text"] and "succeeded" in again[2]["text"]
    with svc.db.session() as s:
        assert s.scalar(select(Subscription.ended_at).where(Subscription.channel_id == "C0ARCHIVE")) is None


def test_a_refused_token_pauses_sending_keeps_everything_and_resumes(db_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    bot = start_bot(db_url)
    svc = bot.services
    job_id = _start(svc, "auth")
    slack.refuse_token("invalid_auth")
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1", probe_seconds=0.05)
    assert sender.send_pending().paused
    # The job runs to its end at the provider while Slack refuses the token: its messages pile up.
    wait_for(lambda: poller.cycle().polled and svc.provider.get_job(job_id).status == "succeeded" and _job_final(svc), timeout=20)
    assert sender.send_pending().paused
    with urllib.request.urlopen(f"{bot.url}/healthz") as r:
        health = json.loads(r.read())
    assert r.status == 200 and health["delivery"]["sending"] == "paused" and health["delivery"]["paused_reason"] == "invalid_auth"
    assert health["delivery"]["given_up"] == 0 and health["delivery"]["waiting"] >= 4  # card, replies, card update, alert, chart
    assert slack.channel_messages("C0JOBS") == []
    slack.refuse_token(None)
    wait_for(lambda: sender.send_pending() and _undelivered(svc) == 0, timeout=20)
    top = _top(slack)
    assert len(top) == 2 and job_id in top[0]["text"] and "succeeded" in top[1]["text"]
    expected = [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
    assert thread_lines(slack, "C0JOBS", top[0]["ts"]) == expected
    assert len(_files_in(slack, "C0JOBS")) == 1
    with urllib.request.urlopen(f"{bot.url}/healthz") as r:
        health = json.loads(r.read())["delivery"]
    assert health == {"sending": "ok", "paused_reason": None, "paused_since": None, "given_up": 0, "waiting": 0}


def _job_final(svc) -> bool:  # noqa: ANN001
    with svc.db.session() as s:
        return bool(s.scalar(select(Job.is_final)))


def test_thousands_of_waiting_rows_do_not_starve_a_due_one(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    later = utcnow() + timedelta(hours=1)
    with svc.db.session() as s:
        s.add_all(
            OutboxMessage(idempotency_key=f"wait{i}", kind="post", channel_id=f"C0WAIT{i % 40}", payload={"text": f"w{i}"}, attempts=3, next_attempt_at=later)
            for i in range(1500)
        )
    # and a job's thread whose first message waits, with 1,200 messages queued behind it
    with svc.db.session() as s:
        job = Job(provider_job_id="ftjob-wait", status="running", base_model="m", team_id="T0001")
        s.add(job)
        s.flush()
        waiting_sub, due_sub = Subscription(job_id=job.id, channel_id="C0WAITSUB"), Subscription(job_id=job.id, channel_id="C0DUESUB", card_ts="1.000001")
        s.add_all([waiting_sub, due_sub])
        s.flush()
        s.add_all(
            OutboxMessage(idempotency_key=f"sw{i}", kind="post", channel_id="C0WAITSUB", subscription_id=waiting_sub.id, payload={"text": f"s{i}"}, attempts=int(i == 0), next_attempt_at=later if i == 0 else utcnow())
            for i in range(1200)
        )
        due_sub_id = due_sub.id
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="due", kind="post", channel_id="C0DUE", payload={"text": "the due one"}))
        s.add(OutboxMessage(idempotency_key="due-sub", kind="post", channel_id="C0DUESUB", subscription_id=due_sub_id, payload={"text": "the due one in a thread"}))
    stats = Sender(svc, "w1").send_pending()
    assert stats.delivered == 2
    assert [m["text"] for m in slack.channel_messages("C0DUE")] == ["the due one"]
    assert [m["text"] for m in slack.channel_messages("C0DUESUB")] == ["the due one in a thread"]
    assert sorted(c.args["channel"] for c in slack.calls("chat.postMessage")) == ["C0DUE", "C0DUESUB"]


def test_an_earlier_waiting_message_still_holds_back_its_thread(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="first", kind="post", channel_id="C0ORDER", payload={"text": "first"}, attempts=1, next_attempt_at=utcnow() + timedelta(hours=1)))
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="second", kind="post", channel_id="C0ORDER", payload={"text": "second"}))
    assert Sender(svc, "w1").send_pending().delivered == 0
    assert slack.channel_messages("C0ORDER") == []


def test_recovery_finds_the_original_behind_more_than_200_later_messages(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    _start(svc, "busy")
    sender = Sender(svc, "w1")
    real = sender.client.chat_postMessage

    def post_then_drop(**kw):  # noqa: ANN003, ANN202
        real(**kw)
        raise ConnectionResetError("connection dropped after the post")

    sender.client.chat_postMessage = post_then_drop  # type: ignore[method-assign]
    assert sender.send_pending().failed == 1
    sender.client.chat_postMessage = real  # type: ignore[method-assign]
    for i in range(250):  # a busy channel: the card is now far down its history
        slack.post_as_user("C0JOBS", f"chatter {i}")
    stats = wait_for(lambda: (st := sender.send_pending()).recovered and st, timeout=10)
    assert stats.recovered == 1 and stats.delivered == 1
    assert len([m for m in slack.channel_messages("C0JOBS") if m["user"] == "UBOT"]) == 1
    reads = slack.calls("conversations.history")
    assert len(reads) >= 2 and all(c.args.get("oldest") for c in reads)  # paged, bounded by time


def test_a_message_slack_refuses_is_given_up_visibly_and_the_rest_goes_on(db_url, make_services, slack, caplog) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="huge", kind="post", channel_id="C0MSG", payload={"text": "x" * 40_001}))
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="fine", kind="post", channel_id="C0MSG", payload={"text": "fine"}))
    with caplog.at_level("ERROR", logger="bot.outbox.sender"):
        stats = Sender(svc, "w1").send_pending()
    assert stats.gave_up == 1 and stats.delivered == 1
    assert [m["text"] for m in slack.channel_messages("C0MSG")] == ["fine"]
    assert any("GAVE UP" in r.getMessage() and "msg_too_long" in r.getMessage() for r in caplog.records)
    from bot.outbox.sender import delivery_health

    assert delivery_health(svc.db)["given_up"] == 1


def test_transient_failures_give_up_only_after_the_bound_and_visibly(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    with svc.db.session() as s:
        s.add(OutboxMessage(idempotency_key="flaky", kind="post", channel_id="C0FLAKY", payload={"text": "hi"}))
    slack.fail("chat.postMessage", 503, count=100)
    sender = Sender(svc, "w1", max_attempts=3)
    with svc.db.session() as s:
        row = s.scalar(select(OutboxMessage))
    for attempt in range(1, 4):
        with svc.db.session() as s:
            s.get(OutboxMessage, row.id).next_attempt_at = utcnow()  # skip the backoff
        stats = sender.send_pending()
        assert (stats.failed, stats.gave_up) == ((1, 0) if attempt < 3 else (0, 1))
    with svc.db.session() as s:
        row = s.get(OutboxMessage, row.id)
        assert row.gave_up_at is not None and "http 503" in row.last_error and row.delivered_at is None


def test_a_refused_card_gives_up_its_thread_but_not_the_alert(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    job_id = _start(svc, "refused")
    slack.fail("chat.postMessage", 200, error="invalid_blocks")
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(svc, poller, sender, lambda: any("succeeded" in m["text"] for m in _top(slack)), timeout=30)
    assert _undelivered(svc) == 0
    top = _top(slack)
    assert len(top) == 1 and job_id in top[0]["text"] and "succeeded" in top[0]["text"]  # the alert, on its own
    with svc.db.session() as s:
        given_up = {m.kind: m.last_error for m in s.scalars(select(OutboxMessage).where(OutboxMessage.gave_up_at.is_not(None)))}
    assert given_up["card"] == "invalid_blocks"
    assert given_up["reply"].startswith("card_not_posted") and given_up["chart"].startswith("card_not_posted")
    assert len(slack.calls("chat.update")) == 0 and _files_in(slack, "C0JOBS") == []
