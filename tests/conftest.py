"""Shared fixtures: the OpenAI sandbox and the Slack stand-in (one each per session), databases on
SQLite and the real PostgreSQL, and a running ftbot reached over real HTTP."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot import clock as bot_clock
from bot.clock import SetClock
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import Timing
from bot.settings import Settings
from bot.slack_standin.requests import SlackRequester
from bot.slack_standin.server import SlackStandIn
from storage.db import normalise_url
from storage.migrate import upgrade

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
PG_ENV = "FTBOT_TEST_POSTGRES_URL"
FAST = Timing(validating_seconds=0.05, queued_seconds=0.05, step_seconds=0.01, eval_every=5)


@pytest.fixture(autouse=True, scope="session")
def _wired() -> None:
    """The features' event subscribers and outbox renderers, as each process's composition root
    wires them at start-up (bot/app.py, the worker): many tests build a poller or a sender alone."""
    from bot.wiring import wire

    wire()


def pytest_configure(config: pytest.Config) -> None:
    # CI must never quietly skip the PostgreSQL half of the storage and poller tests.
    if os.environ.get("CI") and not os.environ.get(PG_ENV):
        raise pytest.UsageError(f"CI is set but {PG_ENV} is not: the PostgreSQL tests would be skipped")


# ---- the date --------------------------------------------------------------------------------

# The suite's date unless a test sets its own: before the 30-day window of OpenAI's 2027-01-14 and
# before its training end (2027-01-06). Nothing in the suite reads the machine's date.
DEFAULT_NOW = "2026-12-01T12:00:00Z"

# The dates that matter for OpenAI's sunset: before the 30-day window, inside it, training closed
# but the models still serving, after the end of serving, a year later.
KEY_DATES = ("2026-12-01", "2026-12-20", "2027-01-10", "2027-02-01", "2028-06-01")


class SuiteClock(SetClock):
    """The process's clock in tests. Setting it also sets FTBOT_TEST_NOW, so a process the test
    starts (`ftbot serve`, a worker, the demo) starts on the same date."""

    def set(self, at: Any) -> None:
        super().set(at)
        os.environ[bot_clock.ENV] = bot_clock.env_value(self.now())

    def advance(self, **delta: float) -> None:
        super().advance(**delta)
        os.environ[bot_clock.ENV] = bot_clock.env_value(self.now())


def date_env() -> dict[str, str]:
    """For a process a test starts with an environment of its own: the test's date (FTBOT_TEST_NOW)
    and, in a date-shifted run, the moved wall clock (tests/timeshift on PYTHONPATH), without which its
    timestamps and signatures would not match the test's."""
    return {k: os.environ[k] for k in (bot_clock.ENV, "FTBOT_TEST_WALL_CLOCK", "PYTHONPATH") if k in os.environ}


@pytest.fixture(autouse=True)
def app_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[SuiteClock]:
    """Every test runs on DEFAULT_NOW (ticking with the monotonic clock) unless it sets its own:
    `app_clock.set("2027-01-20")`."""
    monkeypatch.setenv(bot_clock.ENV, DEFAULT_NOW)  # restored after the test; set() overwrites it
    suite = SuiteClock(DEFAULT_NOW)
    previous = bot_clock.use(suite)
    yield suite
    bot_clock.use(previous)


# ---- databases ------------------------------------------------------------------------------


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    return normalise_url(url) if url else None


def fresh_postgres_db() -> tuple[str, Callable[[], None]]:
    """A new empty database on the test server, and a function that drops it."""
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(reason=f"PostgreSQL tests need {PG_ENV} (CI sets it; see README)")
    name = f"ftbot_t_{uuid.uuid4().hex[:10]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()

    return url, drop


# Migrating takes about a second per database, and most tests want a migrated one: each test
# process migrates one template per kind and copies it (SQLite's backup API; PostgreSQL's CREATE
# DATABASE … TEMPLATE). The migrations themselves run for real once per process here, and from an
# empty database in tests/storage/test_migrations.py.


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ftbot.db"
    upgrade(f"sqlite:///{path}")
    return path


def migrated_sqlite(template: Path, dest: Path) -> str:
    with sqlite3.connect(template) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{dest}"


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[str]:
    """A migrated database on the test server, copied for each test (created on first use)."""
    url, drop = fresh_postgres_db()
    upgrade(url)
    name = make_url(url).database
    eng = create_engine(_pg_admin_url() or "", isolation_level="AUTOCOMMIT")
    with eng.connect() as c:  # a template must have no other sessions when it is copied
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
    eng.dispose()
    yield name or ""
    drop()


def migrated_postgres_db(template: str) -> tuple[str, Callable[[], None]]:
    admin = _pg_admin_url() or ""
    name = f"ftbot_t_{uuid.uuid4().hex[:10]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()

    return url, drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """An empty, migrated database: once on SQLite, once on the real PostgreSQL."""
    if request.param == "sqlite":
        yield migrated_sqlite(request.getfixturevalue("_sqlite_template"), tmp_path / "ftbot.db")
        return
    if _pg_admin_url() is None:
        pytest.skip(reason=f"PostgreSQL tests need {PG_ENV} (CI sets it; see README)")
    url, drop = migrated_postgres_db(request.getfixturevalue("_postgres_template"))
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path, _sqlite_template: Path) -> str:  # noqa: ANN001
    return migrated_sqlite(_sqlite_template, tmp_path / "ftbot.db")


# ---- stand-ins ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(timing=replace(FAST)).start()
    yield server
    server.stop()


def reset_sandbox(server: SandboxServer) -> SandboxServer:
    """Emptied (jobs, files, faults) and set to fast timing, for each test."""
    server.state.reset()
    server.state.timing = replace(FAST)
    server.state.daily_job_limit = 0
    server.state.api_key = None
    return server


@pytest.fixture
def sandbox(_sandbox_server: SandboxServer) -> SandboxServer:
    """The OpenAI sandbox, emptied and set to fast timing for each test."""
    return reset_sandbox(_sandbox_server)


@pytest.fixture(scope="session")
def _slack_server() -> Iterator[SlackStandIn]:
    server = SlackStandIn(bot_token=BOT_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def slack(_slack_server: SlackStandIn) -> SlackStandIn:
    _slack_server.reset()
    _slack_server.state.usergroups.clear()
    return _slack_server


# ---- a running bot --------------------------------------------------------------------------


@dataclass
class RunningBot:
    url: str
    slack: SlackRequester
    services: Any
    app: Any
    server: Any

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
        return wait_for(predicate, timeout, interval)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def make_settings(db_url: str, sandbox: SandboxServer, slack: SlackStandIn, **overrides: Any) -> Settings:
    base = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        openai_api_key="sk-test-key-123456",
        openai_base_url=sandbox.url,
        database_url=normalise_url(db_url),
        poll_interval=0.1,
        # A job's automatic evaluation adds chat requests and thread replies the other suites do
        # not expect; tests/evals turns it on where it is the subject.
        eval_on_completion=False,
        # The stand-in enforces no rate limits unless a test asks (slack.enforce_limits()); those
        # tests turn pacing on too.
        slack_pacing=False,
    )
    return replace(base, **overrides)


@pytest.fixture
def start_bot(sandbox: SandboxServer, slack: SlackStandIn) -> Iterator[Callable[..., RunningBot]]:
    """Start ftbot's HTTP app (waitress, real Bolt, real clients) on a free port."""
    from bot.app import build_app
    from bot.provider.openai_adapter import OpenAIProvider
    from bot.services import build_services
    from bot.web import HttpServer, WebApp

    started: list[RunningBot] = []

    def _start(db_url: str, *, provider_retries: int = 0, worker: bool = False, **overrides: Any) -> RunningBot:
        settings = make_settings(db_url, sandbox, slack, **overrides)
        provider = OpenAIProvider(api_key=settings.openai_api_key or "", base_url=settings.openai_base_url, max_retries=provider_retries, timeout=5)
        services = build_services(settings, provider=provider)
        app = build_app(services)
        server = HttpServer(WebApp(app, services), host="127.0.0.1", port=0).start()
        if worker:
            from bot.worker.runner import Worker

            services.extras["worker"] = Worker(services, lease_seconds=5, send_interval=0.05, team_id="T0001").start()
        requester = SlackRequester(f"{server.url}/slack/events", SIGNING_SECRET, response_base=f"{slack.base}/response")
        bot = RunningBot(server.url, requester, services, app, server)
        started.append(bot)
        return bot

    yield _start
    for bot in started:
        if "worker" in bot.services.extras:
            bot.services.extras["worker"].stop()
        bot.server.stop()
        bot.services.close()
