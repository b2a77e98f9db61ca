"""Web, worker and release starting together on an empty PostgreSQL all migrate without a race."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from storage.db import normalise_url
from storage.migrate import current_head
from storage.models import Base
from tests.conftest import fresh_postgres_db

# Each process imports everything first, then all upgrade at the same moment.
SCRIPT = """
import sys, time
from storage.migrate import upgrade
at = float(sys.argv[2])
time.sleep(max(0.0, at - time.time()))
upgrade(sys.argv[1])
print("ok")
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url, drop = fresh_postgres_db()
    yield url
    drop()


def test_processes_upgrading_an_empty_database_at_once_all_succeed(empty_url: str) -> None:
    url, processes = empty_url, 6
    at = time.time() + 4.0
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, url, str(at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    results = [p.communicate(timeout=120) for p in procs]
    failures = [err[-1500:] for (out, err), p in zip(results, procs, strict=True) if p.returncode != 0 or "ok" not in out]
    assert failures == [], failures[0]
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [current_head()]
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()
