"""Migrations upgrade an empty database, and the models have no change without a migration."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from storage.db import normalise_url
from storage.migrate import current_head, upgrade
from storage.models import Base
from tests.conftest import fresh_postgres_db

TABLES = {
    "workspaces", "datasets", "jobs", "job_events", "checkpoints", "metric_points", "subscriptions",
    "outbox", "approval_requests", "approval_votes", "audit_log", "leases", "delivery_pauses", "alembic_version",
}


def _check(url: str) -> None:
    upgrade(url)
    upgrade(url)  # idempotent
    engine = create_engine(normalise_url(url))
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn)
            assert ctx.get_current_revision() == current_head()
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models changed without a migration: {diff}"
    finally:
        engine.dispose()


def test_upgrade_empty_sqlite(tmp_path) -> None:  # noqa: ANN001
    _check(f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.postgres
def test_upgrade_empty_postgres() -> None:
    url, drop = fresh_postgres_db()
    try:
        _check(url)
    finally:
        drop()


def test_sqlite_runs_in_wal_mode(sqlite_url) -> None:  # noqa: ANN001
    from sqlalchemy import text

    from storage.db import Database

    db = Database(sqlite_url)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.dispose()
