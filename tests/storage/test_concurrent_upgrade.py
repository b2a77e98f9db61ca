"""Web, worker and release starting together on an empty PostgreSQL all migrate without a race."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from storage.db import normalise_url
from storage.migrate import current_head
from storage.models import Base
from tests.conftest import fresh_postgres_db

# Each process imports everything first and says so; all upgrade when told "go" (a barrier, not a
# guess at how long importing takes on a loaded machine).
SCRIPT = """
import sys
from storage.migrate import upgrade
print("ready", flush=True)
sys.stdin.readline()
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
    url, processes = empty_url, 4  # web, worker, release and one more
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    for p in procs:
        p.stdin.write("go\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
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
