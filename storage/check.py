"""Is DATABASE_URL usable? One connection at start-up, and one line saying what is wrong if not.

Every process calls `check_database` before migrating, so a refused connection, a missing database,
a missing driver or an SQLite path that cannot be a file ends start-up with a sentence naming
DATABASE_URL instead of a driver traceback. The sentence is built from the URL's parts, never from
the URL itself, so a password never reaches the terminal or the logs.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from storage.db import normalise_url

SUPPORTED = ("postgresql", "sqlite")
CONNECT_TIMEOUT = 10  # seconds; a host that drops packets must not hang start-up for the OS's minutes


class DatabaseUnavailable(Exception):
    """One line naming DATABASE_URL and what is wrong with it."""


def _where(url: URL) -> str:
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    db = f", database {url.database!r}" if url.database else ""
    user = f", user {url.username!r}" if url.username else ""
    return f"PostgreSQL at {host}{port}{db}{user}"


def _sqlite_path_problem(url: URL) -> str | None:
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file::memory:"):
        return "DATABASE_URL names no SQLite file (an in-memory database would be empty in every process): give a path, e.g. sqlite:///ftbot.db"
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        return f"DATABASE_URL: the folder {folder} for the SQLite file does not exist"
    if os.path.isdir(database):
        return f"DATABASE_URL: {database} is a folder, not an SQLite file"
    if not os.access(folder, os.W_OK):
        return f"DATABASE_URL: the folder {folder} for the SQLite file is not writable"
    return None


def _postgres_reason(exc: BaseException) -> str:
    """What the driver said, reduced to the reason (psycopg's first line names host and port, which
    _where says already; passwords are never in its messages, but nothing of the URL is echoed)."""
    raw = str(getattr(exc, "orig", None) or exc)
    lowered = raw.lower()
    for needle, reason in (
        ("connection refused", "connection refused (is the server running and accepting TCP/IP connections?)"),
        ("does not exist", None),
        ("password authentication failed", "password authentication failed"),
        ("no password supplied", "the server wants a password and none was given"),
        ("failed to resolve host", "the host name does not resolve"),
        ("could not translate host name", "the host name does not resolve"),
        ("timeout expired", f"no answer within {CONNECT_TIMEOUT} s"),
        ("no pg_hba.conf entry", "the server's pg_hba.conf refuses this client"),
    ):
        if needle in lowered:
            if reason is not None:
                return reason
            break
    # Otherwise the server's own sentence, e.g. 'FATAL:  database "x" does not exist'.
    line = raw.strip().splitlines()[0] if raw.strip() else type(exc).__name__
    if "FATAL:" in line:
        line = line.split("FATAL:", 1)[1]
    elif "failed:" in line:
        line = line.rsplit("failed:", 1)[1]
    return " ".join(line.split())[:200] or type(exc).__name__


def check_database(raw_url: str) -> None:
    """Raise DatabaseUnavailable (one line) unless DATABASE_URL can be connected to."""
    try:
        url = make_url(normalise_url(raw_url))
    except (ArgumentError, ValueError):
        raise DatabaseUnavailable("DATABASE_URL is not a valid database URL (e.g. sqlite:///ftbot.db or postgres://…)") from None
    backend = url.get_backend_name()
    if backend not in SUPPORTED:
        raise DatabaseUnavailable(f"DATABASE_URL names {backend}, which ftbot does not run on: use PostgreSQL (postgres://…) or SQLite (sqlite:///path)")
    if backend == "sqlite":
        problem = _sqlite_path_problem(url)
        if problem:
            raise DatabaseUnavailable(problem)
        connect_args: dict = {"timeout": 30}
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT}
    try:
        engine = create_engine(url, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        # e.g. postgresql+asyncpg:// without asyncpg
        raise DatabaseUnavailable(f"DATABASE_URL needs a database driver that is not installed ({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        if backend == "sqlite":
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
            raise DatabaseUnavailable(f"DATABASE_URL: cannot open the SQLite file {url.database} ({reason})") from None
        raise DatabaseUnavailable(f"DATABASE_URL: cannot connect to {_where(url)}: {_postgres_reason(exc)}") from None
    finally:
        engine.dispose()
