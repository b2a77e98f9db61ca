"""The same `/ft start` delivered twice at once (Slack retries, a double submit): one job, one
"Started", one "Already started", and no lease rows left behind."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

import bot.jobs.lifecycle as lifecycle
from storage.models import Job, Lease
from tests.conftest import wait_for


def _deliver_twice(chat, text: str, *, gap: float) -> list[str]:  # noqa: ANN001
    before = len(chat.slack.responses())
    trigger = "1700000000.12345.dupdupdup"
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(chat.bot.slack.command, text, trigger_id=trigger)
        threading.Event().wait(gap)
        second = pool.submit(chat.bot.slack.command, text, trigger_id=trigger)
        assert first.result().status == 200 and second.result().status == 200
    answers = wait_for(lambda: len(chat.slack.responses()) >= before + 2 and chat.slack.responses()[before:], timeout=30)
    return [a["text"] for a in answers]


def _check_once(chat, answers: list[str]) -> None:  # noqa: ANN001
    assert len(answers) == 2
    started = [a for a in answers if ":rocket: Started" in a]
    again = [a for a in answers if a.startswith("Already started")]
    assert len(started) == 1 and len(again) == 1, answers
    job_id = started[0].split("`")[1]
    assert job_id in again[0]
    assert list(chat.sandbox.state.jobs) == [job_id]
    with chat.bot.services.db.session() as s:
        assert [j.provider_job_id for j in s.scalars(select(Job))] == [job_id]
        assert s.scalars(select(Lease.name).where(Lease.name.startswith("start:"))).all() == []
    cards = wait_for(lambda: chat.slack.channel_messages("C0001"))
    assert len(cards) == 1


@pytest.mark.parametrize("gap", [0.0, 0.2])
def test_concurrent_duplicates_start_one_job(db_url, make_chat, gap: float) -> None:  # noqa: ANN001
    chat = make_chat(db_url)
    fid = chat.upload()
    chat.sandbox.state.faults.latency = 0.3  # the provider is slow: the first delivery holds the lease a while
    _check_once(chat, _deliver_twice(chat, f"start {fid}", gap=gap))


def test_duplicate_that_takes_the_lease_after_the_first_let_go(db_url, make_chat, monkeypatch) -> None:  # noqa: ANN001
    # The second delivery finds no job (the first has not stored it yet) and reaches for the lease
    # only once the first has stored the job and let the lease go: it must still answer "already".
    chat = make_chat(db_url)
    fid = chat.upload()
    released = threading.Event()
    callers: list[str] = []
    real_hold, real_release = lifecycle.hold_lease, lifecycle.release_lease

    def hold(db, name, owner, ttl):  # noqa: ANN001, ANN202
        callers.append(owner)
        if len(callers) > 1:
            assert released.wait(20)
        return real_hold(db, name, owner, ttl)

    def release(db, name, owner):  # noqa: ANN001, ANN202
        real_release(db, name, owner)
        released.set()

    monkeypatch.setattr(lifecycle, "hold_lease", hold)
    monkeypatch.setattr(lifecycle, "release_lease", release)
    chat.sandbox.state.faults.latency = 0.3  # the second delivery looks before the first has stored the job
    answers = _deliver_twice(chat, f"start {fid}", gap=0.1)
    assert len(callers) == 2  # the interleaving under test really happened
    _check_once(chat, answers)
