"""Apply Alembic migrations programmatically (used by `ftbot db upgrade` and the tests)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from storage.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock every `upgrade` takes (an arbitrary 64-bit number, ftbot's own).
MIGRATION_LOCK = 0x66746274_6D696772  # "ftbtmigr"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on a '%' in a password.
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """SQLite: processes of one host take turns on a lock file beside the database.

    SQLite's own write lock does not span a whole upgrade (batch migrations copy tables and the
    driver ends transactions around DDL), so a second process could apply a migration again."""
    database = make_url(url).database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`. Safe to run from several processes at once (PostgreSQL: an advisory
    lock, see migrations/env.py; SQLite: a lock file), so every process can upgrade at start."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        with _sqlite_file_lock(url):
            command.upgrade(alembic_config(url), revision)
        return
    command.upgrade(alembic_config(url), revision)


def current_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
