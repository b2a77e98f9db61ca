"""Failures: Slack answering 429/5xx, the provider failing one job, SIGKILLed workers, two workers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from bot.jobs.lifecycle import start_job
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.worker.poller import Poller
from tests.conftest import BOT_TOKEN, date_env, wait_for
from tests.helpers import chat_jsonl, thread_lines
from tests.worker.test_job_notifications import CH, MODEL, _drive, _finished


def _start(svc, key: str, *, examples: int = 12, epochs: int = 2, batch: int = 4, channel: str = CH) -> str:  # noqa: ANN001
    f = svc.provider.upload_file(chat_jsonl(examples), "train.jsonl")
    spec = JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": epochs, "batch_size": batch})
    return start_job(svc, spec, team_id="T0001", user="U0001", channel=channel, idempotency_key=key).job.id


def _top(slack, channel: str = CH) -> list[dict]:  # noqa: ANN001
    return [m for m in slack.channel_messages(channel) if not m.get("thread_ts")]


def test_slack_429_and_5xx_delay_but_lose_nothing(sqlite_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    svc = make_services(sqlite_url)
    job_id = _start(svc, "k")
    slack.fail("chat.postMessage", 429, count=3, retry_after=1)
    slack.fail("chat.update", 503, count=2)
    slack.fail("files.completeUploadExternal", 500, count=1)
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(svc, poller, sender, _finished(slack), timeout=40)
    assert [c.status for c in slack.calls("chat.postMessage")][:3] == [429, 429, 429]
    card, alert = _top(slack)
    assert job_id in card["text"] and "succeeded" in alert["text"]
    lines = thread_lines(slack, CH, card["ts"])
    assert lines == [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
    charts = [f for m in slack.channel_messages(CH) for f in (m.get("files") or [])]
    assert len(charts) == 1


def test_a_message_whose_answer_was_lost_is_not_posted_twice(sqlite_url, make_services, slack) -> None:  # noqa: ANN001
    # Slack posts the card but the answer never reaches us (5xx after the fact is what a dropped
    # connection looks like): the retry finds the card by its metadata instead of posting again.
    svc = make_services(sqlite_url)
    _start(svc, "lost")
    sender = Sender(svc, "w1")
    real = sender.client.chat_postMessage

    def post_then_fail(**kw):  # noqa: ANN003, ANN202
        real(**kw)
        raise ConnectionResetError("connection dropped after the post")

    sender.client.chat_postMessage = post_then_fail  # type: ignore[method-assign]
    assert sender.send_pending().failed == 1
    sender.client.chat_postMessage = real  # type: ignore[method-assign]
    stats = wait_for(lambda: (st := sender.send_pending()).recovered and st, timeout=10)  # once the backoff is over
    assert stats.recovered == 1 and stats.delivered == 1
    assert len(_top(slack)) == 1
    assert len(slack.calls("conversations.history")) == 1


def test_provider_failing_for_one_job_does_not_stop_the_others(sqlite_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    svc = make_services(sqlite_url)
    bad = _start(svc, "bad", channel="C0BAD")
    good = [_start(svc, f"good{i}", channel=f"C0GOOD{i}") for i in range(3)]
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("500",)
    sandbox.state.faults.path_contains = bad
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")

    def all_good_done() -> bool:
        return all(any(f for m in slack.channel_messages(f"C0GOOD{i}") for f in (m.get("files") or [])) for i in range(3))

    _drive(svc, poller, sender, all_good_done, timeout=30)
    for i, job_id in enumerate(good):
        assert job_id in _top(slack, f"C0GOOD{i}")[0]["text"]
    from sqlalchemy import select

    from storage.models import Job

    with svc.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == bad))
        assert row.poll_failures >= 1 and "server error" in row.last_poll_error and not row.is_final
    sandbox.state.faults.rate = 0
    _drive(svc, poller, sender, lambda: len(_top(slack, "C0BAD")) == 2, timeout=60)


def _worker_env(db_url: str, sandbox, slack) -> dict[str, str]:  # noqa: ANN001
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": sandbox.url,
        "DATABASE_URL": db_url,
        "FTBOT_POLL_INTERVAL": "0.2",
        "FTBOT_LOG_LEVEL": "WARNING",
        "FTBOT_EVAL_ON_COMPLETION": "0",  # these count the thread's messages exactly
        **date_env(),
    }


def _spawn(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _assert_exactly_once(svc, slack, job_id: str, channel: str = CH) -> None:  # noqa: ANN001
    top = _top(slack, channel)
    assert len(top) == 2, [m["text"] for m in top]  # the card and one alert
    assert "succeeded" in top[1]["text"]
    lines = thread_lines(slack, channel, top[0]["ts"])
    expected = [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
    assert lines == expected, Counter(lines) - Counter(expected)
    charts = [f for m in slack.channel_messages(channel) for f in (m.get("files") or [])]
    assert len(charts) == 1


def _no_undelivered(svc) -> bool:  # noqa: ANN001
    from sqlalchemy import func, select

    from storage.models import OutboxMessage

    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))) == 0


def test_worker_killed_between_a_post_and_its_record_posts_everything_exactly_once(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.15
    svc = make_services(db_url)
    job_id = _start(svc, "crash", examples=12, epochs=3, batch=1)  # 36 steps, ~6 s of training
    env = _worker_env(svc.settings.database_url, sandbox, slack)
    # Each kill lands after Slack has done the call but before the worker hears back: the stand-in
    # holds its answer, the worker is killed, the answer goes nowhere. The card, a thread reply and
    # the loss chart are each left posted-but-unrecorded once.
    held = ["chat.postMessage", "chat.postMessage", "files.completeUploadExternal"]
    for method in held:
        reached, release = slack.hold_answers(method)
        proc = _spawn(env)
        try:
            assert reached.wait(timeout=60), f"the worker never called {method}"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            release.set()
    # And a few kills at random moments on top.
    rng = random.Random(1234)
    for _ in range(3):
        proc = _spawn(env)
        time.sleep(rng.uniform(0.8, 2.0))  # deliberately blind: a kill at whatever moment it lands
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = _spawn(env)
    try:
        wait_for(lambda: _finished(slack)() and _no_undelivered(svc), timeout=60, interval=0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    _assert_exactly_once(svc, slack, job_id)
    # The card, a reply and the chart were each attempted again after their kill, and (exactly once
    # above) the second attempt found them by reading the channel back instead of posting again.
    from sqlalchemy import select

    from storage.models import OutboxMessage

    with svc.db.session() as s:
        retried = {m.kind for m in s.scalars(select(OutboxMessage).where(OutboxMessage.attempts >= 2))}
    assert {"card", "reply", "chart"} <= retried, retried
    reads = slack.calls("conversations.history") + slack.calls("conversations.replies")
    assert len(reads) >= len(held)


@pytest.mark.postgres
def test_two_workers_on_postgres_never_duplicate(make_services, slack, sandbox) -> None:  # noqa: ANN001
    from storage.migrate import upgrade
    from tests.conftest import fresh_postgres_db

    url, drop = fresh_postgres_db()
    try:
        upgrade(url)
        sandbox.state.timing.step_seconds = 0.05
        svc = make_services(url)
        jobs = {f"C0W{i}": _start(svc, f"two{i}", channel=f"C0W{i}", examples=20, epochs=2, batch=1) for i in range(6)}
        env = _worker_env(svc.settings.database_url, sandbox, slack)
        workers = [_spawn(env), _spawn(env)]
        try:
            wait_for(lambda: all(_finished_in(slack, ch) for ch in jobs) and _no_undelivered(svc), timeout=90, interval=0.2)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(timeout=15)
        for ch, job_id in jobs.items():
            _assert_exactly_once(svc, slack, job_id, ch)
        svc.close()
    finally:
        drop()


def _finished_in(slack, channel: str) -> bool:  # noqa: ANN001
    return any(f.get("name", "").startswith("loss-") for m in slack.channel_messages(channel) for f in (m.get("files") or []))
