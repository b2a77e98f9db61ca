"""Apply Alembic migrations programmatically (used by `ftbot db upgrade` and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

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


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`. Safe to run from several processes at once on PostgreSQL (they take
    turns on an advisory lock, see migrations/env.py), so every process can upgrade at start."""
    command.upgrade(alembic_config(url), revision)


def current_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
