"""The one clock: every "now" and "today" that decides something (sunset, retirement warnings and
countdowns, approvals' expiry, leases, claims, evaluation windows) reads it, so a test or the demo
sets the date it means instead of depending on the day it runs.

The process has one current clock: the system's, unless the composition root (`build_services(…,
clock=…)`), a test or the demo installs another. A `SetClock` starts at a chosen instant and then
advances with the monotonic clock, so leases, claims and expiries still move while the date is the
one a test asked for.

FTBOT_TEST_NOW (an ISO date or instant, e.g. `2027-01-20T09:00:00Z`) starts the process on a
`SetClock`: it exists so the processes a test spawns (`ftbot serve`, `ftbot worker`, the demo, Ray's
jobs) share the test's date. It is for tests and the demo only, never a deployment setting. The
suite writes `INSTANT@UNIX_SECONDS` (the wall-clock time at which INSTANT was now), so a process
started seconds later runs on from the same instant instead of lagging behind the test by its start-up
time: a claim or a read-back window then means the same moment in both.

Durations and waits stay on `time.monotonic()`; the freshness windows of signed requests (Slack's
signature, OpenAI's webhook signature) stay on the wall clock, because the libraries that check them
read `time.time()`.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

ENV = "FTBOT_TEST_NOW"


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...

    def today(self) -> date:
        """The UTC day of `now()`."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()

    def __repr__(self) -> str:
        return "SystemClock()"


class SetClock:
    """A clock set to an instant that then advances with the monotonic clock (`tick=False`: stays
    put until `set` or `advance`)."""

    def __init__(self, at: datetime | str, *, tick: bool = True) -> None:
        self.tick = tick
        self._lock = threading.Lock()
        self.set(at)

    def set(self, at: datetime | str) -> None:
        instant = parse_instant(at) if isinstance(at, str) else at
        if instant.tzinfo is None:
            raise ValueError("a clock's instant must be timezone-aware")
        with self._lock:
            self._at = instant.astimezone(UTC)
            self._mono = time.monotonic()

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._at += timedelta(**delta)

    def now(self) -> datetime:
        with self._lock:
            if not self.tick:
                return self._at
            return self._at + timedelta(seconds=time.monotonic() - self._mono)

    def today(self) -> date:
        return self.now().date()

    def __repr__(self) -> str:
        return f"SetClock({self.now().isoformat()})"


def parse_instant(text: str) -> datetime:
    """`2027-01-20`, `2027-01-20T09:00:00Z` or with an offset; a bare day is its noon UTC (no
    timezone turns it into another day)."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC).replace(hour=12)
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def env_value(at: datetime) -> str:
    """FTBOT_TEST_NOW for processes started from now on: `at` is now (see the module's docstring)."""
    return f"{at.isoformat()}@{time.time():.6f}"


def _from_env() -> Clock:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return SystemClock()
    try:
        instant, _, since = raw.partition("@")
        start = parse_instant(instant)
        if since:
            start += timedelta(seconds=max(0.0, time.time() - float(since)))
        return SetClock(start)
    except ValueError:
        raise SystemExit(f"ftbot: {ENV} must be an ISO date or instant such as 2027-01-20T09:00:00Z, got {raw[:40]!r}") from None


_current: Clock = _from_env()


def current() -> Clock:
    return _current


def use(clock: Clock) -> Clock:
    """Make `clock` the process's clock; returns the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous


def now() -> datetime:
    return _current.now()


def today() -> date:
    return _current.today()


def timestamp() -> float:
    """`now()` as unix seconds, for the stand-ins that stamp their answers as the services do."""
    return _current.now().timestamp()
