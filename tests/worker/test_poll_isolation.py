"""One job's poll that cannot be stored never stops the others (SQLite and PostgreSQL).

- 70,000 new events for one job in one poll (a long job first seen after downtime) were one bind
  parameter each in an IN (…) list, past PostgreSQL's 65,535 and SQLite's 32,766: the cycle failed
  and the same job was claimed first again, forever. Now the statements are chunked.
- A job whose write keeps failing (here: the database refuses its events) backs off alone, is
  logged at error level with the reason and shows in /healthz, while the other jobs end.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
import urllib.request

import pytest
from sqlalchemy import event, func, select, text, update

from bot.jobs.lifecycle import start_job
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.worker.poller import STORE_FAILED, Poller
from storage.models import Job, JobEvent, OutboxMessage, Subscription
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, thread_lines

MODEL = "gpt-4o-mini-2024-07-18"
CH = "C0JOBS"
BURST = 70_000


def _start(svc, key: str, channel: str = CH) -> str:  # noqa: ANN001
    f = svc.provider.upload_file(chat_jsonl(12), "train.jsonl")
    spec = JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1, "batch_size": 4}, suffix="t")
    return start_job(svc, spec, team_id="T0001", user="U0001", channel=channel, idempotency_key=key).job.id


def _sqlite_as_usually_built(svc) -> None:  # noqa: ANN001
    """SQLite as it usually ships takes at most 32,766 bind parameters in a statement (the Debian build
    here takes 250,000): hold this database to the usual limit, as PostgreSQL holds to 65,535."""
    if svc.db.dialect != "sqlite":
        return

    @event.listens_for(svc.db.engine, "connect")
    def _limit(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)

    svc.db.engine.dispose()  # connections opened before the limit are not reused


def _rows(svc) -> dict[str, Job]:  # noqa: ANN001
    with svc.db.session() as s:
        rows = {j.provider_job_id: j for j in s.scalars(select(Job))}
        s.expunge_all()
        return rows


def _alerted(slack, job_id: str) -> bool:  # noqa: ANN001
    return any(not m.get("thread_ts") and job_id in (m.get("text") or "") and "succeeded" in (m.get("text") or "") and "Base model" not in json.dumps(m.get("blocks")) for m in slack.channel_messages(CH))


def _charted(slack, job_id: str) -> bool:  # noqa: ANN001
    return any(f.get("name", "").startswith("loss-") and job_id in f.get("name", "") for m in slack.channel_messages(CH) for f in (m.get("files") or []))


def _drive(poller: Poller, sender: Sender, until, timeout: float = 60.0) -> int:  # noqa: ANN001
    """Cycles until `until()`; how many it took."""
    deadline = time.monotonic() + timeout
    cycles = 0
    while time.monotonic() < deadline:
        poller.cycle()
        sender.send_pending()
        cycles += 1
        if until():
            return cycles
        time.sleep(0.02)
    raise AssertionError("not reached in time")


def test_seventy_thousand_new_events_for_one_job_are_stored_once_and_every_job_ends(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    _sqlite_as_usually_built(svc)
    # The big job is followed quietly (no channel watches it): the test measures storing and ending,
    # not 70,000 lines posted to the Slack stand-in. The three others post their cards and alerts.
    big = _start(svc, "big", channel="C0QUIET")
    with svc.db.session() as s:
        s.execute(update(Subscription).values(ended_at=utcnow(), ended_reason="test: followed quietly"))
    others = [_start(svc, f"k{i}") for i in range(3)]
    wait_for(lambda: all(svc.provider.get_job(j).status == "succeeded" for j in [big, *others]), timeout=30)
    # Everything happened while no worker ran: one poll brings the big job's whole life at once.
    sandbox.state.add_events(big, BURST)
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(poller, sender, lambda: all(_alerted(slack, j) and _charted(slack, j) for j in others) and all(r.is_final for r in _rows(svc).values()), timeout=240)

    rows = _rows(svc)
    assert all(r.status == "succeeded" and r.poll_failures == 0 for r in rows.values())
    with svc.db.session() as s:
        n_big = s.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.job_id == rows[big].id))
        distinct = s.scalar(select(func.count(func.distinct(JobEvent.provider_event_id))).where(JobEvent.job_id == rows[big].id))
        bursts = s.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.job_id == rows[big].id, JobEvent.message.startswith("Burst event")))
    assert bursts == BURST and n_big == distinct == len(sandbox.state.jobs[big].events)
    assert rows[big].last_event_id == sandbox.state.jobs[big].events[-1]["id"]
    for j in others:
        card = next(m for m in slack.channel_messages(CH) if not m.get("thread_ts") and j in (m.get("text") or ""))
        # every event in the thread; with three endings at once the digest puts each alert there too
        assert "The job has successfully completed" in thread_lines(slack, CH, card["ts"])
    n = len(slack.calls())
    poller.cycle()
    sender.send_pending()
    assert len(slack.calls()) == n  # nothing left to say, nothing said twice


def _refuse_events_of(svc, job_row_id: int) -> None:  # noqa: ANN001
    """The database refuses this one job's events: an IntegrityError that is no race."""
    with svc.db.engine.begin() as c:
        if svc.db.dialect == "postgresql":
            c.execute(text(
                "CREATE FUNCTION refuse_events() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.job_id = {int(job_row_id)} THEN RAISE EXCEPTION 'events of this job refused (test)' USING ERRCODE = 'check_violation'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            ))
            c.execute(text("CREATE TRIGGER refuse_events BEFORE INSERT ON job_events FOR EACH ROW EXECUTE FUNCTION refuse_events()"))
        else:
            c.execute(text(
                f"CREATE TRIGGER refuse_events BEFORE INSERT ON job_events WHEN NEW.job_id = {int(job_row_id)} "
                "BEGIN SELECT RAISE(ABORT, 'events of this job refused (test)'); END"
            ))


def _heal(svc) -> None:  # noqa: ANN001
    with svc.db.engine.begin() as c:
        c.execute(text("DROP TRIGGER refuse_events" + (" ON job_events" if svc.db.dialect == "postgresql" else "")))


def test_a_job_whose_write_keeps_failing_backs_off_alone_and_shows_in_healthz(db_url, start_bot, slack, sandbox, app_clock, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    bot = start_bot(db_url)
    svc = bot.services
    stuck, *others = [_start(svc, f"k{i}") for i in range(4)]
    _refuse_events_of(svc, _rows(svc)[stuck].id)
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    caplog.set_level(logging.INFO, logger="bot.worker.poller")

    _drive(poller, sender, lambda: all(_alerted(slack, j) and _charted(slack, j) for j in others) and _rows(svc)[stuck].poll_failures >= 3)
    rows = _rows(svc)
    assert all(rows[j].is_final and rows[j].poll_failures == 0 for j in others)
    row = rows[stuck]
    assert not row.is_final and row.lease_owner is None
    assert row.last_poll_error.startswith(f"{STORE_FAILED}IntegrityError") and "refused (test)" in row.last_poll_error
    assert "raced" not in caplog.text and "another worker" not in caplog.text  # never taken for a race

    # Logged at error level with the reason, once per try; each try waits twice as long as the last.
    failed = [r for r in caplog.records if r.levelno == logging.ERROR and stuck in r.getMessage()]
    assert len(failed) == row.poll_failures and "refused (test)" in failed[0].getMessage()
    delays = [float(re.search(r"next try in ([\d.]+) s", r.getMessage()).group(1)) for r in failed]
    assert delays == pytest.approx([svc.settings.poll_interval * 2 ** n for n in range(1, len(delays) + 1)])
    # Its next poll is its last failure plus the back-off: not claimed again meanwhile.
    # (a log record is stamped by the wall clock, the row by the app's: the test sets the latter's date)
    wall_to_app = app_clock.now().timestamp() - time.time()
    assert abs(row.next_poll_at.timestamp() - (failed[-1].created + wall_to_app + delays[-1])) < 0.5

    with urllib.request.urlopen(f"{bot.url}/healthz") as r:
        health = json.loads(r.read())
    assert r.status == 200 and health["ok"] is True
    [shown] = health["polling"]["jobs"]
    assert health["polling"]["failing"] == 1 and shown["job"] == stuck and shown["provider"] == "openai"
    assert shown["failures"] == row.poll_failures and shown["error"].startswith(STORE_FAILED) and shown["next_try"]
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.job_id == row.id)) == 0
        assert not s.scalars(select(OutboxMessage.idempotency_key).where(OutboxMessage.job_id == row.id, OutboxMessage.kind == "alert")).all()

    # Once the database takes its events again, the job catches up: nothing lost, nothing doubled.
    _heal(svc)
    _drive(poller, sender, lambda: _alerted(slack, stuck) and _charted(slack, stuck))
    row = _rows(svc)[stuck]
    assert row.is_final and row.poll_failures == 0 and row.last_poll_error is None
    card = next(m for m in slack.channel_messages(CH) if not m.get("thread_ts") and stuck in (m.get("text") or ""))
    expected = [e.message for e in svc.provider.new_events(stuck, None) if e.type != "metrics"]
    assert thread_lines(slack, CH, card["ts"]) == expected
    with urllib.request.urlopen(f"{bot.url}/healthz") as r:
        assert json.loads(r.read())["polling"] == {"failing": 0, "jobs": []}


class _RowUnderUs:
    """Before the statement that stores a job's new events, the first of them is written in the same
    transaction, as if another worker had stored it a moment earlier: the insert then breaks
    uq_job_events_job_event. `times` says for how many such statements."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.fired = 0

    def __call__(self, state) -> None:  # noqa: ANN001 - an ORMExecuteState
        if not state.is_insert or self.fired >= self.times or not isinstance(state.parameters, list):
            return
        if state.statement.table.name != JobEvent.__tablename__:
            return
        self.fired += 1
        state.session.connection().execute(JobEvent.__table__.insert().values(**state.parameters[0]))


def test_a_race_on_a_named_key_is_stored_again_once_and_a_repeated_one_backs_off(db_url, make_services, slack, sandbox, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    from sqlalchemy.orm import Session

    svc = make_services(db_url)
    caplog.set_level(logging.INFO, logger="bot.worker.poller")
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")

    # Once: another worker's write, taken for what it is; stored again over it, nothing lost.
    first = _start(svc, "k1")
    wait_for(lambda: svc.provider.get_job(first).status == "succeeded", timeout=30)
    hook = _RowUnderUs(times=1)
    event.listen(Session, "do_orm_execute", hook)
    try:
        _drive(poller, sender, lambda: _alerted(slack, first))
    finally:
        event.remove(Session, "do_orm_execute", hook)
    assert hook.fired == 1 and "met another worker's write (uq_job_events_job_event)" in caplog.text
    row = _rows(svc)[first]
    assert row.is_final and row.poll_failures == 0
    with svc.db.session() as s:
        stored = s.scalars(select(JobEvent.provider_event_id).where(JobEvent.job_id == row.id)).all()
    assert sorted(stored) == sorted(e.id for e in svc.provider.new_events(first, None))

    # Every time: no race but a fault. The job backs off alone, with the reason at error level.
    second = _start(svc, "k2")
    wait_for(lambda: svc.provider.get_job(second).status == "succeeded", timeout=30)
    hook = _RowUnderUs(times=10**6)
    event.listen(Session, "do_orm_execute", hook)
    try:
        _drive(poller, sender, lambda: _rows(svc)[second].poll_failures >= 1)
    finally:
        event.remove(Session, "do_orm_execute", hook)
    row = _rows(svc)[second]
    assert not row.is_final and row.last_poll_error.startswith(f"{STORE_FAILED}IntegrityError") and "uq_job_events_job_event" in row.last_poll_error
    assert any(r.levelno == logging.ERROR and second in r.getMessage() and "uq_job_events_job_event" in r.getMessage() for r in caplog.records)
    _drive(poller, sender, lambda: _alerted(slack, second))
    assert _rows(svc)[second].poll_failures == 0
