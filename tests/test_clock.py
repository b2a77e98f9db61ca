"""The one clock (bot/clock.py): what the app reads for "now" and "today", set by the suite, by a test,
or by FTBOT_TEST_NOW for a process a test starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest

from bot import clock as bot_clock
from bot.clock import SetClock, parse_instant
from storage.types import utcnow
from tests.conftest import DEFAULT_NOW


def test_the_suite_runs_on_its_own_date_not_the_machines(app_clock) -> None:  # noqa: ANN001
    assert bot_clock.current() is app_clock
    assert bot_clock.today() == date(2026, 12, 1) == utcnow().date()
    assert abs((parse_instant(os.environ[bot_clock.ENV].partition("@")[0]) - parse_instant(DEFAULT_NOW)).total_seconds()) < 60


def test_a_set_clock_moves_with_the_monotonic_clock_and_can_be_moved() -> None:
    c = SetClock("2027-01-20T09:00:00Z")
    first = c.now()
    time.sleep(0.05)
    assert first.tzinfo is UTC and c.now() > first and (c.now() - first).total_seconds() < 5
    c.advance(days=1)
    assert c.today() == date(2027, 1, 21)
    fixed = SetClock("2027-01-20T09:00:00Z", tick=False)
    assert fixed.now() == fixed.now() == datetime(2027, 1, 20, 9, tzinfo=UTC)
    with pytest.raises(ValueError):
        SetClock(datetime(2027, 1, 20))  # naive: which timezone would it be?


def test_a_bare_day_is_its_noon_utc_and_an_offset_is_kept() -> None:
    assert parse_instant("2027-01-06") == datetime(2027, 1, 6, 12, tzinfo=UTC)
    assert parse_instant("2027-01-06T00:30:00+01:00").astimezone(UTC) == datetime(2027, 1, 5, 23, 30, tzinfo=UTC)


def test_setting_the_date_in_a_test_reaches_the_processes_it_starts(app_clock) -> None:  # noqa: ANN001
    app_clock.set("2028-06-01T08:00:00Z")
    time.sleep(1.0)  # a process started later runs on from the same instant, not from when it was set
    out = subprocess.run([sys.executable, "-c", "from storage.types import utcnow; print(utcnow().isoformat())"], capture_output=True, text=True, timeout=60)
    theirs, ours = datetime.fromisoformat(out.stdout.strip()), app_clock.now()
    assert theirs.date() == date(2028, 6, 1) and abs((ours - theirs).total_seconds()) < 0.5, (theirs, ours, out.stderr)


def test_a_malformed_test_date_stops_the_process_with_one_line(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(bot_clock.ENV, "next tuesday")
    out = subprocess.run([sys.executable, "-c", "import storage.types"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "FTBOT_TEST_NOW must be an ISO date or instant such as 2027-01-20T09:00:00Z, got 'next tuesday'" in out.stderr
    assert "Traceback" not in out.stderr


def test_without_the_test_date_a_process_reads_the_system_clock(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv(bot_clock.ENV)
    code = "from bot import clock; print(type(clock.current()).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "SystemClock", out.stderr
